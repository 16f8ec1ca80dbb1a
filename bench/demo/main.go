// Command demo measures the highest request rate the demo platform sustains
// with p99 latency under a threshold and almost no 5xx, and what each
// request costs in CPU. Two modes:
//
//   - up (default): what users run. It builds ./cmd/burnrate, starts
//     `burnrate up` on a temporary data directory with the default
//     configuration (loopback ports only), and sends load from this process,
//     a separate one, as `burnrate load` does (simulated clients signed with
//     the secret the platform keeps in its data directory). The collector,
//     trace store, TSDB, SLO engine and alerting run in the measured
//     process. CPU per request is read from /proc/<pid>/stat of the burnrate
//     process, and a CPU profile taken from its /debug/pprof/profile at the
//     highest passing rate is split by component (demo tiers, their
//     telemetry, collector ingest, trace store, TSDB, SLO engine, ...).
//     -runs repeats the whole search on a fresh process; the result is the
//     median.
//   - stripped: the instrumentation-overhead figure. Two stripped
//     platforms (only the demo tiers, exporting to a receiver that decodes)
//     in this process, one instrumented and one not, each rate measured on
//     one then the other; CPU per request at equal rate is compared.
//
// Each search steps the rate up until a step fails: p99 at or above the
// threshold, more than -max-errors of 5xx or unanswered requests, more than
// -max-errors answered 429 (the limiter, not the platform, was measured), or
// the achieved rate 5% short of the offered one. A failed step is measured
// once more, since the machine is shared; the last rate that passed is the
// result.
//
//	go run ./bench/demo -runs 3
//	go run ./bench/demo -mode stripped -start 400 -step 200
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/google/pprof/profile"

	"github.com/burnrate/burnrate/demoapp/load"
)

type step struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved_rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Errors   float64 `json:"error_ratio"`
	Limited  float64 `json:"rate_limited_ratio"`
	CPUus    float64 `json:"cpu_us_per_request"`
	// LoadCPUus is this (the load's) process's CPU per request: in mode
	// up, what the load takes from the same cores.
	LoadCPUus float64 `json:"load_cpu_us_per_request,omitempty"`
	Pass      bool    `json:"pass"`
}

type result struct {
	Instrumented bool    `json:"instrumented"`
	MaxRate      float64 `json:"max_rate"`
	Steps        []step  `json:"steps"`
	Spans        int64   `json:"spans_received,omitempty"`
	Points       int64   `json:"metric_points_received,omitempty"`
	// CPUSplit is the share of the burnrate process's CPU per component, from
	// a profile at MaxRate (mode up).
	CPUSplit    []share `json:"cpu_split,omitempty"`
	ProfileRate float64 `json:"profile_rate,omitempty"`
	// Steal and Busy are the machine's CPU shares during the run (mode
	// up): stolen by the hypervisor, and not idle.
	Steal float64 `json:"machine_cpu_stolen,omitempty"`
	Busy  float64 `json:"machine_cpu_busy,omitempty"`
}

type flags struct {
	mode                   string
	start, inc, max        float64
	stepDur, budget, p99   time.Duration
	maxErrors              float64
	runs                   int
	profileDur             time.Duration
	profileOut, out, cpuPr string
	ratio                  float64
	bin, tierCalls         string
	loadTransport          string
	instrumentation        bool
	split                  string
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	var f flags
	flag.StringVar(&f.mode, "mode", "up", "up: a real `burnrate up` process; stripped: instrumented and uninstrumented platforms in this process")
	flag.Float64Var(&f.start, "start", 500, "first rate, requests per second")
	flag.Float64Var(&f.inc, "step", 250, "rate increment")
	flag.Float64Var(&f.max, "max", 20000, "highest rate tried")
	flag.DurationVar(&f.stepDur, "step-duration", 10*time.Second, "length of each step")
	flag.DurationVar(&f.budget, "budget", 15*time.Minute, "bound on the whole run")
	flag.DurationVar(&f.p99, "p99", 50*time.Millisecond, "p99 latency threshold")
	flag.Float64Var(&f.maxErrors, "max-errors", 0.001, "highest ratio of 5xx (or unanswered) requests, and of 429s, in a passing step")
	flag.IntVar(&f.runs, "runs", 1, "mode up: searches, each on a fresh process; the median is reported")
	flag.DurationVar(&f.profileDur, "profile", 10*time.Second, "mode up: CPU profile this long at the highest passing rate (0: none)")
	flag.StringVar(&f.profileOut, "profile-out", "", "mode up: also write the last run's profile here (go tool pprof)")
	flag.Float64Var(&f.ratio, "trace-sample-ratio", -1, "mode up: set demo.trace_sample_ratio (default: the default configuration's)")
	flag.BoolVar(&f.instrumentation, "instrumentation", true, "mode up: demo.instrumentation (false: the platform without OpenTelemetry, for the overhead at equal rate)")
	flag.StringVar(&f.loadTransport, "load-transport", "", "mode up: nethttp sends the load through net/http's Transport (the load generator's own, as before it had one) instead of its own")
	flag.StringVar(&f.tierCalls, "tier-calls", "", "mode up: set demo.tier_calls (in_process or loopback; default: the default configuration's)")
	flag.StringVar(&f.bin, "bin", "", "mode up: run this burnrate binary instead of building ./cmd/burnrate (to compare builds)")
	flag.StringVar(&f.split, "split", "", "only print the split by component of this CPU profile (from -profile-out or go tool pprof) and exit")
	flag.StringVar(&f.out, "json", "", "write the results as JSON to this file")
	flag.StringVar(&f.cpuPr, "cpuprofile", "", "write a CPU profile of this process (in mode up: of the load) to this file")
	procs := flag.Int("load-procs", 0, "mode up: GOMAXPROCS of this (the load's) process (0: the Go default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if f.cpuPr != "" {
		pf, err := os.Create(f.cpuPr)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	// Thousands of requests in flight need thousands of sockets: raise the
	// soft limit on open files to the hard one, as a server would (the
	// burnrate process inherits it).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if f.split != "" {
		raw, err := os.ReadFile(f.split)
		if err != nil {
			log.Fatal(err)
		}
		prof, err := profile.ParseData(raw)
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range split(prof) {
			fmt.Printf("%-52s %5.1f%%\n", s.Component, s.Percent)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.budget)
	defer cancel()

	var (
		results []result
		err     error
	)
	switch f.mode {
	case "up":
		results, err = runUp(ctx, f)
	case "stripped":
		results, err = runStripped(ctx, f)
	default:
		err = fmt.Errorf("-mode: %q is not up or stripped", f.mode)
	}
	if err != nil {
		log.Fatal(err)
	}
	if f.out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(f.out, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// measureTwice measures a step and, when it fails, once more (the machine
// is shared: a step can lose its CPU to another process). Both attempts are
// returned; ok is the last one's verdict.
func measureTwice(ctx context.Context, f flags, m func() (step, error)) ([]step, bool, error) {
	s, err := m()
	if err != nil {
		return nil, false, err
	}
	if s.Pass || ctx.Err() != nil {
		return []step{s}, s.Pass && ctx.Err() == nil, nil
	}
	time.Sleep(time.Second)
	fmt.Printf("   (again)        ")
	s2, err := m()
	if err != nil {
		return nil, false, err
	}
	return []step{s, s2}, s2.Pass && ctx.Err() == nil, nil
}

// measure sends one step of constant load to edgeURL and judges it; cpu is
// the CPU clock of the process under test.
func measure(ctx context.Context, f flags, edgeURL, secret string, rate float64, cpu func() time.Duration) (step, error) {
	cpu0, self0 := cpu(), cpuTime()
	rep, err := load.Run(ctx, load.Options{
		Target: edgeURL, Rate: rate, Duration: f.stepDur, Shape: "constant",
		Timeout: 2 * time.Second, Seed: int64(rate), ClientSecret: secret,
		Transport: loadTransport(f),
	}, nil)
	if err != nil {
		return step{}, err
	}
	used, self := cpu()-cpu0, cpuTime()-self0
	var bad int
	for code, n := range rep.Status {
		if code == "0" || code[0] == '5' {
			bad += n
		}
	}
	s := step{Rate: rate, Achieved: rep.AchievedRPS, P50: rep.Latency.P50, P99: rep.Latency.P99}
	if rep.Requests > 0 {
		s.Errors = float64(bad) / float64(rep.Requests)
		s.Limited = float64(rep.RateLimited) / float64(rep.Requests)
		s.CPUus = float64(used.Microseconds()) / float64(rep.Requests)
		if f.mode == "up" {
			// In mode stripped the platform is this process: there is no
			// separate load to measure.
			s.LoadCPUus = float64(self.Microseconds()) / float64(rep.Requests)
		}
	}
	s.Pass = s.P99 < float64(f.p99.Milliseconds()) && s.Errors <= f.maxErrors && s.Limited <= f.maxErrors && s.Achieved >= 0.95*rate
	load := ""
	if s.LoadCPUus > 0 {
		load = fmt.Sprintf(" (load %3.0fus)", s.LoadCPUus)
	}
	fmt.Printf(" rate %6.0f achieved %7.1f p50 %6.2fms p99 %7.2fms 5xx %.4f 429 %.4f cpu/req %5.0fus%s pass=%v\n",
		rate, s.Achieved, s.P50, s.P99, s.Errors, s.Limited, s.CPUus, load, s.Pass)
	return s, nil
}

// loadTransport is the transport the load is sent with (nil: the load
// generator's own).
func loadTransport(f flags) http.RoundTripper {
	if f.loadTransport != "nethttp" {
		return nil
	}
	return &http.Transport{MaxIdleConnsPerHost: 10000, DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext}
}

// cpuOverhead is the median of instrumented CPU per request over
// uninstrumented, over the steps measured on both at one rate with at most
// 1% 5xx (a step that failed on latency still served its requests; one
// answered by fast 503s did not do the work).
func cpuOverhead(off, on []step) (float64, int) {
	served := func(s step) bool { return s.Errors <= 0.01 && s.CPUus > 0 }
	base := map[float64]float64{}
	for _, s := range off {
		if served(s) {
			base[s.Rate] = s.CPUus
		}
	}
	var ratios []float64
	for _, s := range on {
		if b, ok := base[s.Rate]; ok && served(s) {
			ratios = append(ratios, s.CPUus/b)
		}
	}
	return median(ratios), len(ratios)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
