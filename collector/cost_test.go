package collector_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/collector/tracestore"
	"github.com/burnrate/burnrate/internal/testutil"
)

// spanMetrics is one resource (with an attribute that gives it a
// target_info) and one gauge with a point at each of ts.
func spanMetrics(ts ...time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	rm.Resource().Attributes().PutStr("host.name", "h1")
	dps := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	dps.SetName("span_gauge")
	g := dps.SetEmptyGauge().DataPoints()
	for i, t := range ts {
		dp := g.AppendEmpty()
		dp.Attributes().PutStr("i", strconv.Itoa(i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
		dp.SetDoubleValue(1)
	}
	return md
}

// appendsAttempted is every sample the collector tried to write for OTLP,
// accepted or rejected.
func appendsAttempted(t testing.TB, br *testCollector) float64 {
	t.Helper()
	return testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_accepted_total", map[string]string{"protocol": "otlp"}) +
		testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp"})
}

// TestOTLPRequestCostIsBounded sends tiny requests whose points span years.
// The translator's target_info loop (a sample every lookback_delta/2
// between a resource's earliest and latest point) once made such a request
// cost hundreds of thousands of appends; now it stops at the first error
// and after the request's budget, and target_info still has a sample at the
// newest point so that joins on it keep working.
func TestOTLPRequestCostIsBounded(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	hdr := map[string]string{"Content-Type": ctProto}
	for _, tc := range []struct {
		name  string
		prior []time.Time // sent first, in their own request
		ts    []time.Time
	}{
		{name: "two points a year apart into an empty TSDB", ts: []time.Time{now.Add(-365 * 24 * time.Hour), now}},
		{name: "a point at timestamp 0 and one now", ts: []time.Time{time.Unix(0, 0), now}},
		{name: "a point a year late into a TSDB with recent data", prior: []time.Time{now}, ts: []time.Time{now.Add(-365 * 24 * time.Hour), now.Add(time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := startCollector(t, testConfig(), "")
			if tc.prior != nil {
				code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpProto(t, spanMetrics(tc.prior...)))
				require.Equal(t, http.StatusOK, code, body)
			}
			before := appendsAttempted(t, br)
			code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpProto(t, spanMetrics(tc.ts...)))
			require.Equal(t, http.StatusOK, code, body)
			attempts := appendsAttempted(t, br) - before
			// Two data points, at most 2+1000 target_info samples, the one
			// refused beyond the budget and one more at the newest point.
			require.LessOrEqual(t, attempts, 2.0+1002+1+1, body)
			t.Logf("%v appends attempted; answer %s", attempts, body)

			newest := tc.ts[len(tc.ts)-1]
			_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`target_info{job="svc"}`}, "time": {strconv.FormatInt(newest.Unix(), 10)}}, false)
			require.Contains(t, string(r.Data), `"host_name":"h1"`, "target_info at the newest point")
		})
	}
}

// deltaSum is one delta sum with a point per stream name, starting at start
// and ending at end.
func deltaSum(start, end time.Time, streams ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("delta_requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for _, s := range streams {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("route", s)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(end))
		dp.SetIntValue(1)
	}
	return md
}

// TestDeltaPointsDroppedAreCountedAndAnswered sends delta points that the
// delta-to-cumulative conversion cannot use (a retried duplicate, an older
// start, a stream beyond max_delta_streams) and requires each one in the
// partial-success answer and in burnrate_collector_samples_rejected_total,
// by reason.
func TestDeltaPointsDroppedAreCountedAndAnswered(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxDeltaStreams = 2
	br := startCollector(t, cfg, "")
	hdr := map[string]string{"Content-Type": ctJSON}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	send := func(md pmetric.Metrics) string {
		code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpJSON(t, md))
		require.Equal(t, http.StatusOK, code, body)
		return body
	}
	rejected := func(reason string) float64 {
		return testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp", "reason": reason})
	}

	body := send(deltaSum(t0, t0.Add(10*time.Second), "a", "b"))
	require.NotContains(t, body, "rejectedDataPoints")
	for _, tc := range []struct {
		name, reason string
		md           pmetric.Metrics
	}{
		{"a retried export is a duplicate", "delta_out_of_order", deltaSum(t0, t0.Add(10*time.Second), "a")},
		{"a point starting before its stream is dropped", "delta_older_start", deltaSum(t0.Add(-time.Hour), t0.Add(20*time.Second), "b")},
		{"a stream beyond max_delta_streams is refused", "delta_stream_limit", deltaSum(t0, t0.Add(10*time.Second), "c")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rejected(tc.reason)
			body := send(tc.md)
			require.Contains(t, body, `"rejectedDataPoints":"1"`)
			require.Contains(t, body, tc.reason+"=1")
			require.Equal(t, before+1, rejected(tc.reason))
		})
	}
}

// TestPartialSuccessCountsPoints requires a metric the translator cannot
// take to be answered with the number of its points, not one per error.
func TestPartialSuccessCountsPoints(t *testing.T) {
	cfg := testConfig()
	cfg.OTLP.DeltaToCumulative = false
	br := startCollector(t, cfg, "")
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctJSON}, otlpJSON(t, deltaSum(t0, t0.Add(10*time.Second), "a", "b", "c")))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"rejectedDataPoints":"3"`)
	require.Contains(t, body, "invalid_sample=3")
	require.Contains(t, body, "Delta temporality")
	require.Equal(t, 3.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp", "reason": "invalid_sample"}))
}

// TestSeriesLimitComesBeforeTheDeltaState floods one delta metric with new
// streams beyond its series limit and requires the refused streams to stay
// out of the delta-to-cumulative state, so that another metric's new
// streams still fit there.
func TestSeriesLimitComesBeforeTheDeltaState(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxSeriesPerMetric = 2
	cfg.Limits.MaxDeltaStreams = 4
	br := startCollector(t, cfg, "")
	hdr := map[string]string{"Content-Type": ctJSON}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	flood := make([]string, 10)
	for i := range flood {
		flood[i] = "r" + strconv.Itoa(i)
	}
	code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpJSON(t, deltaSum(t0, t0.Add(10*time.Second), flood...)))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"rejectedDataPoints":"8"`)
	require.Contains(t, body, "metric_series_limit=8")

	other := deltaSum(t0, t0.Add(10*time.Second), "a", "b")
	other.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("other_requests")
	code, _, body = post(t, br.URL+"/v1/metrics", hdr, otlpJSON(t, other))
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "rejectedDataPoints")
	require.Zero(t, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp", "reason": "delta_stream_limit"}))
}

// TestTargetInfoSurvivesLongResourceAttributes sends a resource with a
// command line longer than the label value limit and requires target_info
// to be written with the value cut to the limit and marked, not dropped.
func TestTargetInfoSurvivesLongResourceAttributes(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxLabelValueLength = 64
	br := startCollector(t, cfg, "")
	now := time.Now().Truncate(time.Second)
	md := spanMetrics(now)
	md.ResourceMetrics().At(0).Resource().Attributes().PutStr("process.command_line", "/usr/bin/java "+strings.Repeat("-Dkey=välue ", 100))
	code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctJSON}, otlpJSON(t, md))
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "rejectedDataPoints")

	_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`target_info{job="svc"}`}, "time": {strconv.FormatInt(now.Unix(), 10)}}, false)
	var res []struct {
		Metric map[string]string `json:"metric"`
	}
	require.NoError(t, jsonUnmarshal(r.Data[bytes.Index(r.Data, []byte(`"result":`))+len(`"result":`):len(r.Data)-1], &res))
	require.Len(t, res, 1)
	v := res[0].Metric["process_command_line"]
	require.True(t, strings.HasPrefix(v, "/usr/bin/java -Dkey=välue "), v)
	require.True(t, strings.HasSuffix(v, "...(truncated)"), v)
	require.LessOrEqual(t, len(v), 64)
	require.True(t, utf8.ValidString(v))
}

// TestTraceBatchOverMaxBytesIsAnsweredWithItsCount posts, through
// /v1/traces into the real trace store, a batch larger than the store's
// max_bytes, and requires partial success with every span counted as
// rejected (it was accepted and deleted at once before).
func TestTraceBatchOverMaxBytesIsAnsweredWithItsCount(t *testing.T) {
	br := startCollector(t, testConfig(), "")
	tcfg := tracestore.DefaultConfig()
	tcfg.MaxBytes = 1 << 20
	ts, err := tracestore.Open(tracestore.Options{Dir: t.TempDir(), Config: tcfg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ts.Close() })
	br.SetSpanStore(ts, nil)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for i := range 300 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 1})
		sp.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), 1})
		sp.SetName("big")
		sp.Attributes().PutStr("payload", strings.Repeat("x", 4096))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	require.NoError(t, err)
	code, _, resp := post(t, br.URL+"/v1/traces", map[string]string{"Content-Type": ctJSON}, body)
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, `"rejectedSpans":"300"`)
	require.Contains(t, resp, "300 of 300 spans rejected")
}
