package collector_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/burnrate/burnrate/collector"
)

// recordInstruments records one of each kind of instrument the demo
// platform and typical services use, with OpenTelemetry units.
func recordInstruments(t *testing.T, ctx context.Context, mp metric.MeterProvider) {
	t.Helper()
	m := mp.Meter("burnrate.test")
	reqs, err := m.Int64Counter("http.server.requests", metric.WithUnit("{request}"))
	require.NoError(t, err)
	dur, err := m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	require.NoError(t, err)
	depth, err := m.Int64UpDownCounter("queue.depth", metric.WithUnit("{item}"))
	require.NoError(t, err)
	temp, err := m.Float64Gauge("cpu.temperature", metric.WithUnit("Cel"))
	require.NoError(t, err)
	netio, err := m.Int64Counter("network.io", metric.WithUnit("By"))
	require.NoError(t, err)
	cpu, err := m.Float64Counter("process.cpu.time", metric.WithUnit("s"))
	require.NoError(t, err)
	size, err := m.Int64Histogram("rpc.payload.size", metric.WithUnit("By"))
	require.NoError(t, err)
	util, err := m.Float64Gauge("system.cpu.utilization", metric.WithUnit("1"))
	require.NoError(t, err)

	get := metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200))
	fail := metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 500))
	for i := range 20 {
		reqs.Add(ctx, 1, get)
		dur.Record(ctx, float64(i)/100, get)
	}
	reqs.Add(ctx, 2, fail)
	dur.Record(ctx, 0.7, fail)
	depth.Add(ctx, 5)
	depth.Add(ctx, -2)
	temp.Record(ctx, 61.5)
	netio.Add(ctx, 4096, metric.WithAttributes(attribute.String("network.io.direction", "receive")))
	cpu.Add(ctx, 1.25)
	size.Record(ctx, 512)
	util.Record(ctx, 0.42)
}

var testResource = resource.NewWithAttributes(semconv.SchemaURL,
	semconv.ServiceName("demo-api"),
	semconv.ServiceInstanceID("api-1"),
	attribute.String("deployment.environment", "test"),
)

// prometheusExporterSeries is what the OpenTelemetry Prometheus exporter
// exposes for the same instruments, one label set per series: the reference
// for series names and labels.
func prometheusExporterSeries(t *testing.T) []string {
	t.Helper()
	reg := promclient.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(testResource))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	recordInstruments(t, context.Background(), mp)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var series []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = lp.GetValue()
			}
			if mf.GetName() == "target_info" {
				// A scrape gives job and instance; Prometheus's translator
				// makes them of these, and leaves them off target_info.
				delete(ls, "service_name")
				delete(ls, "service_instance_id")
			}
			if mf.GetType() != dto.MetricType_HISTOGRAM {
				series = append(series, labelSet(mf.GetName(), ls))
				continue
			}
			series = append(series, labelSet(mf.GetName()+"_sum", ls), labelSet(mf.GetName()+"_count", ls))
			for _, b := range m.GetHistogram().GetBucket() {
				ls["le"] = strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64)
				series = append(series, labelSet(mf.GetName()+"_bucket", ls))
			}
			ls["le"] = "+Inf"
			series = append(series, labelSet(mf.GetName()+"_bucket", ls))
		}
	}
	sort.Strings(series)
	return series
}

// labelSet formats a series as name{k="v",...} with sorted labels. An
// empty label is no label, as in Prometheus (a scrape drops it).
func labelSet(name string, ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k, v := range ls {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, ls[k])
	}
	b.WriteString("}")
	return b.String()
}

// collectorSeries lists job's series in the collector as labelSet does,
// without job and instance (a scrape of the exporter adds those).
func collectorSeries(t *testing.T, base, job string) []string {
	t.Helper()
	code, r := apiCall(t, base, "/api/v1/series", url.Values{"match[]": {`{job="` + job + `"}`}}, false)
	require.Equal(t, http.StatusOK, code)
	var sets []map[string]string
	require.NoError(t, jsonUnmarshal(r.Data, &sets))
	var series []string
	for _, ls := range sets {
		name := ls["__name__"]
		delete(ls, "__name__")
		delete(ls, "job")
		delete(ls, "instance")
		series = append(series, labelSet(name, ls))
	}
	sort.Strings(series)
	return series
}

// TestOpenTelemetrySDKDeliversWithPrometheusExporterNames exports with the
// Go SDK's own OTLP/HTTP exporter and requires the series (names and label
// sets, otel_scope_name and otel_scope_version included) the OpenTelemetry
// Prometheus exporter gives the same instruments.
func TestOpenTelemetrySDKDeliversWithPrometheusExporterNames(t *testing.T) {
	want := prometheusExporterSeries(t)
	require.Contains(t, strings.Join(want, "\n"), "http_server_request_duration_seconds_bucket{")
	require.Contains(t, strings.Join(want, "\n"), `otel_scope_name="burnrate.test"`)
	require.Contains(t, strings.Join(want, "\n"), "target_info{")

	t.Run("protobuf from the SDK exporter gives the Prometheus exporter's names", func(t *testing.T) {
		br := startCollector(t, testConfig(), "")
		ctx := context.Background()
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(br.URL+"/v1/metrics"))
		require.NoError(t, err)
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(testResource))
		// A sampled span in the context makes the SDK attach exemplars.
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
			TraceFlags: trace.FlagsSampled,
		})
		recordInstruments(t, trace.ContextWithSpanContext(ctx, sc), mp)
		require.NoError(t, mp.ForceFlush(ctx))
		require.NoError(t, mp.Shutdown(ctx))

		require.Equal(t, want, collectorSeries(t, br.URL, "demo-api"))

		// service.name and service.instance.id become job and instance.
		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`sum by (job, instance, http_response_status_code) (http_server_requests_total)`}}, false)
		require.Contains(t, string(r.Data), `{"http_response_status_code":"200","instance":"api-1","job":"demo-api"},"value":[`)
		require.Contains(t, string(r.Data), `"20"]`)
		_, r = apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`target_info`}}, false)
		require.Contains(t, string(r.Data), `"deployment_environment":"test"`)

		// Exemplars carry the trace and span IDs to the exemplar storage.
		now := time.Now()
		_, r = apiCall(t, br.URL, "/api/v1/query_exemplars", url.Values{
			"query": {`http_server_request_duration_seconds_bucket`},
			"start": {formatUnix(now.Add(-time.Hour))}, "end": {formatUnix(now.Add(time.Minute))},
		}, false)
		require.Equal(t, "success", r.Status)
		require.Contains(t, string(r.Data), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`)
		require.Contains(t, string(r.Data), `"span_id":"00f067aa0ba902b7"`)
	})

	t.Run("JSON carrying the SDK's export gives the same names", func(t *testing.T) {
		// The Go SDK's OTLP/HTTP exporter only speaks protobuf, so the JSON
		// request is the SDK's own export, captured and re-encoded as
		// OTLP/JSON (hex trace and span IDs) with the collector's pdata.
		var mu sync.Mutex
		var captured [][]byte
		capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			captured = append(captured, b)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/x-protobuf")
		}))
		defer capture.Close()
		ctx := context.Background()
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(capture.URL+"/v1/metrics"))
		require.NoError(t, err)
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(testResource))
		recordInstruments(t, ctx, mp)
		require.NoError(t, mp.Shutdown(ctx))
		require.NotEmpty(t, captured)

		br := startCollector(t, testConfig(), "")
		for _, pb := range captured {
			md, err := collector.DecodeOTLPMetrics(pb, "application/x-protobuf")
			require.NoError(t, err)
			js, err := marshalMetricsJSON(md)
			require.NoError(t, err)
			code, hdr, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": "application/json"}, js)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "application/json", hdr.Get("Content-Type"))
		}
		require.Equal(t, want, collectorSeries(t, br.URL, "demo-api"))
	})

	t.Run("delta counters are accumulated to cumulative series", func(t *testing.T) {
		br := startCollector(t, testConfig(), "")
		ctx := context.Background()
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(br.URL+"/v1/metrics"),
			otlpmetrichttp.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }))
		require.NoError(t, err)
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(testResource))
		c, err := mp.Meter("burnrate.test").Int64Counter("jobs.done", metric.WithUnit("{job}"))
		require.NoError(t, err)
		c.Add(ctx, 5)
		require.NoError(t, mp.ForceFlush(ctx))
		time.Sleep(10 * time.Millisecond) // the next delta must end later than the first
		c.Add(ctx, 7)
		require.NoError(t, mp.ForceFlush(ctx))
		require.NoError(t, mp.Shutdown(ctx))

		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`jobs_done_total{job="demo-api"}`}}, false)
		require.Contains(t, string(r.Data), `"12"]`, string(r.Data))
	})
}

func formatUnix(t time.Time) string { return time.Unix(t.Unix(), 0).UTC().Format(time.RFC3339) }
