package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/sloengine"
)

// benchGateSource is the gate's index over an engine of 1,000 SLOs (100
// services of 10) evaluated once over a week of counters in a real TSDB.
func benchGateSource(b *testing.B, lookup time.Duration) *gateSource {
	b.Helper()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(b.TempDir(), nil, nil, opts, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	l := sloengine.NewLoader()
	for s := range 100 {
		var spec strings.Builder
		fmt.Fprintf(&spec, "version: prometheus/v1\nservice: svc-%d\nslos:\n", s)
		for m := range 10 {
			fmt.Fprintf(&spec, `  - name: availability-%d
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(checkout_errors_total[{{.window}}]))
        total_query: sum(rate(checkout_requests_total[{{.window}}]))
`, m)
		}
		l.Add(fmt.Sprintf("svc-%d.yml", s), []byte(spec.String()))
	}
	slos, err := l.Result()
	require.NoError(b, err)
	at := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	writeCounters(&testing.T{}, db, at.Add(-time.Hour), at, func(time.Time) (float64, float64, bool) { return 10, 0.01, true })
	e, err := sloengine.New(sloengine.Options{SLOs: slos, Queryable: db, Now: func() time.Time { return at },
		Querier: sloengine.LocalQuerier{Engine: sloengine.NewPromQLEngine(), Queryable: db}})
	require.NoError(b, err)
	e.Evaluate(context.Background(), at)
	// The open-incident lookup is a SQLite query; lookup stands for what
	// it takes on a busy host.
	return newGateSource(e, nil, func() (map[string][]deploy.OpenIncident, error) {
		time.Sleep(lookup)
		return nil, nil
	})
}

// BenchmarkGateSourceRebuild is one rebuild of the index of 1,000 SLOs,
// with an instant incident lookup: what the engine's evaluation and the
// one-second refresh cost, off the request path.
func BenchmarkGateSourceRebuild(b *testing.B) {
	src := benchGateSource(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		src.rebuild()
	}
}

// BenchmarkGateSourceReadDuringRebuilds reads one service's snapshot while
// another goroutine rebuilds the index back to back, each rebuild waiting
// 2 ms on the incident lookup: a reader must never wait for either. It
// reports the readers' p50, p99 and max.
func BenchmarkGateSourceReadDuringRebuilds(b *testing.B) {
	src := benchGateSource(b, 2*time.Millisecond)
	src.rebuild()
	ctx, cancel := context.WithCancel(context.Background())
	var rebuilds atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			src.rebuild()
			rebuilds.Add(1)
		}
	}()
	lat := make([]time.Duration, 0, 1<<16)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		if _, ok := src.Snapshot(fmt.Sprintf("svc-%d", i%100)); !ok {
			b.Fatal("no snapshot")
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	cancel()
	<-done
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.5), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(rebuilds.Load()), "rebuilds")
}
