package collector_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/collector/tracestore"
	"github.com/burnrate/burnrate/internal/testutil"
)

// BenchOTLPBatch builds what an instrumented HTTP service exports every
// interval: per route and status, a request counter and a latency
// histogram (10 buckets), for routes*codes series sets. It returns the
// request and its number of Prometheus samples.
func benchOTLPBatch(routes int, ts time.Time) (pmetric.Metrics, int) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "demo-api")
	rm.Resource().Attributes().PutStr("service.instance.id", "api-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	cnt := ms.AppendEmpty()
	cnt.SetName("http.server.requests")
	sum := cnt.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hm := ms.AppendEmpty()
	hm.SetName("http.server.request.duration")
	hm.SetUnit("s")
	h := hm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	start := pcommon.NewTimestampFromTime(ts.Add(-time.Hour))
	now := pcommon.NewTimestampFromTime(ts)
	samples := 0
	for r := range routes {
		for _, code := range []int64{200, 404, 500} {
			dp := sum.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("http.route", "/route/"+strconv.Itoa(r))
			dp.Attributes().PutInt("http.response.status_code", code)
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.SetIntValue(ts.Unix())
			hp := h.DataPoints().AppendEmpty()
			hp.Attributes().PutStr("http.route", "/route/"+strconv.Itoa(r))
			hp.Attributes().PutInt("http.response.status_code", code)
			hp.SetStartTimestamp(start)
			hp.SetTimestamp(now)
			hp.ExplicitBounds().FromRaw(bounds)
			counts := make([]uint64, len(bounds)+1)
			var total uint64
			for i := range counts {
				counts[i] = uint64(i + 1)
				total += counts[i]
			}
			hp.BucketCounts().FromRaw(counts)
			hp.SetCount(total)
			hp.SetSum(float64(total) * 0.1)
			samples += 1 + len(bounds) + 1 + 2 // counter, buckets incl. +Inf, sum, count
		}
	}
	return md, samples
}

// BenchmarkOTLPMetricsIngest measures OTLP/HTTP protobuf metrics ingest
// through the handler (decode, translate, limits, TSDB append and commit),
// without the network. Each request carries 100 routes x 3 codes (4,200
// samples); every iteration is a new scrape-like interval. The delta case
// adds the series-limit pass over a translated copy and the
// delta-to-cumulative conversion.
func BenchmarkOTLPMetricsIngest(b *testing.B) {
	for _, tc := range []struct {
		name string
		t    pmetric.AggregationTemporality
	}{{"cumulative", pmetric.AggregationTemporalityCumulative}, {"delta", pmetric.AggregationTemporalityDelta}} {
		b.Run(tc.name, func(b *testing.B) {
			br := startCollector(b, testConfig(), "")
			h := br.OTLPMetricsHandler()
			base := time.Now().Add(-time.Hour)
			var samples int
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				ts := base.Add(time.Duration(i) * time.Second)
				md, n := benchOTLPBatch(100, ts)
				if tc.t == pmetric.AggregationTemporalityDelta {
					asDelta(md, ts.Add(-time.Second))
				}
				body := otlpProto(b, md)
				req := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(body))
				req.Header.Set("Content-Type", ctProto)
				rec := httptest.NewRecorder()
				b.StartTimer()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte("rejected")) {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
				samples += n
				i++
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// asDelta turns benchOTLPBatch's metrics into deltas starting at start.
func asDelta(md pmetric.Metrics, start time.Time) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	st := pcommon.NewTimestampFromTime(start)
	sum, h := ms.At(0).Sum(), ms.At(1).Histogram()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range sum.DataPoints().Len() {
		sum.DataPoints().At(i).SetStartTimestamp(st)
		h.DataPoints().At(i).SetStartTimestamp(st)
	}
}

// BenchmarkRemoteWriteIngest measures remote-write 1.0 receive of 2,000-sample
// requests (Prometheus's default max_samples_per_send) through the handler.
func BenchmarkRemoteWriteIngest(b *testing.B) {
	br := startCollector(b, testConfig(), "")
	h := br.RemoteWriteHandler()
	base := time.Now().Add(-time.Hour).UnixMilli()
	var samples int
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body := remoteWriteBody(b, benchRemoteWrite(2000, base+int64(i)*1000))
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		for k, v := range remoteWriteHeaders {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		b.StartTimer()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		samples += 2000
		i++
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

func benchRemoteWrite(series int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, series)}
	for s := range series {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  labelsOf("__name__", "bench_requests_total", "job", "bench", "instance", "i-"+strconv.Itoa(s%20), "route", "/r/"+strconv.Itoa(s)),
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts)}},
		})
	}
	return req
}

// BenchmarkOTLPTracesIngest measures OTLP/HTTP span ingest into the real
// trace store through the handler: 100 spans (10 traces) per request.
func BenchmarkOTLPTracesIngest(b *testing.B) {
	br := startCollector(b, testConfig(), "")
	ts, err := tracestore.Open(tracestore.Options{Dir: b.TempDir(), Config: tracestore.DefaultConfig(), Logger: testutil.Logger(b), Registerer: br.Reg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ts.Close() })
	br.SetSpanStore(ts, func(err error) bool { return errors.Is(err, tracestore.ErrOverloaded) })
	h := br.OTLPTracesHandler()
	var spans int
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body := benchTraces(b, i, 10, 10)
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctProto)
		rec := httptest.NewRecorder()
		b.StartTimer()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		spans += 100
		i++
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}

func benchTraces(b testing.TB, batch, traces, spansPer int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "demo-api")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for t := range traces {
		var tid pcommon.TraceID
		copy(tid[:], strconv.Itoa(batch*traces+t+1)+"-burnrate-bench!")
		for s := range spansPer {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(pcommon.SpanID{byte(s + 1), 1, 2, 3, 4, 5, 6, 7})
			if s > 0 {
				sp.SetParentSpanID(pcommon.SpanID{1, 1, 2, 3, 4, 5, 6, 7})
			}
			sp.SetName("GET /api/items")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(s+1) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
			sp.Attributes().PutStr("http.route", "/api/items")
			sp.Attributes().PutInt("http.response.status_code", 200)
		}
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}
