package collector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/collector/tracestore"
	"github.com/burnrate/burnrate/internal/testutil"
)

// gaugeMetrics builds an OTLP request with n series of one gauge.
func gaugeMetrics(service, name string, n int, ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service)
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName(name)
	dps := g.SetEmptyGauge().DataPoints()
	for i := range n {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("shard", strconv.Itoa(i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(float64(i))
	}
	return md
}

func otlpProto(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	return b
}

func otlpJSON(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	require.NoError(t, err)
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func oneTrace(t testing.TB) (ptrace.Traces, []byte) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "demo-edge")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("GET /")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return td, b
}

const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

// TestBadInputGetsTheRightStatus sends malformed, oversize and wrong-type
// requests to every ingest endpoint and requires the status and message a
// sender can act on, then requires that the process still serves.
func TestBadInputGetsTheRightStatus(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 64 << 10
	br := startCollector(t, cfg, "")
	ts, err := tracestore.Open(tracestore.Options{Dir: t.TempDir(), Config: tracestore.DefaultConfig(), Logger: testutil.Logger(t), Registerer: br.Reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ts.Close() })
	br.SetSpanStore(ts, func(err error) bool { return errors.Is(err, tracestore.ErrOverloaded) })

	now := time.Now()
	good := otlpProto(t, gaugeMetrics("svc", "good_gauge", 3, now))
	big := otlpProto(t, gaugeMetrics("svc", "big_gauge", 5000, now)) // > 64 KiB
	require.Greater(t, len(big), 64<<10)
	bomb := gzipped(t, make([]byte, 10<<20)) // tiny compressed, 10 MiB inflated
	_, trace := oneTrace(t)
	rw := remoteWriteBody(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: labelsOf("__name__", "rw_metric", "job", "x"), Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}},
	}}})

	cases := []struct {
		name    string
		path    string
		method  string
		headers map[string]string
		body    []byte
		code    int
		message string
	}{
		{"valid OTLP protobuf is accepted", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto}, good, 200, ""},
		{"valid OTLP JSON is accepted", "/v1/metrics", "POST", map[string]string{"Content-Type": ctJSON}, otlpJSON(t, gaugeMetrics("svc", "json_gauge", 2, now)), 200, ""},
		{"gzipped OTLP JSON is accepted", "/v1/metrics", "POST", map[string]string{"Content-Type": ctJSON + "; charset=utf-8", "Content-Encoding": "gzip"}, gzipped(t, otlpJSON(t, gaugeMetrics("svc", "gz_gauge", 2, now))), 200, ""},
		{"a text body is an unsupported media type", "/v1/metrics", "POST", map[string]string{"Content-Type": "text/plain"}, []byte("x 1"), 415, "unsupported Content-Type"},
		{"a missing content type is an unsupported media type", "/v1/metrics", "POST", nil, good, 415, "unsupported Content-Type"},
		{"an unknown encoding is an unsupported media type", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto, "Content-Encoding": "br"}, good, 415, "unsupported Content-Encoding"},
		{"garbage protobuf is a bad request", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto}, []byte("\xff\xff\xff\xffnot protobuf"), 400, "malformed OTLP metrics request"},
		{"garbage JSON is a bad request", "/v1/metrics", "POST", map[string]string{"Content-Type": ctJSON}, []byte(`{"resourceMetrics":[{`), 400, "malformed OTLP metrics request"},
		{"a broken gzip stream is a bad request", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto, "Content-Encoding": "gzip"}, []byte("not gzip"), 400, "malformed gzip body"},
		{"an oversize body is too large", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto}, big, 413, "collector.max_request_bytes"},
		{"a gzip bomb is too large", "/v1/metrics", "POST", map[string]string{"Content-Type": ctProto, "Content-Encoding": "gzip"}, bomb, 413, "after decompression"},
		{"a GET is not allowed", "/v1/metrics", "GET", nil, nil, 405, "send POST"},
		{"a valid trace is accepted", "/v1/traces", "POST", map[string]string{"Content-Type": ctProto}, trace, 200, ""},
		{"garbage traces are a bad request", "/v1/traces", "POST", map[string]string{"Content-Type": ctProto}, []byte("\xff\xff\xff"), 400, "malformed OTLP traces request"},
		{"traces as text are an unsupported media type", "/v1/traces", "POST", map[string]string{"Content-Type": "text/plain"}, trace, 415, "unsupported Content-Type"},
		{"oversize traces are too large", "/v1/traces", "POST", map[string]string{"Content-Type": ctProto}, big, 413, "collector.max_request_bytes"},
		{"valid remote write is accepted", "/api/v1/write", "POST", remoteWriteHeaders, rw, 204, ""},
		{"remote write that is not snappy is a bad request", "/api/v1/write", "POST", remoteWriteHeaders, []byte("plain bytes"), 400, ""},
		{"remote write with a JSON body is an unsupported media type", "/api/v1/write", "POST", map[string]string{"Content-Type": ctJSON}, rw, 415, ""},
		{"oversize remote write is too large", "/api/v1/write", "POST", remoteWriteHeaders, bytes.Repeat([]byte("x"), 100<<10), 413, "collector.max_request_bytes"},
		{"a remote-write snappy bomb is too large", "/api/v1/write", "POST", remoteWriteHeaders, snappyBomb(t, 1<<20), 413, "collector.max_request_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, br.URL+tc.path, bytes.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			require.Equal(t, tc.code, resp.StatusCode, body.String())
			require.Contains(t, body.String(), tc.message)
		})
	}

	t.Run("the process keeps serving and counts the failures", func(t *testing.T) {
		code, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`count({__name__=~"good_gauge|json_gauge|gz_gauge|rw_metric"})`}}, false)
		require.Equal(t, 200, code)
		require.Contains(t, string(r.Data), `"8"]`)
		require.Equal(t, 2.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_requests_total", map[string]string{"protocol": "otlp", "code": "413"}))
		require.Equal(t, 3.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_requests_total", map[string]string{"protocol": "otlp", "code": "415"}))
		require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_spans_accepted_total", nil))
	})

	t.Run("an accepted trace can be read back", func(t *testing.T) {
		got, err := ts.Trace(context.Background(), pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		require.NoError(t, err)
		require.Equal(t, 1, got.SpanCount())
	})
}

func snappyBomb(t testing.TB, n int) []byte {
	t.Helper()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: labelsOf("__name__", "m", "pad", strings.Repeat("a", n))}}}
	return remoteWriteBody(t, req)
}

// blockingSpans holds Append until released, to fill the in-flight slots.
type blockingSpans struct {
	entered chan struct{}
	release chan struct{}
	err     error
}

func (b *blockingSpans) Append(context.Context, ptrace.Traces) (int, error) {
	if b.entered != nil {
		b.entered <- struct{}{}
		<-b.release
	}
	return 0, b.err
}

// TestPressureGetsRetryAfter requires 429 with Retry-After when the
// in-flight bound is reached or the trace store pushes back, so that
// senders back off and retry instead of losing data.
func TestPressureGetsRetryAfter(t *testing.T) {
	_, trace := oneTrace(t)
	hdr := map[string]string{"Content-Type": ctProto}

	t.Run("a request beyond max_inflight_requests gets 429 and Retry-After", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxInflightRequests = 1
		br := startCollector(t, cfg, "")
		spans := &blockingSpans{entered: make(chan struct{}), release: make(chan struct{})}
		br.SetSpanStore(spans, nil)
		done := make(chan int)
		go func() {
			code, _, _ := post(t, br.URL+"/v1/traces", hdr, trace)
			done <- code
		}()
		<-spans.entered
		code, h, body := post(t, br.URL+"/v1/metrics", hdr, otlpProto(t, gaugeMetrics("svc", "g", 1, time.Now())))
		require.Equal(t, http.StatusTooManyRequests, code, body)
		require.Equal(t, "1", h.Get("Retry-After"))
		require.Contains(t, body, "max_inflight_requests")
		close(spans.release)
		require.Equal(t, http.StatusOK, <-done)
		code, _, body = post(t, br.URL+"/v1/metrics", hdr, otlpProto(t, gaugeMetrics("svc", "g", 1, time.Now())))
		require.Equal(t, http.StatusOK, code, body)
	})

	t.Run("an overloaded trace store gets 429 and Retry-After", func(t *testing.T) {
		br := startCollector(t, testConfig(), "")
		br.SetSpanStore(&blockingSpans{err: fmt.Errorf("append: %w", tracestore.ErrOverloaded)}, func(err error) bool { return errors.Is(err, tracestore.ErrOverloaded) })
		code, h, body := post(t, br.URL+"/v1/traces", hdr, trace)
		require.Equal(t, http.StatusTooManyRequests, code, body)
		require.NotEmpty(t, h.Get("Retry-After"))
	})

	t.Run("a failing trace store gets 503 and Retry-After", func(t *testing.T) {
		br := startCollector(t, testConfig(), "")
		br.SetSpanStore(&blockingSpans{err: errors.New("disk full")}, nil)
		code, h, body := post(t, br.URL+"/v1/traces", hdr, trace)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.NotEmpty(t, h.Get("Retry-After"))
		require.Contains(t, body, "disk full")
	})
}

// TestLimitsRejectWithACount floods the collector with series beyond its
// limits and requires partial acceptance, a clear count for the sender,
// per-reason self-metrics, and a process that keeps serving.
func TestLimitsRejectWithACount(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxSeriesPerMetric = 10
	cfg.Limits.MaxActiveSeries = 20
	cfg.Limits.MaxLabelValueLength = 32
	br := startCollector(t, cfg, "")
	now := time.Now()

	t.Run("OTLP beyond the per-metric limit is partly accepted with a count", func(t *testing.T) {
		code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctJSON}, otlpJSON(t, gaugeMetrics("svc", "wide_gauge", 20, now)))
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"rejectedDataPoints":"10"`)
		require.Contains(t, body, "metric_series_limit=10")
		require.Contains(t, body, "collector.limits.max_series_per_metric")
		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`count(wide_gauge)`}}, false)
		require.Contains(t, string(r.Data), `"10"]`)
	})

	t.Run("remote write beyond the active series limit gets 400 with the counts", func(t *testing.T) {
		req := &prompb.WriteRequest{}
		for i := range 8 {
			for _, m := range []string{"rw_a", "rw_b"} {
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
					Labels:  labelsOf("__name__", m, "i", strconv.Itoa(i)),
					Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}},
				})
			}
		}
		code, _, body := post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, req))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "6 of 16 samples rejected (series_limit=6)")
		require.Contains(t, body, "collector.limits.max_active_series")
		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`count({__name__=~"rw_.*"})`}}, false)
		require.Contains(t, string(r.Data), `"10"]`)
	})

	t.Run("a label value over the length limit is rejected as invalid labels", func(t *testing.T) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  labelsOf("__name__", "wide_gauge", "shard", "0", "note", strings.Repeat("x", 40)),
			Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}},
		}}}
		code, _, body := post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, req))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "invalid_labels=1")
		require.Contains(t, body, "max_label_value_length")
	})

	t.Run("samples older than the out-of-order window and duplicates are refused and counted", func(t *testing.T) {
		s := func(ts int64, v float64) *prompb.WriteRequest {
			return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels: labelsOf("__name__", "wide_gauge", "shard", "1", "job", "svc"), Samples: []prompb.Sample{{Timestamp: ts, Value: v}},
			}}}
		}
		// The OTLP series above has this label set, at now.
		code, _, body := post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, s(now.Add(-cfg.TSDB.OutOfOrderWindow-time.Minute).UnixMilli(), 5)))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "too old")
		code, _, body = post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, s(now.UnixMilli(), 99)))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "duplicate")
		require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "remote_write", "reason": "too_old"}))
		require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "remote_write", "reason": "duplicate"}))
	})

	t.Run("the self-metrics count every rejection by reason", func(t *testing.T) {
		require.Equal(t, 10.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp", "reason": "metric_series_limit"}))
		require.Equal(t, 6.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "remote_write", "reason": "series_limit"}))
		require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "remote_write", "reason": "invalid_labels"}))
		require.Equal(t, 10.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_accepted_total", map[string]string{"protocol": "otlp"}))
		code, _ := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`1`}}, false)
		require.Equal(t, http.StatusOK, code)
	})
}

// TestOTLPOutOfOrderWithinTheWindowIsKept sends an OTLP point older than the
// newest of its series, as a retrying exporter does, and requires the
// default out-of-order window to keep it; a point older than the window is
// refused and counted.
func TestOTLPOutOfOrderWithinTheWindowIsKept(t *testing.T) {
	cfg := testConfig()
	require.Equal(t, 30*time.Minute, cfg.TSDB.OutOfOrderWindow)
	br := startCollector(t, cfg, "")
	now := time.Now().Truncate(time.Second)
	hdr := map[string]string{"Content-Type": ctJSON}
	for _, ts := range []time.Time{now, now.Add(-10 * time.Minute)} {
		code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpJSON(t, gaugeMetrics("svc", "late_gauge", 1, ts)))
		require.Equal(t, http.StatusOK, code, body)
		require.NotContains(t, body, "rejectedDataPoints", "a point %s old", now.Sub(ts))
	}
	_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`count_over_time(late_gauge[1h])`}, "time": {strconv.FormatInt(now.Unix(), 10)}}, false)
	require.Contains(t, string(r.Data), `"2"]`)

	code, _, body := post(t, br.URL+"/v1/metrics", hdr, otlpJSON(t, gaugeMetrics("svc", "late_gauge", 1, now.Add(-time.Hour))))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"rejectedDataPoints":"1"`)
	require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "otlp", "reason": "too_old"}))
}
