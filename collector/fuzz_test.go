package collector_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/burnrate/burnrate/collector"
)

// fuzzCollector is one collector shared by every input of a fuzz run.
func fuzzCollector(f *testing.F) *collector.Collector {
	f.Helper()
	cfg := testConfig()
	cfg.Limits.MaxActiveSeries = 10_000
	reg := prometheus.NewRegistry()
	c, err := collector.Open(collector.Options{Dir: f.TempDir(), Config: cfg, Registerer: reg, Gatherer: reg})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	return c
}

// maxRequestCPU is the CPU time one fuzzed OTLP request may cost: a small
// body that costs more (the target_info loop over a span of years once did)
// is a finding.
const maxRequestCPU = 100 * time.Millisecond

// FuzzOTLPMetrics feeds arbitrary bodies, as protobuf and as JSON, through
// the OTLP metrics decoder and, when they decode, through the translator
// and the limits into the TSDB. Nothing may panic, and no request may cost
// more than maxRequestCPU of CPU.
func FuzzOTLPMetrics(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	md := gaugeMetrics("svc", "fuzz_gauge", 2, now)
	f.Add(otlpProto(f, md), false)
	f.Add(otlpJSON(f, md), true)
	f.Add([]byte(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"scopeMetrics":[{"metrics":[{"name":"h","unit":"s","histogram":{"aggregationTemporality":1,"dataPoints":[{"timeUnixNano":"1700000000000000000","count":"3","sum":1.5,"bucketCounts":["1","2"],"explicitBounds":[0.5]}]}}]}]}]}`), true)
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"e","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"1700000000000000000","count":"2","scale":3,"positive":{"offset":-1,"bucketCounts":["1","1"]}}]}}]}]}]}`), true)
	f.Add([]byte(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}},{"key":"host.name","value":{"stringValue":"h"}}]},"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"0","asDouble":1},{"timeUnixNano":"1700000000000000000","asDouble":2}]}}]}]}]}`), true)
	c := fuzzCollector(f)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		mt := "application/x-protobuf"
		if asJSON {
			mt = "application/json"
		}
		var err error
		cpu, measured := threadCPU(func() {
			var md pmetric.Metrics
			if md, err = collector.DecodeOTLPMetrics(body, mt); err != nil {
				err = nil
				return
			}
			_, err = c.AppendOTLPMetrics(context.Background(), md)
		})
		if err != nil {
			t.Fatalf("append of a decoded request failed: %v", err)
		}
		if measured && cpu > maxRequestCPU {
			t.Fatalf("a %d-byte request cost %s of CPU, more than %s", len(body), cpu, maxRequestCPU)
		}
	})
}

// FuzzOTLPTraces feeds arbitrary bodies through the OTLP traces decoder.
func FuzzOTLPTraces(f *testing.F) {
	_, pb := oneTrace(f)
	f.Add(pb, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		mt := "application/x-protobuf"
		if asJSON {
			mt = "application/json"
		}
		req, err := collector.DecodeOTLPTraces(body, mt)
		if err != nil {
			return
		}
		_ = req.Traces().SpanCount()
	})
}

// FuzzRemoteWrite posts arbitrary bodies to the remote-write endpoint (snappy
// and protobuf decoding, label validation, limits, append). Every answer
// must be a 2xx or a 4xx: a 5xx would make senders retry garbage forever.
func FuzzRemoteWrite(f *testing.F) {
	f.Add(remoteWriteBody(f, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  labelsOf("__name__", "m", "job", "j"),
		Samples: []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: 1}},
	}}}))
	f.Add(remoteWriteBody(f, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:     labelsOf("__name__", "h"),
		Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 2}, Schema: 0, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, Timestamp: 1_700_000_000_000, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}}, PositiveDeltas: []int64{1}}},
	}}}))
	f.Add([]byte("not snappy"))
	c := fuzzCollector(f)
	h := c.RemoteWriteHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		for k, v := range remoteWriteHeaders {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for a sender's input: %s", rec.Code, rec.Body.String())
		}
	})
}
