package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/load"
)

// runUp runs f.runs searches, each on a fresh `burnrate up`.
func runUp(ctx context.Context, f flags) ([]result, error) {
	bin := f.bin
	if bin == "" {
		var err error
		if bin, err = buildBurnrate(ctx); err != nil {
			return nil, err
		}
		defer os.RemoveAll(filepath.Dir(bin))
	}
	var results []result
	for i := range f.runs {
		fmt.Printf("run %d of %d\n", i+1, f.runs)
		st0 := readStat()
		r, err := searchUp(ctx, f, bin)
		if err != nil {
			return results, err
		}
		r.Steal, r.Busy = readStat().since(st0)
		fmt.Printf("  machine during the run: %.0f%% of its CPU busy, %.0f%% stolen by the hypervisor\n", 100*r.Busy, 100*r.Steal)
		results = append(results, r)
	}
	var rates []float64
	for _, r := range results {
		rates = append(rates, r.MaxRate)
		fmt.Printf("max rate at p99 < %s and <= %.2f%% 5xx: %.0f/s\n", f.p99, 100*f.maxErrors, r.MaxRate)
		if len(r.CPUSplit) > 0 {
			fmt.Printf("  CPU of the burnrate process at %.0f/s, by component:\n", r.ProfileRate)
		}
		for _, s := range r.CPUSplit {
			fmt.Printf("  %-34s %5.1f%%\n", s.Component, s.Percent)
		}
	}
	fmt.Printf("median of %d runs: %.0f/s (runs %v)\n", len(rates), median(rates), rates)
	return results, nil
}

// cpuStat is the machine's CPU time by kind, from /proc/stat (jiffies).
type cpuStat struct{ total, idle, steal float64 }

func readStat() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var st cpuStat
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		st.total += v
		switch i {
		case 3, 4: // idle, iowait
			st.idle += v
		case 7:
			st.steal += v
		}
	}
	return st
}

// since is the share of the machine's CPU time since s0 that was stolen
// (another tenant's) and that was busy (this run's, another tenant's or
// stolen): what tells a quiet sitting from a noisy one.
func (s cpuStat) since(s0 cpuStat) (steal, busy float64) {
	d := s.total - s0.total
	if d <= 0 {
		return 0, 0
	}
	return (s.steal - s0.steal) / d, 1 - (s.idle-s0.idle)/d
}

// buildBurnrate builds ./cmd/burnrate of this module into a temporary
// directory.
func buildBurnrate(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "burnrate-bench-demo-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "burnrate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/burnrate")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/burnrate: %w", err)
	}
	return bin, nil
}

// upProcess is a running `burnrate up`.
type upProcess struct {
	cmd      *exec.Cmd
	url      string
	edge     string
	dataDir  string
	secret   string
	log      bytes.Buffer
	waitDone chan error
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startUp starts `burnrate up` with the default configuration on a fresh
// data directory and loopback ports, and waits until it is ready.
func startUp(ctx context.Context, f flags, bin string) (*upProcess, error) {
	dir, err := os.MkdirTemp("", "burnrate-bench-demo-data")
	if err != nil {
		return nil, err
	}
	var addrs [3]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	p := &upProcess{url: "http://" + addrs[0], edge: "http://" + addrs[1], dataDir: dir, waitDone: make(chan error, 1)}
	p.cmd = exec.Command(bin, "up", "--listen", addrs[0], "--edge-listen", addrs[1], "--otlp-listen", addrs[2],
		"--data-dir", dir, "--log-level", "warn")
	p.cmd.Env = os.Environ()
	if f.bin != "" {
		// Another build, perhaps one from before the platform kept its
		// secret in the data directory: hand it one.
		p.secret = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		p.cmd.Env = append(p.cmd.Env, "BURNRATE_DEMO_CLIENT_ID_SECRET="+p.secret)
	}
	if f.ratio >= 0 {
		p.cmd.Env = append(p.cmd.Env, "BURNRATE_DEMO_TRACE_SAMPLE_RATIO="+strconv.FormatFloat(f.ratio, 'g', -1, 64))
	}
	if !f.instrumentation {
		p.cmd.Env = append(p.cmd.Env, "BURNRATE_DEMO_INSTRUMENTATION=false")
	}
	if f.tierCalls != "" {
		p.cmd.Env = append(p.cmd.Env, "BURNRATE_DEMO_TIER_CALLS="+f.tierCalls)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start burnrate up: %w", err)
	}
	go func() { p.waitDone <- p.cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(p.url + "/-/ready") //nolint:noctx // bounded by the loop
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-p.waitDone:
			return nil, fmt.Errorf("burnrate up exited: %v\n%s", err, p.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("burnrate up not ready after 2m\n%s", p.log.String())
		}
	}
	if p.secret == "" {
		if p.secret, err = demoapp.ReadClientSecret(dir); err != nil || p.secret == "" {
			p.stop()
			return nil, fmt.Errorf("the platform's client secret: %v", err)
		}
	}
	return p, nil
}

func (p *upProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.waitDone:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waitDone
	}
	os.RemoveAll(p.dataDir)
}

// cpu is the process's user+system CPU time, from /proc/<pid>/stat.
func (p *upProcess) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64) // field 14, utime
	st, _ := strconv.ParseInt(fields[12], 10, 64) // field 15, stime
	const clkTck = 100                            // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// searchUp steps the rate up on one fresh process, then profiles it at the
// highest passing rate.
func searchUp(ctx context.Context, f flags, bin string) (result, error) {
	p, err := startUp(ctx, f, bin)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	res := result{Instrumented: f.instrumentation}
	// Warm the cache, the connection pools and the TSDB's head.
	if _, err := load.Run(ctx, load.Options{Target: p.edge, Rate: 300, Duration: 3 * time.Second, Seed: 1, ClientSecret: p.secret}, nil); err != nil {
		return res, err
	}
	for rate := f.start; rate <= f.max && ctx.Err() == nil; rate += f.inc {
		fmt.Printf("burnrate up      ")
		steps, ok, err := measureTwice(ctx, f, func() (step, error) { return measure(ctx, f, p.edge, p.secret, rate, p.cpu) })
		if err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, steps...)
		if !ok {
			break
		}
		res.MaxRate = rate
		time.Sleep(time.Second) // let stragglers drain
	}
	if f.profileDur > 0 && ctx.Err() == nil {
		// At the highest passing rate, or the first one when none passed.
		at := res.MaxRate
		if at == 0 {
			at = f.start
		}
		res.ProfileRate = at
		time.Sleep(2 * time.Second)
		prof, raw, err := p.profileUnderLoad(ctx, f, at)
		if err != nil {
			return res, err
		}
		res.CPUSplit = split(prof)
		if f.profileOut != "" {
			_ = os.WriteFile(f.profileOut, raw, 0o644)
		}
	}
	return res, nil
}

// profileUnderLoad takes a CPU profile of the process while it serves rate.
func (p *upProcess) profileUnderLoad(ctx context.Context, f flags, rate float64) (*profile.Profile, []byte, error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = load.Run(ctx, load.Options{Target: p.edge, Rate: rate, Duration: f.profileDur + 2*time.Second, Seed: 7, ClientSecret: p.secret, Timeout: 2 * time.Second}, nil)
	}()
	defer func() { <-done }()
	time.Sleep(time.Second)
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.url, int(f.profileDur.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("profile: %s %v", resp.Status, err)
	}
	prof, err := profile.ParseData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("profile: %w", err)
	}
	return prof, raw, nil
}

// share is one component's part of the CPU profile.
type share struct {
	Component string  `json:"component"`
	Percent   float64 `json:"percent"`
}

// components attribute a sample to the first package of its stack, from
// the leaf, that names a part of Burnrate (or the demo's OpenTelemetry SDK):
// a sample in the TSDB's head append called from the collector's ingest is
// "collector ingest", one in net/http writing a collector response too.
// Only a stack with none of them falls back to the generic parts.
var components = []struct{ prefix, name string }{
	{"github.com/burnrate/burnrate/collector/tracestore", "trace store"},
	{"github.com/burnrate/burnrate/collector", "collector ingest (OTLP, TSDB append, query API)"},
	{"github.com/burnrate/burnrate/sloengine", "SLO engine"},
	{"github.com/burnrate/burnrate/alerting", "alerting"},
	{"github.com/burnrate/burnrate/incidents", "incidents"},
	{"github.com/burnrate/burnrate/demoapp/telemetry", telemetryComponent},
	{"go.opentelemetry.io/otel/sdk", telemetryComponent},
	{"go.opentelemetry.io/otel/exporters", telemetryComponent},
	{otelhttpPrefix, telemetryComponent},
	{"github.com/burnrate/burnrate/demoapp", tiersComponent},
	{"github.com/burnrate/burnrate", "other Burnrate code (HTTP middleware, UI, wiring)"},
}

// fallbacks name stacks with no component frame.
var fallbacks = []struct{ prefix, name string }{
	{"github.com/prometheus/prometheus/tsdb", "TSDB (compaction, WAL)"},
	{"runtime.gcBgMarkWorker", "garbage collector (background)"},
	{"net/http", httpComponent},
	{"net.", httpComponent},
	{"internal/poll", httpComponent},
	{"syscall", httpComponent},
}

const (
	otelhttpPrefix     = "go.opentelemetry.io/contrib/instrumentation"
	tiersComponent     = "demo tiers (edge, API, cache, store)"
	telemetryComponent = "demo telemetry (spans, metrics, OTLP export)"
	httpComponent      = "HTTP outside handlers (main listener, OTLP client)"
)

// split buckets a CPU profile's samples by component, largest first.
func split(p *profile.Profile) []share {
	by := map[string]int64{}
	var total int64
	vi := len(p.SampleType) - 1 // cpu nanoseconds
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		by[componentOf(s)] += v
	}
	var out []share
	for c, v := range by {
		out = append(out, share{Component: c, Percent: 100 * float64(v) / float64(max(total, 1))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Percent > out[j].Percent })
	return out
}

func componentOf(s *profile.Sample) string {
	for _, list := range [][]struct{ prefix, name string }{components, fallbacks} {
		inHTTP := false
		for _, loc := range s.Location {
			for _, line := range loc.Line { // the leaf first, then what it was inlined into
				if line.Function == nil {
					continue
				}
				name := line.Function.Name
				if strings.HasPrefix(name, "net/http.") {
					inHTTP = true
				}
				// otelhttp wraps every handler and round trip: below it,
				// net/http's work is the tier's, not the instrumentation's.
				if inHTTP && strings.HasPrefix(name, otelhttpPrefix) {
					continue
				}
				for _, c := range list {
					if strings.HasPrefix(name, c.prefix) {
						// The demo tiers' connections are labelled where they
						// are served (demoapp's Platform.Run), so their reads
						// and writes count as theirs.
						if c.name == httpComponent && isTier(s) {
							return tiersComponent
						}
						return c.name
					}
				}
			}
		}
	}
	if isTier(s) {
		return tiersComponent
	}
	return "other (runtime, scheduler, unattributed)"
}

func isTier(s *profile.Sample) bool {
	return len(s.Label["component"]) > 0 && s.Label["component"][0] == "demo"
}
