package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/load"
)

// runStripped measures two stripped platforms (instrumented and not) in
// this process, side by side: the instrumentation-overhead figure.
func runStripped(ctx context.Context, f flags) ([]result, error) {
	// Both platforms run for the whole search, and each rate is measured on
	// one and then the other, so that both see the same machine.
	var targets []*target
	for _, instrumented := range []bool{false, true} {
		t, err := startPlatform(ctx, instrumented)
		if err != nil {
			return nil, err
		}
		defer t.close()
		targets = append(targets, t)
	}
	for rate := f.start; rate <= f.max && ctx.Err() == nil; rate += f.inc {
		live := false
		for _, t := range targets {
			if t.failed {
				continue
			}
			fmt.Printf("instrumented=%-5v", t.res.Instrumented)
			s, ok, err := measureTwice(ctx, f, func() (step, error) { return measure(ctx, f, t.edge, "", rate, cpuTime) })
			if err != nil {
				return nil, err
			}
			t.res.Steps = append(t.res.Steps, s...)
			if !ok {
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
	fmt.Printf("\nGOMAXPROCS=%d, step %s, threshold p99 < %s\n", runtime.GOMAXPROCS(0), f.stepDur, f.p99)
	for _, r := range results {
		fmt.Printf("instrumented=%-5v max sustained rate %6.0f/s (spans received %d, metric points %d)\n", r.Instrumented, r.MaxRate, r.Spans, r.Points)
	}
	if ratio, n := cpuOverhead(results[0].Steps, results[1].Steps); n > 0 {
		fmt.Printf("overhead: CPU per request instrumented / uninstrumented, median over %d steps at equal rates: %.2f (%.0f%% more)\n", n, ratio, 100*(ratio-1))
	}
	return results, nil
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
