package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
//   - Outside the share a span is not recorded: it has its IDs (its
//     children name it as their parent), its start time, and nothing else.
//     At its end, a span that failed (status Error: a 5xx on a server span,
//     a failed call or a 4xx/5xx answer on a client span) or took at least
//     KeepSlowerThan is recorded after the fact (replay), with the IDs it
//     had, its times, name, attributes and status, and exported. A failure
//     or a slow answer shows on every hop it passed through (errors and
//     latency travel outward), so an error or slow trace is kept from the
//     outermost failing or slow hop to the edge's root span, and its ID
//     always resolves.
//   - Exemplars point only at spans that are exported: the request's
//     duration is measured after the replay, with the kept span in its
//     context (exemplarFilter admits sampled spans only).
//
// Recording every span and dropping nine in ten at their end (what the
// SDK's RecordOnly does) cost a fifth of the process's CPU at 4,000
// requests/s: starting a recording span, its attributes, and the snapshot
// taken at its end for the processors.

// keep reports whether a span outside the sampled share is exported.
func keep(status codes.Code, took, slow time.Duration) bool {
	return status == codes.Error || (slow > 0 && took >= slow)
}

// sampler is the share: parent-based, with the root's decision on the
// trace ID; a replay is always recorded and sampled.
func sampler(ratio float64) sdktrace.Sampler {
	return replaySampler{sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))}
}

type replaySampler struct{ sdktrace.Sampler }

func (s replaySampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if sc, ok := p.ParentContext.Value(replayKey{}).(trace.SpanContext); ok {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: sc.TraceState()}
	}
	return s.Sampler.ShouldSample(p)
}

func (s replaySampler) Description() string { return "Replay{" + s.Sampler.Description() + "}" }

// replayKey marks the context of a replay with the span context the span
// had.
type replayKey struct{}

// idGenerator gives a replay the IDs its span had, and everyone else
// random ones (math/rand/v2: per-thread state, where the SDK's default
// takes a lock per ID).
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if sc, ok := ctx.Value(replayKey{}).(trace.SpanContext); ok {
		return sc.TraceID(), sc.SpanID()
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if sc, ok := ctx.Value(replayKey{}).(trace.SpanContext); ok {
		return sc.SpanID()
	}
	return newSpanID()
}

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// ended is how a span outside the share ended.
type ended struct {
	name        string
	start, end  time.Time
	code        codes.Code
	description string
	opts        []trace.SpanStartOption
	attrs       []attribute.KeyValue
}

// replay records span, which was not recorded, as it happened, if keep
// says so, and returns ctx with the recorded span in it (for the
// exemplar); otherwise ctx as it is. parent is the context span was
// started from.
func (p *Providers) replay(ctx, parent context.Context, tr trace.Tracer, span trace.Span, e ended) context.Context {
	if !p.replays || span.IsRecording() || !keep(e.code, e.end.Sub(e.start), p.keepSlowerThan) {
		return ctx
	}
	opts := append(e.opts[:len(e.opts):len(e.opts)], trace.WithTimestamp(e.start), trace.WithAttributes(e.attrs...))
	_, rs := tr.Start(context.WithValue(parent, replayKey{}, span.SpanContext()), e.name, opts...)
	rs.SetStatus(e.code, e.description)
	rs.End(trace.WithTimestamp(e.end))
	return trace.ContextWithSpan(ctx, rs)
}

// exemplarFilter offers a measurement as an exemplar only when its span
// is exported: sampled, or a replay (which is sampled).
func exemplarFilter(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsSampled()
}
