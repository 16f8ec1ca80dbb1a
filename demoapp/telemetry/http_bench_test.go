package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// withNothing serves and calls without instrumentation: the baseline the
// instrumentation's cost is measured from.
var withNothing = instrumentation{
	name:   "none",
	tier:   func(_ *telemetry.Providers, h http.Handler) http.Handler { return h },
	client: func(_ *telemetry.Providers, base http.RoundTripper) http.RoundTripper { return base },
}

// discardSpans is an exporter that drops what it is given, so that the
// benchmark measures recording and the batcher, not an OTLP receiver.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inProcess hands a call to a server handler as net/http would, without
// the network, so that what is measured is the instrumentation and not the
// loopback.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	sr := httptest.NewRequest(r.Method, r.URL.String(), r.Body)
	sr.Header = r.Header
	sr.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, sr)
	return rec.Result(), nil
}

// BenchmarkHTTPHop is one call from an instrumented client to an
// instrumented tier (web.Server's options) answering a small JSON body,
// with the demo's default sampling (a tenth of traces kept, the rest
// recorded and dropped): uninstrumented, with otelhttp, and with the demo's
// own instrumentation; over loopback TCP and in process. Run with -count 1
// in a loop to compare them (bench/README.md): the variants then take
// turns, so a change in the machine's load sways them alike.
func BenchmarkHTTPHop(b *testing.B) {
	for _, in := range []instrumentation{withNothing, withOtelhttp, withBurnrate} {
		for _, via := range []string{"inprocess", "loopback"} {
			b.Run("instr="+in.name+"/via="+via, func(b *testing.B) {
				tel, err := telemetry.New(context.Background(), "demo-bench", "b", telemetry.Options{
					Enabled: true, SampleRatio: 0.1, KeepSlowerThan: 250 * time.Millisecond,
					SpanExporter: discardSpans{}, MetricReader: sdkmetric.NewManualReader(),
				})
				require.NoError(b, err)
				b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
				mux := http.NewServeMux()
				mux.HandleFunc("GET /api/products/{id}", func(w http.ResponseWriter, r *http.Request) {
					web.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "name": "product"})
				})
				h := in.tier(tel, mux)
				var base http.RoundTripper = inProcess{h}
				url := "http://127.0.0.1:9001/api/products/7"
				if via == "loopback" {
					srv := httptest.NewServer(h)
					b.Cleanup(srv.Close)
					base = &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
					url = srv.URL + "/api/products/7"
				}
				client := &http.Client{Transport: in.client(tel, base)}
				req, err := http.NewRequest(http.MethodGet, url, nil)
				require.NoError(b, err)
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				// CPU per call, both sides and the runtime's (GC) together:
				// what the demo pays per hop, less swayed than ns/op by what
				// else the machine runs.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
