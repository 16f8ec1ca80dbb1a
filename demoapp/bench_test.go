package demoapp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/burnrate/burnrate/demoapp"
)

// BenchmarkFullPath measures one product read through edge, API, cache and
// store (b.N requests from parallel clients over loopback), with
// OpenTelemetry on (exporting to a discarding OTLP/HTTP receiver) and off.
// bench/demo measures the sustainable rate at a p99 threshold; this is the
// per-request cost for benchstat.
func BenchmarkFullPath(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	for _, instrumented := range []bool{false, true} {
		b.Run("instrumented="+strconv.FormatBool(instrumented), func(b *testing.B) {
			cfg := demoapp.DefaultConfig()
			cfg.EdgeListen = "127.0.0.1:0"
			cfg.Load.Enabled = false
			cfg.Instrumentation = instrumented
			cfg.OTLPEndpoint = sink.URL
			cfg.RateLimit, cfg.RateBurst, cfg.MaxConcurrent = 1e9, 1e9, 1<<16
			p, err := demoapp.New(context.Background(), demoapp.Options{Config: cfg, DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() { cancel(); <-done; p.Close() }()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			get := func(i int) {
				resp, err := client.Get(p.EdgeURL() + "/api/products/" + strconv.Itoa(i%500))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for i := range 500 { // warm the cache
				get(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					get(i)
					i++
				}
			})
		})
	}
}
