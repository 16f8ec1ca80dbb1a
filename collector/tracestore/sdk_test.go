package tracestore

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// receiver is a minimal OTLP/HTTP /v1/traces endpoint in front of the store,
// as the collector's receiver is: protobuf or JSON, gzip, then Append.
func receiver(t *testing.T, s *Store) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		switch r.Header.Get("Content-Type") {
		case "application/x-protobuf":
			err = req.UnmarshalProto(raw)
		case "application/json":
			err = req.UnmarshalJSON(raw)
		default:
			http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := s.Append(r.Context(), req.Traces()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tracerProvider is one service's SDK set-up, exporting with the real
// OTLP/HTTP exporter through a batch span processor.
func tracerProvider(t *testing.T, service, endpoint string, opts ...otlptracehttp.Option) *sdktrace.TracerProvider {
	exp, err := otlptracehttp.New(context.Background(), append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint + "/v1/traces")}, opts...)...)
	require.NoError(t, err)
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
}

func TestOpenTelemetrySDKTraceAcrossTwoServicesComesBackWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []otlptracehttp.Option
	}{
		{"protobuf with gzip", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
		{"JSON", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
			defer func() { _ = s.Close() }()
			otlp := receiver(t, s.Store)
			ctx := context.Background()
			prop := propagation.TraceContext{}

			// demo-api: a server span and a database span under it, for a
			// request that carries the caller's traceparent header.
			apiTP := tracerProvider(t, "demo-api", otlp.URL, tc.opts...)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
				ctx, span := apiTP.Tracer("demo-api").Start(ctx, "GET /items/{id}", trace.WithSpanKind(trace.SpanKindServer))
				defer span.End()
				_, db := apiTP.Tracer("demo-api").Start(ctx, "SELECT items", trace.WithSpanKind(trace.SpanKindClient))
				db.SetStatus(codes.Error, "deadlock")
				db.End()
				w.WriteHeader(http.StatusInternalServerError)
			}))
			defer api.Close()

			// demo-edge: the root span, calling the API over real HTTP.
			edgeTP := tracerProvider(t, "demo-edge", otlp.URL, tc.opts...)
			ctx, root := edgeTP.Tracer("demo-edge").Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/items/42", nil)
			require.NoError(t, err)
			prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			root.End()

			require.NoError(t, apiTP.Shutdown(context.Background()))
			require.NoError(t, edgeTP.Shutdown(context.Background()))

			// An exemplar carries the trace ID as lowercase hex: that is the
			// link to follow.
			id := root.SpanContext().TraceID().String()
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			code, r := get(t, http.MethodGet, srv.URL+"/api/v1/traces/"+id)
			require.Equal(t, http.StatusOK, code, r.Error)
			var u ptrace.JSONUnmarshaler
			td, err := u.UnmarshalTraces(r.Data)
			require.NoError(t, err)
			require.Equal(t, []string{"demo-api/GET /items/{id}", "demo-api/SELECT items", "demo-edge/GET /checkout"}, spanNames(td))

			// The parent links survived: db -> api server span -> edge root.
			names := map[string]string{} // span ID -> name
			var all []ptrace.Span
			rss := td.ResourceSpans()
			for i := range rss.Len() {
				sss := rss.At(i).ScopeSpans()
				for j := range sss.Len() {
					spans := sss.At(j).Spans()
					for k := range spans.Len() {
						sp := spans.At(k)
						require.Equal(t, id, sp.TraceID().String())
						names[sp.SpanID().String()] = sp.Name()
						all = append(all, sp)
					}
				}
			}
			parents := map[string]string{}
			for _, sp := range all {
				parents[sp.Name()] = names[sp.ParentSpanID().String()]
			}
			require.Equal(t, map[string]string{
				"GET /checkout":   "",
				"GET /items/{id}": "GET /checkout",
				"SELECT items":    "GET /items/{id}",
			}, parents)

			code, r = get(t, http.MethodGet, srv.URL+"/api/v1/traces?service=demo-api&status=error")
			require.Equal(t, http.StatusOK, code)
			var sums []TraceSummary
			require.NoError(t, json.Unmarshal(r.Data, &sums))
			require.Len(t, sums, 1)
			require.Equal(t, id, sums[0].TraceID)
			require.Equal(t, "demo-edge", sums[0].RootServiceName)
			require.Equal(t, "GET /checkout", sums[0].RootSpanName)
			require.Equal(t, 3, sums[0].SpanCount)
			require.True(t, sums[0].Error)
			require.Equal(t, []string{"demo-api", "demo-edge"}, sums[0].Services)
		})
	}
}
