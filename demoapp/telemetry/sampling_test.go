package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// serve runs one request through p's server instrumentation with parent
// as the caller's trace context, answering code after took; the handler
// calls a downstream tier through p's client transport, and the trace
// context that call carried is returned.
func serve(t *testing.T, p *Providers, parent trace.SpanContext, code int, took time.Duration) (sent trace.SpanContext) {
	t.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = trace.SpanContextFromContext(Propagator().Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
	}))
	defer down.Close()
	client := &http.Client{Transport: p.ClientTransport(nil)}
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, down.URL+"/kv/a", nil)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		time.Sleep(took)
		w.WriteHeader(code)
	}), HandlerOptions{})
	req := httptest.NewRequest(http.MethodGet, "/api/products/1", nil)
	if parent.IsValid() {
		Propagator().Inject(trace.ContextWithRemoteSpanContext(context.Background(), parent), propagation.HeaderCarrier(req.Header))
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return sent
}

func TestSamplingKeepsTheShareAndEveryFailedOrSlowSpan(t *testing.T) {
	notSampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true})
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{2}, SpanID: trace.SpanID{2}, Remote: true, TraceFlags: trace.FlagsSampled})
	cases := []struct {
		name   string
		ratio  float64
		parent trace.SpanContext
		took   time.Duration
		code   int
		kept   bool
	}{
		{"a fast successful root outside the share is dropped", 0, trace.SpanContext{}, 0, 200, false},
		{"a failed root outside the share is kept", 0, trace.SpanContext{}, 0, 500, true},
		{"a root as slow as the threshold is kept", 0, trace.SpanContext{}, 60 * time.Millisecond, 200, true},
		{"every root is in a share of 1", 1, trace.SpanContext{}, 0, 200, true},
		{"an inner tier drops a fast span of a trace outside the share", 1, notSampled, 0, 200, false},
		{"an inner tier keeps a failed span of a trace outside the share", 1, notSampled, 0, 503, true},
		{"an inner tier keeps every span of a trace in the share", 0, sampled, 0, 200, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			p, err := New(context.Background(), "demo-api", "t", Options{
				Enabled: true, SampleRatio: tc.ratio, KeepSlowerThan: 50 * time.Millisecond,
				SpanExporter: exp, MetricReader: nopReader(),
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			sent := serve(t, p, tc.parent, tc.code, tc.took)
			require.NoError(t, p.ForceFlush(context.Background()))
			var server []tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanKind == trace.SpanKindServer {
					server = append(server, s)
				}
			}
			if !tc.kept {
				require.Empty(t, server)
				return
			}
			require.Len(t, server, 1)
			s := server[0]
			require.True(t, s.SpanContext.IsSampled(), "exported as sampled")
			if tc.parent.IsValid() {
				require.Equal(t, tc.parent.SpanID(), s.Parent.SpanID(), "a child of the caller's span")
				require.Equal(t, tc.parent.TraceID(), s.SpanContext.TraceID())
			}
			// The downstream call named a parent that is stored: the kept
			// trace is whole, whether the span was recorded from its start
			// or after its end.
			var ids []trace.SpanID
			for _, x := range exp.GetSpans() {
				ids = append(ids, x.SpanContext.SpanID())
				if x.SpanContext.SpanID() == sent.SpanID() {
					require.Equal(t, trace.SpanKindClient, x.SpanKind, "kept as it was when it was propagated")
				}
			}
			require.Equal(t, s.SpanContext.TraceID(), sent.TraceID())
			inShare := tc.ratio == 1
			if tc.parent.IsValid() {
				inShare = tc.parent.IsSampled()
			}
			if inShare {
				require.Contains(t, ids, sent.SpanID(), "in the share every span is kept")
			} else {
				// The downstream call succeeded fast and is not kept; the
				// server span it named as its parent's parent is.
				require.NotContains(t, ids, sent.SpanID())
			}
			require.GreaterOrEqual(t, s.EndTime.Sub(s.StartTime), tc.took, "recorded with its own times")
		})
	}
}

func TestTheShareIsTheSameDecisionOnEveryTier(t *testing.T) {
	s := sampler(0.5)
	kept := 0
	for i := range 1000 {
		id := trace.TraceID{byte(i), byte(i >> 8), 0, 0, 0, 0, 0, 0, byte(i * 7), byte(i * 13), byte(i * 31), byte(i * 17)}
		root := s.ShouldSample(sdkParams(context.Background(), id))
		again := s.ShouldSample(sdkParams(context.Background(), id))
		require.Equal(t, root.Decision, again.Decision, "the decision is a function of the trace ID")
		if root.Decision == sampledDecision {
			kept++
		}
	}
	require.InDelta(t, 500, kept, 100)
}

func TestExemplarsPointOnlyAtSpansThatAreKept(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	p, err := New(context.Background(), "demo-edge", "t", Options{
		Enabled: true, SampleRatio: 0, KeepSlowerThan: 250 * time.Millisecond, SpanExporter: exp, MetricReader: reader,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}), HandlerOptions{})
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ok", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/fail", nil))
	require.NoError(t, p.ForceFlush(context.Background()))
	spans := exp.GetSpans()
	require.Len(t, spans, 1, "outside the share only the failed request's span is exported")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var exemplars []metricdata.Exemplar[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "http.server.request.duration" {
				for _, dp := range h.DataPoints {
					exemplars = append(exemplars, dp.Exemplars...)
				}
			}
		}
	}
	require.Len(t, exemplars, 1, "only the failed request's measurement names a trace")
	require.Equal(t, spans[0].SpanContext.SpanID().String(), trace.SpanID(exemplars[0].SpanID).String(), "and it names the exported span")
	require.Equal(t, spans[0].SpanContext.TraceID().String(), trace.TraceID(exemplars[0].TraceID).String())
}

const sampledDecision = sdktrace.RecordAndSample

func sdkParams(ctx context.Context, id trace.TraceID) sdktrace.SamplingParameters {
	return sdktrace.SamplingParameters{ParentContext: ctx, TraceID: id, Name: "op"}
}

func nopReader() sdkmetric.Reader { return sdkmetric.NewManualReader() }
