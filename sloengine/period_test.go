package sloengine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const alignedSpec = `version: burnrate/v1
service: aligned
slos:
  - name: availability
    objective: 99
    period: 7d
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
`

// TestOccurrencesPeriodEqualsIncrease: samples every minute on the minute,
// so on every slice boundary, 100 requests a minute and all of every fifth
// minute's failing. A 5-minute rate sees four of a slice's five minutes
// (the increase from the sample on the slice's start to the next one lies
// before its range) and extrapolates them: summing slices read 0.25 for a
// period that holds 0.20. The period equals increase(errors_total[7d]) /
// increase(requests_total[7d]) on the same TSDB, as of the newest slice's
// end, on the fast path (slices from memory and, older than three days,
// from storage) and with PromQL, evaluated on and off the slice grid.
func TestOccurrencesPeriodEqualsIncrease(t *testing.T) {
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	n := 8 * 24 * 60
	all := series{labels: map[string]string{"__name__": "requests_total"}}
	bad := series{labels: map[string]string{"__name__": "errors_total"}}
	a, b := 1e6, 1e5
	for m := range n {
		a += 100
		if m%5 == 3 {
			b += 100
		}
		ts := start.Add(time.Duration(m) * time.Minute).UnixMilli()
		all.ts, all.vals = append(all.ts, ts), append(all.vals, a)
		bad.ts, bad.vals = append(bad.ts, ts), append(bad.vals, b)
	}
	db := openTSDB(t, []series{all, bad})
	ctx := context.Background()
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	fast, err := New(Options{SLOs: loadSLOs(t, alignedSpec), Querier: q, Queryable: db})
	require.NoError(t, err)
	require.NotNil(t, fast.states[0].plan)
	promql, err := New(Options{SLOs: loadSLOs(t, alignedSpec), Querier: q})
	require.NoError(t, err)

	end := start.Add(time.Duration(n-1) * time.Minute)
	for _, at := range []time.Time{end.Add(-2 * time.Hour), end.Add(-time.Hour - 2*time.Minute - 30*time.Second), end} {
		fast.Evaluate(ctx, at)
		promql.Evaluate(ctx, at)
		want, ok, err := scalar(ctx, q, "increase(errors_total[7d]) / increase(requests_total[7d])", sliceEnd(sliceKey(at)))
		require.NoError(t, err)
		require.True(t, ok)
		require.InDelta(t, 0.2, want, 1e-3, "the period holds one failing minute in five")
		for name, e := range map[string]*Engine{"fast path": fast, "promql": promql} {
			s := e.Snapshot()[0]
			require.Empty(t, s.Error)
			requireClose(t, want, float64(s.PeriodSLI.ErrorRatio), "%s at %s: period error ratio", name, at)
			requireClose(t, 1-want/0.01, float64(s.BudgetRemaining), "%s at %s: budget remaining", name, at)
		}
	}
}
