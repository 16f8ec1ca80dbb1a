package main

import (
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"
)

func TestTheProfileSplitAttributesEachSampleToTheFirstComponentFromTheLeaf(t *testing.T) {
	fn := map[string]*profile.Function{}
	loc := func(names ...string) *profile.Location {
		l := &profile.Location{}
		for _, n := range names {
			if fn[n] == nil {
				fn[n] = &profile.Function{Name: n}
			}
			l.Line = append(l.Line, profile.Line{Function: fn[n]})
		}
		return l
	}
	sample := func(v int64, labels map[string][]string, stack ...*profile.Location) *profile.Sample {
		return &profile.Sample{Value: []int64{1, v}, Label: labels, Location: stack}
	}
	demo := map[string][]string{"component": {"demo"}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples"}, {Type: "cpu"}},
		Sample: []*profile.Sample{
			// The TSDB appended to by the collector is the collector's.
			sample(30, nil, loc("github.com/prometheus/prometheus/tsdb.(*headAppender).Append"), loc("github.com/burnrate/burnrate/collector.(*Collector).AppendOTLPMetrics"), loc("net/http.(*conn).serve")),
			// The trace store under the collector's handler is the store's.
			sample(10, nil, loc("runtime.mallocgc"), loc("github.com/burnrate/burnrate/collector/tracestore.(*Store).Append"), loc("github.com/burnrate/burnrate/collector.(*Collector).serveOTLPTraces")),
			// Spans started in a tier's handler are telemetry; an inlined
			// frame counts before the one it is inlined into.
			sample(20, demo, loc("go.opentelemetry.io/otel/sdk/trace.(*tracer).Start", "github.com/burnrate/burnrate/demoapp/edge.(*Edge).serveProxy")),
			// A tier's connection reading a request is the tier's, and so
			// is a round trip under otelhttp's wrapper.
			sample(15, demo, loc("syscall.read"), loc("net/http.(*conn).readRequest")),
			sample(10, demo, loc("net/http.(*Transport).roundTrip"), loc("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*Transport).RoundTrip"), loc("github.com/burnrate/burnrate/demoapp/resilience.(*Client).attempt")),
			sample(10, nil, loc("runtime.gcBgMarkWorker")),
			sample(5, nil, loc("runtime.futex")),
		},
	}
	got := map[string]float64{}
	for _, s := range split(p) {
		got[s.Component] = s.Percent
	}
	require.Equal(t, map[string]float64{
		"collector ingest (OTLP, TSDB append, query API)": 30,
		"trace store": 10,
		"demo telemetry (spans, metrics, OTLP export)": 20,
		"demo tiers (edge, API, cache, store)":         25,
		"garbage collector (background)":               10,
		"other (runtime, scheduler, unattributed)":     5,
	}, got)
}
