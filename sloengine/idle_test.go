package sloengine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const idleSpec = `version: burnrate/v1
service: idle
slos:
  - name: occurrences
    objective: 99
    period: 25h
    sli: &sli
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: ratio-timeslices
    objective: 99
    period: 25h
    budgeting_method: RatioTimeslices
    sli: *sli
  - name: timeslices
    objective: 99
    period: 25h
    budgeting_method: Timeslices
    time_slice_target: 0.95
    sli: *sli
`

// TestIdleSlicesAgreeWithTheExportedRules: over a day with slices without
// traffic (flat counters: 0/0) and slices without data (no samples), the
// period rule `burnrate slo rules` exports, evaluated by PromQL on the
// series the engine wrote back every 5 minutes, equals the engine's period
// for every budgeting method: idle slices count neither good nor bad.
func TestIdleSlicesAgreeWithTheExportedRules(t *testing.T) {
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var ss []sample
	all, bad := 1000.0, 10.0
	for m := 0; m < 28*60; m++ {
		switch {
		case m%120 >= 60 && m%120 < 90: // half an hour without traffic
		case m%240 >= 200 && m%240 < 220: // errors
			all, bad = all+600, bad+120
		default:
			all, bad = all+600, bad+1
		}
		if m%360 >= 300 && m%360 < 320 {
			continue // twenty minutes without samples at all
		}
		ts := start.Add(time.Duration(m)*time.Minute + 7*time.Second).UnixMilli()
		ss = append(ss, sample{"requests_total", ts, all}, sample{"errors_total", ts, bad})
	}
	db := openTSDB(t, nil)
	slos := loadSLOs(t, idleSpec)
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: slos, Querier: q, Queryable: db, Appendable: db})
	require.NoError(t, err)
	ctx := context.Background()
	var at time.Time
	// Samples arrive as time passes (the engine writes back in the present).
	for at = start.Add(5 * time.Minute); at.Before(start.Add(28 * time.Hour)); at = at.Add(5 * time.Minute) {
		n := 0
		for n < len(ss) && ss[n].t <= at.UnixMilli() {
			n++
		}
		require.NoError(t, appendSamples(t, db, ss[:n]))
		ss = ss[n:]
		e.Evaluate(ctx, at)
	}
	at = at.Add(-5 * time.Minute)

	files, err := RuleFiles(slos, 5*time.Minute)
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(files["idle.rules.yml"], &rf))
	period := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record == "slo:sli_error:ratio_rate1d1h" {
				period[r.Labels["sloth_id"]] = r.Expr
			}
		}
	}
	require.Len(t, period, 3)
	for _, s := range e.Snapshot() {
		require.Empty(t, s.Error, s.ID)
		want, ok, err := scalar(ctx, q, period[s.ID], at)
		require.NoError(t, err)
		require.True(t, ok, "%s: the exported rule has a value", s.ID)
		require.Greater(t, want, 0.0, s.ID)
		requireClose(t, want, float64(s.PeriodSLI.ErrorRatio), "%s: exported period rule on the written-back series", s.ID)
	}
}
