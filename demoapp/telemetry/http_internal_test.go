package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The attribute cache is keyed by what clients send (the Host header): a
// client that makes up a new host per request must not grow it without
// bound, and requests beyond the bound are still measured right.
func TestTheAttributeCacheStaysBoundedUnderMadeUpHostHeaders(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	p, err := New(context.Background(), "demo-api", "t", Options{
		Enabled: true, SampleRatio: 0, SpanExporter: tracetest.NewInMemoryExporter(), MetricReader: reader,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }), HandlerOptions{})

	const hosts = maxCached + 50
	for i := range hosts {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = "h" + strconv.Itoa(i) + ".example:8080"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	s := h.(*serverHandler)
	require.Len(t, s.sets.m, maxCached, "start and end entries of the first hosts, no more")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var n uint64
	for _, dp := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints {
		n += dp.Count // the SDK folds series past its own limit into one
	}
	require.Equal(t, uint64(hosts), n, "every request measured")

	// Past the bound, a key's telemetry is built for the request alone.
	key := serverKey{method: http.MethodGet, host: "late.example:8080", proto: "HTTP/1.1", end: true, status: http.StatusNoContent}
	c := s.sets.get(key, s.build)
	require.Len(t, s.sets.m, maxCached, "not kept")
	require.Len(t, c.record, 1)
	require.Equal(t, []attribute.KeyValue{semconv.HTTPResponseStatusCode(http.StatusNoContent)}, c.attrs)
}
