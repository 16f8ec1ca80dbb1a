// Command demo measures the highest request rate the demo platform's full
// path (edge, API, cache, sharded store) sustains with p99 latency under a
// threshold, with OpenTelemetry instrumentation on and off, in one run.
//
// The platform and the load generator (burnrate load's library) share the
// process and the machine, as in `burnrate up`. With instrumentation on,
// every tier exports traces and metrics over OTLP/HTTP to a receiver on
// loopback that decodes each request (pdata), so export costs what it costs
// on the wire; the receiver's decoding runs on the same cores. The rate steps
// up until p99 passes the threshold, more than 1% of requests fail, or the
// achieved rate falls 5% short of the offered one; the last rate that passed
// is the result.
//
//	go run ./bench/demo -budget 4m
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
	only := flag.String("only", "", "run only one mode: on or off")
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

	ctx, cancel := context.WithTimeout(context.Background(), *budget)
	defer cancel()
	var results []result
	for _, instrumented := range []bool{false, true} {
		if (*only == "on" && !instrumented) || (*only == "off" && instrumented) {
			results = append(results, result{Instrumented: instrumented})
			continue
		}
		r, err := search(ctx, instrumented, *start, *inc, *maxRate, *stepDur, *p99, *budget/2)
		if err != nil {
			log.Print(err)
			return
		}
		results = append(results, r)
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

func search(ctx context.Context, instrumented bool, start, inc, maxRate float64, stepDur, threshold, budget time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	res := result{Instrumented: instrumented}
	var spans, points atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/v1/traces"):
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err == nil {
				spans.Add(int64(req.Traces().SpanCount()))
			}
			b, _ := ptraceotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		case strings.HasSuffix(r.URL.Path, "/v1/metrics"):
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err == nil {
				points.Add(int64(req.Metrics().DataPointCount()))
			}
			b, _ := pmetricotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		}
	}))
	defer recv.Close()

	dir, err := os.MkdirTemp("", "burnrate-bench-demo")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
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
		return res, err
	}
	defer p.Close()
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	defer func() { stop(); <-done }()

	// Warm the cache and connections.
	if _, err := load.Run(ctx, load.Options{Target: p.EdgeURL(), Rate: 200, Duration: 2 * time.Second, Seed: 1}, nil); err != nil {
		return res, err
	}
	for rate := start; rate <= maxRate && ctx.Err() == nil; rate += inc {
		cpu0 := cpuTime()
		rep, err := load.Run(ctx, load.Options{
			Target: p.EdgeURL(), Rate: rate, Duration: stepDur, Shape: "constant",
			Timeout: 2 * time.Second, Seed: int64(rate),
		}, nil)
		if err != nil {
			return res, err
		}
		if ctx.Err() != nil {
			break // cut short by the budget: not a measurement
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
		res.Steps = append(res.Steps, s)
		fmt.Printf("instrumented=%-5v rate %6.0f achieved %7.1f p50 %6.2fms p99 %7.2fms errors %.4f cpu/req %5.0fus pass=%v\n",
			instrumented, rate, s.Achieved, s.P50, s.P99, s.Errors, s.CPUus, s.Pass)
		if !s.Pass {
			fmt.Printf("  status %v, %d distinct errors\n", rep.Status, len(rep.Errors))
		}
		if !s.Pass {
			break
		}
		res.MaxRate = rate
		time.Sleep(500 * time.Millisecond) // let the previous step's stragglers drain
	}
	res.Spans, res.Points = spans.Load(), points.Load()
	return res, nil
}
