package app_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestCollectorIsWiredIntoTheApp sends OTLP to the separate OTLP listener,
// queries it on the main listener, stops the app and requires the series to
// be there after a restart on the same data directory.
func TestCollectorIsWiredIntoTheApp(t *testing.T) {
	dir := t.TempDir()
	opts := app.DefaultOptions()
	opts.DataDir = dir
	opts.Demo.Enabled = false
	opts.Collector.OTLPListen = "127.0.0.1:0"

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "demo-api")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("wiring.check")
	sum := g.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	now := time.Now()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.SetDoubleValue(7)
	// The sample carries an exemplar of a trace sent to /v1/traces.
	traceID := pcommon.TraceID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTraceID(traceID)
	ex.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetDoubleValue(7)
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "demo-api")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("GET /items")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	traceBody, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	require.NoError(t, err)

	query := func(base string) string {
		_, out := testutil.HTTPGet(t, base+"/api/v1/query?query=wiring_check_total&time="+now.Add(time.Second).Format(time.RFC3339Nano))
		return out
	}

	{
		a, err := app.New(withTestDefaults(t, opts))
		require.NoError(t, err)
		var otlpURL string
		for _, e := range a.Endpoints() {
			if e.Name == "otlp" && !strings.HasPrefix(e.URL, a.URL()) {
				otlpURL = e.URL
			}
		}
		require.NotEmpty(t, otlpURL, "the separate OTLP listener is printed at start-up: %v", a.Endpoints())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.WaitReady(t, a.URL(), 30*time.Second)

		resp, err := http.Post(otlpURL, "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, query(a.URL()), `"job":"demo-api"`)

		resp, err = http.Post(strings.Replace(otlpURL, "/v1/metrics", "/v1/traces", 1), "application/json", bytes.NewReader(traceBody))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		// A metric exemplar leads to its trace: the exemplar's trace_id
		// opens the whole trace on the trace API.
		code, out := testutil.HTTPGet(t, a.URL()+"/api/v1/query_exemplars?query=wiring_check_total&start="+
			now.Add(-time.Minute).Format(time.RFC3339)+"&end="+now.Add(time.Minute).Format(time.RFC3339))
		require.Equal(t, http.StatusOK, code, out)
		require.Contains(t, out, `"trace_id":"`+traceID.String()+`"`)
		code, out = testutil.HTTPGet(t, a.URL()+"/api/v1/traces/"+traceID.String())
		require.Equal(t, http.StatusOK, code, out)
		require.Contains(t, out, "GET /items")
		cancel()
		require.NoError(t, <-done)
	}
	opts.Collector.OTLPListen = ""
	r := apptest.StartApp(t, opts)
	require.Contains(t, query(r.URL), `"value":[`, "the sample survives a restart")
}

func withTestDefaults(t *testing.T, o app.Options) app.Options {
	o.Listen = "127.0.0.1:0"
	o.ShutdownTimeout = 2 * time.Second
	o.Logger = testutil.Logger(t)
	return o
}
