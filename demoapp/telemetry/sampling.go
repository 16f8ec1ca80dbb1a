package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Sampling keeps what incident response needs and a share of the rest
// (docs/traces.md, "Sampling"):
//
//   - The share: a consistent-probability decision on the trace ID
//     (TraceIDRatioBased, SampleRatio), taken where a trace starts (the edge)
//     and carried in traceparent's sampled flag, so every tier keeps or
//     drops the same traces, whole.
//   - Everything else is still recorded (RecordOnly), not exported: at its
//     end, a span that failed (status Error: a 5xx on a server span, a
//     failed call on a client span) or took at least KeepSlowerThan is
//     exported anyway. A failure or a slow answer shows on every hop it
//     passed through (errors and latency travel outward), so an error or
//     slow trace is kept from the outermost failing or slow hop to the
//     edge's root span, and its ID always resolves.
//   - Exemplars point only at spans that are kept: sampled ones, and
//     recorded ones that failed or are slow when the measurement is taken
//     (exemplarFilter), so a trace ID on a histogram or on an alert is
//     always stored.
//
// Dropped spans cost their recording, but no export, no collector ingest
// and no trace-store append.

// keep reports whether a span outside the sampled share is exported.
func keep(status codes.Code, took, slow time.Duration) bool {
	return status == codes.Error || (slow > 0 && took >= slow)
}

// sampler is the share: parent-based, with the root's decision on the
// trace ID, and traces outside the share recorded rather than dropped.
func sampler(ratio float64) sdktrace.Sampler {
	record := recordOnly{sdktrace.NeverSample()}
	return sdktrace.ParentBased(recordOnly{sdktrace.TraceIDRatioBased(ratio)},
		sdktrace.WithRemoteParentNotSampled(record),
		sdktrace.WithLocalParentNotSampled(record))
}

// recordOnly turns a sampler's Drop into RecordOnly.
type recordOnly struct{ sdktrace.Sampler }

func (s recordOnly) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	r := s.Sampler.ShouldSample(p)
	if r.Decision == sdktrace.Drop {
		r.Decision = sdktrace.RecordOnly
	}
	return r
}

func (s recordOnly) Description() string { return "RecordOnly{" + s.Sampler.Description() + "}" }

// keepProcessor hands sampled spans to next, and recorded spans that keep
// says to keep, marked sampled (the batcher exports only sampled spans).
type keepProcessor struct {
	next sdktrace.SpanProcessor
	slow time.Duration
}

func (p keepProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { p.next.OnStart(ctx, s) }

func (p keepProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		p.next.OnEnd(s)
		return
	}
	if keep(s.Status().Code, s.EndTime().Sub(s.StartTime()), p.slow) {
		p.next.OnEnd(kept{s})
	}
}

func (p keepProcessor) Shutdown(ctx context.Context) error   { return p.next.Shutdown(ctx) }
func (p keepProcessor) ForceFlush(ctx context.Context) error { return p.next.ForceFlush(ctx) }

// kept is a recorded span exported as sampled.
type kept struct{ sdktrace.ReadOnlySpan }

func (k kept) SpanContext() trace.SpanContext {
	sc := k.ReadOnlySpan.SpanContext()
	return sc.WithTraceFlags(sc.TraceFlags().WithSampled(true))
}

// exemplarFilter offers a measurement as an exemplar only when its span
// will be exported: sampled, or recorded and already failed or slow.
// The HTTP instrumentation (http.go) sets a span's status before it
// records the duration, on the server and the client, and the span ends
// after, so a span this lets through is one keepProcessor keeps.
func exemplarFilter(slow time.Duration) exemplar.Filter {
	return func(ctx context.Context) bool {
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return false
		}
		if sc.IsSampled() {
			return true
		}
		s, ok := trace.SpanFromContext(ctx).(sdktrace.ReadOnlySpan)
		return ok && keep(s.Status().Code, time.Since(s.StartTime()), slow)
	}
}
