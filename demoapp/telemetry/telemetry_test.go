package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// TestProvidersExportOverOTLPHTTP decodes what the exporters send, as the
// collector does, and checks the resource that becomes job and instance.
func TestProvidersExportOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var services, instances, metricNames []string
	var spans int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/v1/traces":
			req := ptraceotlp.NewExportRequest()
			require.NoError(t, req.UnmarshalProto(body))
			spans += req.Traces().SpanCount()
		case "/v1/metrics":
			req := pmetricotlp.NewExportRequest()
			require.NoError(t, req.UnmarshalProto(body))
			rms := req.Metrics().ResourceMetrics()
			for i := range rms.Len() {
				attrs := rms.At(i).Resource().Attributes()
				sn, _ := attrs.Get("service.name")
				id, _ := attrs.Get("service.instance.id")
				services, instances = append(services, sn.Str()), append(instances, id.Str())
				sms := rms.At(i).ScopeMetrics()
				for j := range sms.Len() {
					for k := range sms.At(j).Metrics().Len() {
						metricNames = append(metricNames, sms.At(j).Metrics().At(k).Name())
					}
				}
			}
		default:
			t.Errorf("unexpected path %s", r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()

	p, err := telemetry.New(context.Background(), "demo-api", "127.0.0.1:9001", telemetry.Options{
		Enabled: true, Endpoint: srv.URL, MetricInterval: time.Hour, SampleRatio: 1,
	})
	require.NoError(t, err)
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	span.End()
	c, err := p.Meter.Meter("t").Int64Counter("demo.test.ops")
	require.NoError(t, err)
	c.Add(context.Background(), 3)
	require.NoError(t, p.Shutdown(context.Background()))

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, spans)
	require.Contains(t, services, "demo-api")
	require.Contains(t, instances, "127.0.0.1:9001")
	require.Contains(t, metricNames, "demo.test.ops")
}

func TestDisabledProvidersExportNothing(t *testing.T) {
	p, err := telemetry.New(context.Background(), "demo-api", "x", telemetry.Options{Enabled: false, Endpoint: "http://127.0.0.1:1"})
	require.NoError(t, err)
	_, span := p.Tracer.Tracer("t").Start(context.Background(), "op")
	require.False(t, span.SpanContext().IsValid())
	require.NoError(t, p.Shutdown(context.Background()))
}
