package sloengine

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// timesliceSpec is the SLO: 99% of the 5-minute slices of 30 days
// must be good, a slice being good when 99% of its requests succeed.
const timesliceSpec = `apiVersion: openslo/v1
kind: Service
metadata:
  name: shop
spec:
  description: The shop
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-slices
spec:
  service: shop
  indicator:
    metadata:
      name: checkout-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="checkout",code=~"5.."}
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="checkout"}
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Timeslices
  objectives:
    - target: 0.99
      timeSliceTarget: 0.99
      timeSliceWindow: 5m
`

func timesliceSLOs(t testing.TB) []*SLO {
	l := NewLoader()
	l.Add("shop.openslo.yml", []byte(timesliceSpec))
	slos, err := l.Result()
	require.NoError(t, err)
	require.Len(t, slos, 1)
	require.Equal(t, Timeslices, slos[0].Budgeting)
	return slos
}

// timesliceSeries are the checkout counters sampled every minute at second
// 7 from start until end: 0.1% of requests fail before outage (every slice
// good), 2% from outage on (every slice bad, by twice the slice budget:
// the event burn rate is only 2). outage is a slice boundary, so the first
// bad slice is the one ending 5 minutes after it.
func timesliceSeries(start, outage, end time.Time) []series {
	good := series{labels: map[string]string{"__name__": "http_requests_total", "job": "checkout", "code": "200"}}
	bad := series{labels: map[string]string{"__name__": "http_requests_total", "job": "checkout", "code": "500"}}
	var g, b float64
	for ts := start.Add(7 * time.Second); !ts.After(end); ts = ts.Add(time.Minute) {
		if ts.Before(outage) {
			g, b = g+999, b+1
		} else {
			g, b = g+980, b+20
		}
		good.ts, good.vals = append(good.ts, ts.UnixMilli()), append(good.vals, g)
		bad.ts, bad.vals = append(bad.ts, ts.UnixMilli()), append(bad.vals, b)
	}
	return []series{good, bad}
}

// appendUpTo appends the samples of ss at or before at that are newer than
// *next (by index), as a scrape delivers them.
func appendUpTo(t *testing.T, db *tsdb.DB, ss []series, next *int, at time.Time) {
	t.Helper()
	app := db.Appender(context.Background())
	i := *next
	for ; i < len(ss[0].ts) && ss[0].ts[i] <= at.UnixMilli(); i++ {
		for _, s := range ss {
			_, err := app.Append(0, labels.FromMap(s.labels), s.ts[i], s.vals[i])
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	*next = i
}

func tierOf(t *testing.T, s Status, name string) TierState {
	t.Helper()
	for _, ts := range s.Tiers {
		if ts.Name == name {
			return ts
		}
	}
	require.Failf(t, "no tier", "%s has no tier %s", s.ID, name)
	return TierState{}
}

// TestTimeslicesBurnInSlicesAndPage runs the engine, on the in-memory path
// with samples arriving minute by minute, through the first three hours of
// an outage in which every 5-minute slice is bad: the window burn rate is
// the share of bad slices over the budget (100, not the event burn of 2),
// the page-fast tier fires at the end of the second bad slice (the
// workbook's 14.4/100 x 1h = 8.6 minutes, rounded up to whole slices,
// since a slice counts once it is complete), and the forecast says the
// budget lasts about four hours, not nine days.
func TestTimeslicesBurnInSlicesAndPage(t *testing.T) {
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	outage := start.Add(24 * time.Hour)
	end := outage.Add(3 * time.Hour)
	ss := timesliceSeries(start, outage, end)
	db := openTSDB(t, nil)
	ctx := context.Background()
	slos := timesliceSLOs(t)
	e, err := New(Options{SLOs: slos, Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db})
	require.NoError(t, err)
	require.NotNil(t, e.states[0].plan, "the SLO takes the in-memory path")

	// The workbook's detection time for burn 100 on the 1h/5m tier, and
	// the slices it takes: a tier fires when more than factor x budget of
	// the hour's 12 slices are bad.
	pageFast := tierOf(t, Status{ID: slos[0].ID, Tiers: EvaluateTiers(slos[0].Tiers, nil, 0.01)}, "page-fast")
	workbook := time.Duration(pageFast.Factor / 100 * float64(time.Hour))
	need := int(math.Floor(pageFast.Factor*0.01*12)) + 1
	require.Equal(t, 2, need)
	require.Equal(t, 10*time.Minute, (workbook + SliceWidth - 1).Truncate(SliceWidth), "the workbook's time rounded up to whole slices")

	next := 0
	var paged time.Time
	for at := outage.Add(-10*time.Minute + 20*time.Second); at.Before(end); at = at.Add(time.Minute) {
		appendUpTo(t, db, ss, &next, at)
		e.Evaluate(ctx, at)
		s := e.Snapshot()[0]
		require.Empty(t, s.Error)
		if tierOf(t, s, "page-fast").Firing && paged.IsZero() {
			paged = at
		}
	}
	require.Equal(t, outage.Add(10*time.Minute+20*time.Second), paged,
		"page-fast fires at the first evaluation after the second bad slice ends, not before")

	// Three hours in: 35 slices are complete and bad.
	s := e.Snapshot()[0]
	for _, name := range []string{"5m", "30m", "1h", "2h"} {
		w, ok := s.Window(name)
		require.True(t, ok)
		require.Equal(t, w.Slices, w.BadSlices, "%s: every slice is bad", name)
		require.InDelta(t, 1, float64(w.ErrorRatio), 0, name)
		requireClose(t, 100, float64(w.BurnRate), "%s burn rate", name)
		requireClose(t, 0.02, float64(w.BadEvents/w.TotalEvents), "%s event ratio is still shown in the event counts", name)
	}
	w6, _ := s.Window("6h")
	require.Equal(t, 72, w6.Slices)
	require.Equal(t, 35, w6.BadSlices)
	requireClose(t, 35.0/72/0.01, float64(w6.BurnRate), "6h burn rate")
	for _, name := range []string{"page-fast", "page-slow"} {
		require.True(t, tierOf(t, s, name).Firing, name)
	}
	// 35 bad slices of the 8,640 in 30 days, whose budget is 86.4 slices.
	consumed := 35 / 86.4
	requireClose(t, consumed, float64(s.BudgetConsumed), "budget consumed")
	require.Equal(t, 35, s.PeriodSLI.BadSlices)
	for _, f := range s.Forecasts {
		if f.Window == "1h" {
			requireClose(t, (1-consumed)*(30*24*time.Hour).Seconds()/100, float64(f.Seconds), "1h forecast")
			require.Less(t, float64(f.Seconds), (5 * time.Hour).Seconds(), "the budget lasts about four hours")
		}
	}
}

// TestTimeslicesExportedRulesPageOnPrometheus runs the exported rules of the
// same SLO on the Debian prometheus (2.42), with the outage under way now:
// it pages by itself, and the window ratios its rules compute equal the
// engine's on Burnrate's TSDB holding the same samples, at a fixed instant
// and at Prometheus's own evaluation instants. Samples sit at second 7 of
// every minute, never on a slice boundary, where 2.42's closed ranges and
// Prometheus 3's left-open ones would differ.
func TestTimeslicesExportedRulesPageOnPrometheus(t *testing.T) {
	now := time.Now().UTC()
	outage := now.Truncate(SliceWidth).Add(-3 * time.Hour)
	start := outage.Add(-24 * time.Hour)
	ss := timesliceSeries(start, outage, now)
	slos := timesliceSLOs(t)
	rules, err := RuleFiles(slos, 5*time.Second)
	require.NoError(t, err)
	promURL := startPrometheus(t, openMetrics("http_requests", ss), rules)
	prom := RemoteQuerier{URL: promURL}
	ctx := context.Background()

	db := openTSDB(t, ss)
	e, err := New(Options{SLOs: timesliceSLOs(t), Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db})
	require.NoError(t, err)

	// Prometheus pages on its own.
	require.Eventually(t, func() bool {
		res, err := prom.Query(ctx, `ALERTS{sloth_id="shop-checkout-slices", severity="page", alertstate="firing"}`, time.Now())
		return err == nil && len(res) > 0
	}, 60*time.Second, 250*time.Millisecond, "prometheus never paged on the exported rules")

	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(rules["shop.rules.yml"], &rf))
	exported := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				exported[r.Record+"/"+r.Labels["sloth_window"]] = r.Expr
			}
		}
	}
	at := outage.Add(2*time.Hour + 40*time.Minute + 30*time.Second)
	e.Evaluate(ctx, at)
	s := e.Snapshot()[0]
	require.Empty(t, s.Error)
	for _, w := range s.Windows {
		want, ok, err := scalar(ctx, prom, exported["slo:sli_error:ratio_rate"+w.Window+"/"+w.Window], at)
		require.NoError(t, err)
		require.True(t, ok, w.Window)
		requireClose(t, want, float64(w.ErrorRatio), "%s error ratio, engine vs the exported rule on prometheus", w.Window)
	}
	w1, _ := s.Window("1h")
	requireClose(t, 100, float64(w1.BurnRate), "1h burn rate at %s", at)

	// Prometheus's recorded windows and burn rate, at its own instants.
	for _, q := range []string{`slo:sli_error:ratio_rate1h`, `slo:sli_error:ratio_rate6h`, `slo:current_burn_rate:ratio`} {
		sel := q + `{sloth_id="shop-checkout-slices"}`
		res, err := prom.Query(ctx, fmt.Sprintf("timestamp(%s)", sel), time.Now())
		require.NoError(t, err)
		require.Len(t, res, 1, q)
		ts := time.UnixMilli(int64(math.Round(res[0].Value * 1000)))
		v, ok, err := scalar(ctx, prom, sel, ts)
		require.NoError(t, err)
		require.True(t, ok)
		e.Evaluate(ctx, ts)
		got := e.Snapshot()[0]
		var mine float64
		switch q {
		case `slo:current_burn_rate:ratio`:
			w, _ := got.Window("5m")
			mine = float64(w.BurnRate)
		default:
			w, _ := got.Window(q[len("slo:sli_error:ratio_rate"):])
			mine = float64(w.ErrorRatio)
		}
		requireClose(t, v, mine, "%s recorded by prometheus at %s", q, ts)
	}
}
