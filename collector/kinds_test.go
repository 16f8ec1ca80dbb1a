package collector_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// TestOTLPMetricKindsBecomePrometheusSeries sends an exponential histogram
// and a summary (the kinds the SDK test does not produce) and queries them
// as Prometheus stores them: a native histogram, and quantile/_sum/_count
// series.
func TestOTLPMetricKindsBecomePrometheusSeries(t *testing.T) {
	br := startCollector(t, testConfig(), "")
	now := time.Now()
	ts := pcommon.NewTimestampFromTime(now)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "kinds")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	eh := ms.AppendEmpty()
	eh.SetName("rpc.latency")
	eh.SetUnit("ms")
	exp := eh.SetEmptyExponentialHistogram()
	exp.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := exp.DataPoints().AppendEmpty()
	edp.SetTimestamp(ts)
	edp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
	edp.SetScale(2)
	edp.SetCount(10)
	edp.SetSum(123)
	edp.SetZeroCount(1)
	edp.Positive().SetOffset(3)
	edp.Positive().BucketCounts().FromRaw([]uint64{2, 3, 4})

	sm := ms.AppendEmpty()
	sm.SetName("gc.pause")
	sm.SetUnit("s")
	sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts)
	sdp.SetCount(4)
	sdp.SetSum(0.8)
	for q, v := range map[float64]float64{0.5: 0.1, 0.99: 0.4} {
		qv := sdp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(v)
	}

	code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctProto}, otlpProto(t, md))
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "rejected")

	at := strconv.FormatInt(now.Unix()+1, 10)
	for q, want := range map[string]string{
		`histogram_count(rpc_latency_milliseconds{job="kinds"})`: `"10"]`,
		`histogram_sum(rpc_latency_milliseconds{job="kinds"})`:   `"123"]`,
		`gc_pause_seconds{job="kinds", quantile="0.99"}`:         `"0.4"]`,
		`gc_pause_seconds_sum{job="kinds"}`:                      `"0.8"]`,
		`gc_pause_seconds_count{job="kinds"}`:                    `"4"]`,
	} {
		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {q}, "time": {at}}, false)
		require.Equal(t, "success", r.Status, q)
		require.Contains(t, string(r.Data), want, q)
	}
}
