// Command demo measures the highest request rate the demo platform's full
// path (edge, API, cache, sharded store) sustains with p99 latency under a
// threshold, with OpenTelemetry instrumentation on and off, in one run.
//
// The platform and the load generator (burnrate load's library) share the
// process and the machine, as in `burnrate up`. With instrumentation on,
// every tier exports traces and metrics over OTLP/HTTP to a receiver on
// loopback that decodes each request (pdata), so export costs what it costs
// on the wire; the receiver's decoding runs on the same cores. Both platforms
// run side by side and each rate is measured on one, then the other. The
// rate steps up until p99 passes the threshold, more than 1% of requests
// fail, or the achieved rate falls 5% short of the offered one (a failed step
// is measured once more, since the machine is shared); the last rate that
// passed is the result. CPU time per request (the whole process: load
// generator, four tiers, receiver) is reported for every step.
//
//	go run ./bench/demo -start 400 -step 200 -budget 6m
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/load"
)

type step struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved_rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Errors   float64 `json:"error_ratio"`
	CPUus    float64 `json:"cpu_us_per_request"`
	Pass     bool    `json:"pass"`
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type result struct {
	Instrumented bool    `json:"instrumented"`
	MaxRate      float64 `json:"max_rate"`
	Steps        []step  `json:"steps"`
	Spans        int64   `json:"spans_received"`
	Points       int64   `json:"metric_points_received"`
}

func main() {
	start := flag.Float64("start", 500, "first rate, requests per second")
	inc := flag.Float64("step", 500, "rate increment")
	maxRate := flag.Float64("max", 20000, "highest rate tried")
	stepDur := flag.Duration("step-duration", 5*time.Second, "length of each step")
	budget := flag.Duration("budget", 4*time.Minute, "bound on the whole run")
	p99 := flag.Duration("p99", 50*time.Millisecond, "p99 latency threshold")
	out := flag.String("json", "", "write the results as JSON to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	// Thousands of requests in flight need thousands of sockets: raise the
	// soft limit on open files to the hard one, as a server would.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *budget)
	defer cancel()

	// Both platforms run for the whole search, and each rate is measured on
	// one and then the other, so that both see the same machine.
	var targets []*target
	for _, instrumented := range []bool{false, true} {
		t, err := startPlatform(ctx, instrumented)
		if err != nil {
			log.Fatal(err)
		}
		defer t.close()
		targets = append(targets, t)
	}
	for rate := *start; rate <= *maxRate && ctx.Err() == nil; rate += *inc {
		live := false
		for _, t := range targets {
			if t.failed {
				continue
			}
			fmt.Printf("instrumented=%-5v", t.res.Instrumented)
			s, err := measure(ctx, t.edge, rate, *stepDur, *p99)
			if err != nil {
				log.Fatal(err)
			}
			if !s.Pass && ctx.Err() == nil {
				// The machine is shared: a step can lose its CPU to another
				// process. A failed step is measured once more; both attempts
				// are kept in the results.
				t.res.Steps = append(t.res.Steps, s)
				time.Sleep(time.Second)
				fmt.Printf("   (again)        ")
				if s, err = measure(ctx, t.edge, rate, *stepDur, *p99); err != nil {
					log.Fatal(err)
				}
			}
			if ctx.Err() != nil {
				break // cut short by the budget: not a measurement
			}
			t.res.Steps = append(t.res.Steps, s)
			if !s.Pass {
				t.failed = true
				continue
			}
			t.res.MaxRate = rate
			live = true
			time.Sleep(500 * time.Millisecond) // let stragglers drain
		}
		if !live {
			break
		}
	}
	var results []result
	for _, t := range targets {
		t.res.Spans, t.res.Points = t.spans.Load(), t.points.Load()
		results = append(results, t.res)
	}
	fmt.Printf("\nGOMAXPROCS=%d, step %s, threshold p99 < %s\n", runtime.GOMAXPROCS(0), *stepDur, *p99)
	for _, r := range results {
		fmt.Printf("instrumented=%-5v max sustained rate %6.0f/s (spans received %d, metric points %d)\n", r.Instrumented, r.MaxRate, r.Spans, r.Points)
	}
	if results[0].MaxRate > 0 {
		fmt.Printf("overhead: instrumented sustains %.1f%% of the uninstrumented rate (%.1f%% less)\n",
			100*results[1].MaxRate/results[0].MaxRate, 100*(1-results[1].MaxRate/results[0].MaxRate))
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// target is one platform under test and its OTLP receiver.
type target struct {
	res           result
	edge          string
	spans, points *atomic.Int64
	failed        bool
	close         func()
}

// startPlatform runs a demo platform, instrumented or not, exporting to a
// decoding OTLP receiver, and warms its cache and connections.
func startPlatform(ctx context.Context, instrumented bool) (*target, error) {
	t := &target{res: result{Instrumented: instrumented}, spans: new(atomic.Int64), points: new(atomic.Int64)}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/v1/traces"):
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err == nil {
				t.spans.Add(int64(req.Traces().SpanCount()))
			}
			b, _ := ptraceotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		case strings.HasSuffix(r.URL.Path, "/v1/metrics"):
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err == nil {
				t.points.Add(int64(req.Metrics().DataPointCount()))
			}
			b, _ := pmetricotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		}
	}))
	dir, err := os.MkdirTemp("", "burnrate-bench-demo")
	if err != nil {
		recv.Close()
		return nil, err
	}
	cfg := demoapp.DefaultConfig()
	cfg.EdgeListen = "127.0.0.1:0"
	cfg.Load.Enabled = false
	cfg.Instrumentation = instrumented
	cfg.OTLPEndpoint = recv.URL
	cfg.RateLimit = 1e6 // measure the path, not the limiter
	cfg.RateBurst = 1e6
	cfg.MaxConcurrent = 4096
	p, err := demoapp.New(ctx, demoapp.Options{Config: cfg, DataDir: dir})
	if err != nil {
		recv.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	t.edge = p.EdgeURL()
	t.close = func() {
		stop()
		<-done
		p.Close()
		recv.Close()
		os.RemoveAll(dir)
	}
	if _, err := load.Run(ctx, load.Options{Target: t.edge, Rate: 300, Duration: 3 * time.Second, Seed: 1}, nil); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// measure sends one step of constant load and judges it.
func measure(ctx context.Context, edgeURL string, rate float64, stepDur, threshold time.Duration) (step, error) {
	cpu0 := cpuTime()
	rep, err := load.Run(ctx, load.Options{
		Target: edgeURL, Rate: rate, Duration: stepDur, Shape: "constant",
		Timeout: 2 * time.Second, Seed: int64(rate),
	}, nil)
	if err != nil {
		return step{}, err
	}
	var bad int
	for code, n := range rep.Status {
		if code == "0" || code[0] == '5' {
			bad += n
		}
	}
	s := step{Rate: rate, Achieved: rep.AchievedRPS, P50: rep.Latency.P50, P99: rep.Latency.P99}
	if rep.Requests > 0 {
		s.Errors = float64(bad) / float64(rep.Requests)
		s.CPUus = float64((cpuTime() - cpu0).Microseconds()) / float64(rep.Requests)
	}
	s.Pass = s.P99 < float64(threshold.Milliseconds()) && s.Errors <= 0.01 && s.Achieved >= 0.95*rate
	fmt.Printf(" rate %6.0f achieved %7.1f p50 %6.2fms p99 %7.2fms errors %.4f cpu/req %5.0fus pass=%v\n",
		rate, s.Achieved, s.P50, s.P99, s.Errors, s.CPUus, s.Pass)
	return s, nil
}
