package sloengine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
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

// TestBudgetRemainingRuleMatchesTheEngine: six hours into a 2d period
// (the data starts then), slo:period_coverage:ratio,
// slo:period_error_budget_consumed:ratio and
// slo:period_error_budget_remaining:ratio as exported, evaluated by PromQL
// on the same TSDB at a slice end, equal the engine's coverage, consumed
// and remaining budget: one meaning, coverage-aware, where the exported
// remaining budget used to be 1 - period burn rate (-9 here, against the
// engine's 0.875).
func TestBudgetRemainingRuleMatchesTheEngine(t *testing.T) {
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := &counters{start: start, sec: 7, errRatio: func(int) float64 { return 0.01 }}
	db := openTSDB(t, nil)
	require.NoError(t, appendSamples(t, db, gen.upTo(start.Add(6*time.Hour))))
	slos := loadSLOs(t, lateSpec)
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: slos, Querier: q, Queryable: db})
	require.NoError(t, err)
	ctx := context.Background()
	at := start.Add(6 * time.Hour)
	e.Evaluate(ctx, at)
	s := e.Snapshot()[0]
	require.Empty(t, s.Error)

	files, err := RuleFiles(slos, time.Minute)
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(files["late.rules.yml"], &rf))
	exprs := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs[r.Record] = r.Expr
		}
	}
	val := func(expr string) float64 {
		v, ok, err := scalar(ctx, q, expr, at)
		require.NoError(t, err, expr)
		require.True(t, ok, expr)
		return v
	}
	coverage := val(exprs["slo:period_coverage:ratio"])
	burn := val(exprs["slo:sli_error:ratio_rate2d"]) / s.ErrorBudget
	requireClose(t, float64(s.PeriodCoverage), coverage, "coverage")
	requireClose(t, float64(s.PeriodSLI.BurnRate), burn, "period burn rate")
	requireClose(t, float64(s.BudgetConsumed), burn*coverage, "consumed")
	requireClose(t, float64(s.BudgetRemaining), 1-burn*coverage, "remaining")
	requireClose(t, 6.0/48, coverage, "six hours of two days")
	require.InDelta(t, 1-10*6.0/48, float64(s.BudgetRemaining), 1e-3)
	require.Contains(t, exprs["slo:period_error_budget_remaining:ratio"], "1 - slo:period_error_budget_consumed:ratio{")
	require.Contains(t, exprs["slo:period_error_budget_consumed:ratio"], "slo:period_burn_rate:ratio{")
}
