package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestSamplingKeepsTheShareAndEveryFailedOrSlowSpan(t *testing.T) {
	notSampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
	}))
	sampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{2}, SpanID: trace.SpanID{2}, Remote: true, TraceFlags: trace.FlagsSampled,
	}))
	cases := []struct {
		name   string
		ratio  float64
		parent context.Context
		took   time.Duration
		failed bool
		kept   bool
	}{
		{"a fast successful root outside the share is dropped", 0, context.Background(), time.Millisecond, false, false},
		{"a failed root outside the share is kept", 0, context.Background(), time.Millisecond, true, true},
		{"a root as slow as the threshold is kept", 0, context.Background(), 250 * time.Millisecond, false, true},
		{"every root is in a share of 1", 1, context.Background(), time.Millisecond, false, true},
		{"an inner tier drops a fast span of a trace outside the share", 1, notSampled, time.Millisecond, false, false},
		{"an inner tier keeps a failed span of a trace outside the share", 1, notSampled, time.Millisecond, true, true},
		{"an inner tier keeps every span of a trace in the share", 0, sampled, time.Millisecond, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			p, err := New(context.Background(), "demo-api", "t", Options{
				Enabled: true, SampleRatio: tc.ratio, KeepSlowerThan: 250 * time.Millisecond,
				SpanExporter: exp, MetricReader: nopReader(),
			})
			require.NoError(t, err)
			end := time.Now()
			_, span := p.Tracer.Tracer("t").Start(tc.parent, "op", trace.WithTimestamp(end.Add(-tc.took)))
			if tc.failed {
				span.SetStatus(codes.Error, "500")
			}
			span.End(trace.WithTimestamp(end))
			require.NoError(t, p.ForceFlush(context.Background()))
			t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			if !tc.kept {
				require.Empty(t, exp.GetSpans())
				return
			}
			require.Len(t, exp.GetSpans(), 1)
			require.True(t, exp.GetSpans()[0].SpanContext.IsSampled(), "exported as sampled")
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
	p, err := New(context.Background(), "demo-edge", "t", Options{
		Enabled: true, SampleRatio: 0, KeepSlowerThan: 250 * time.Millisecond, SpanExporter: exp, MetricReader: nopReader(),
	})
	require.NoError(t, err)
	filter := exemplarFilter(250 * time.Millisecond)
	tr := p.Tracer.Tracer("t")

	ctx, fast := tr.Start(context.Background(), "fast")
	require.False(t, filter(ctx), "a fast successful span outside the share is dropped: no exemplar")
	fast.End()

	ctx, failed := tr.Start(context.Background(), "failed")
	failed.SetStatus(codes.Error, "500")
	require.True(t, filter(ctx), "a failed span is kept: its exemplar resolves")
	failed.End()

	ctx, slow := tr.Start(context.Background(), "slow", trace.WithTimestamp(time.Now().Add(-300*time.Millisecond)))
	require.True(t, filter(ctx), "a slow span is kept")
	slow.End()

	require.False(t, filter(context.Background()), "no span, no exemplar")
	require.NoError(t, p.ForceFlush(context.Background()))
	require.Len(t, exp.GetSpans(), 2, "the filter and the processor agree")
	require.NoError(t, p.Shutdown(context.Background()))
}

const sampledDecision = sdktrace.RecordAndSample

func sdkParams(ctx context.Context, id trace.TraceID) sdktrace.SamplingParameters {
	return sdktrace.SamplingParameters{ParentContext: ctx, TraceID: id, Name: "op"}
}

func nopReader() sdkmetric.Reader { return sdkmetric.NewManualReader() }
