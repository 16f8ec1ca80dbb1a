package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/sloengine"
)

// slothSpec is a Sloth spec of checkout's availability with the given SLI.
func slothSpec(sli string) string {
	return `version: "prometheus/v1"
service: "checkout"
slos:
  - name: "requests-availability"
    objective: 99.9
    sli:
` + sli + `    alerting:
      name: CheckoutAvailability
      page_alert:
        labels:
          severity: page
      ticket_alert:
        labels:
          severity: ticket
`
}

var (
	// rawSpec has a raw error-ratio SLI: the engine knows the ratio, never
	// the event counts.
	rawSpec = slothSpec(`      raw:
        error_ratio_query: sum(rate(checkout_errors_total[{{.window}}])) / sum(rate(checkout_requests_total[{{.window}}]))
`)
	eventsSpec = slothSpec(`      events:
        error_query: sum(rate(checkout_errors_total[{{.window}}]))
        total_query: sum(rate(checkout_requests_total[{{.window}}]))
`)
)

// traffic is requests and errors per second at an instant; ok false means
// no sample is written (the exporter is gone).
type traffic func(at time.Time) (reqs, errs float64, ok bool)

// writeCounters appends checkout_requests_total and checkout_errors_total
// every 15s from `from` to `to`, integrating tr, into a real TSDB.
func writeCounters(t *testing.T, db *tsdb.DB, from, to time.Time, tr traffic) {
	t.Helper()
	app := db.Appender(context.Background())
	reqL := labels.FromStrings("__name__", "checkout_requests_total", "job", "checkout")
	errL := labels.FromStrings("__name__", "checkout_errors_total", "job", "checkout")
	var reqs, errs float64
	const step = 15 * time.Second
	for at := from; !at.After(to); at = at.Add(step) {
		r, e, ok := tr(at)
		if !ok {
			continue
		}
		reqs += r * step.Seconds()
		errs += e * step.Seconds()
		_, err := app.Append(0, reqL, at.UnixMilli(), reqs)
		require.NoError(t, err)
		_, err = app.Append(0, errL, at.UnixMilli(), errs)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

type pinned struct {
	mu sync.Mutex
	t  time.Time
}

func (p *pinned) now() time.Time  { p.mu.Lock(); defer p.mu.Unlock(); return p.t }
func (p *pinned) set(t time.Time) { p.mu.Lock(); p.t = t; p.mu.Unlock() }

// TestSLORulesOnARealEngine runs SLO specs through the real SLO engine on a
// real TSDB and the alert rules on a real SQLite store, at two instants 11
// minutes apart (longer than data_absent_for), and reads the rule states.
func TestSLORulesOnARealEngine(t *testing.T) {
	t1 := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC) // 03:00, a quiet night
	t2 := t1.Add(11 * time.Minute)
	steady := func(rps, errFrac float64) traffic {
		return func(time.Time) (float64, float64, bool) { return rps, rps * errFrac, true }
	}
	// Traffic stops an hour before t1 but the counters are still exported.
	idle := func(at time.Time) (float64, float64, bool) { return 10 * b2f(at.Before(t1.Add(-time.Hour))), 0, true }
	// The exporter disappears ten minutes before t1.
	vanished := func(at time.Time) (float64, float64, bool) { return 10, 0, at.Before(t1.Add(-10 * time.Minute)) }
	// 2% errors for three hours burn faster than every tier, but spend only
	// 0.02 x (3h / 30d) / 0.001 = 8.3% of a 99.9% SLO's budget: a young
	// period counts what was spent, so the budget is not exhausted.
	burning := map[string]string{
		"SLOErrorBudgetBurn/page-fast": alerting.StateFiring, "SLOErrorBudgetBurn/page-slow": alerting.StateFiring,
		"SLOErrorBudgetBurn/ticket-fast": alerting.StateFiring, "SLOErrorBudgetBurn/ticket-slow": alerting.StateFiring,
	}
	cases := []struct {
		name string
		spec string
		// tr is the traffic from t1-3h to t2; nil writes no series at all.
		tr traffic
		// tiers, when set, are alerting.rules.tiers.
		tiers []alerting.TierConfig
		want  map[string]string // alertname/tier -> state at t2
	}{
		{
			name:  "configured tiers replace the defaults of an SLO whose spec sets none",
			spec:  eventsSpec,
			tr:    steady(10, 0.02),
			tiers: []alerting.TierConfig{{Name: "page-custom", Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Factor: 10}},
			want:  map[string]string{"SLOErrorBudgetBurn/page-custom": alerting.StateFiring},
		},
		{
			name: "a raw error-ratio SLI failing 2% of requests pages and is not absent",
			spec: rawSpec, tr: steady(10, 0.02),
			want: burning,
		},
		{
			name: "an events SLI failing 2% of requests pages",
			spec: eventsSpec, tr: steady(10, 0.02),
			want: burning,
		},
		{
			name: "a raw SLI idle at night (series present, no traffic) raises nothing",
			spec: rawSpec,
			tr:   idle,
			want: map[string]string{},
		},
		{
			name: "an events SLI idle at night raises nothing",
			spec: eventsSpec,
			tr:   idle,
			want: map[string]string{},
		},
		{
			name: "a fresh install whose SLI never had series raises nothing",
			spec: rawSpec, tr: nil,
			want: map[string]string{},
		},
		{
			name: "a raw SLI whose series vanished raises SLODataAbsent after data_absent_for",
			spec: rawSpec,
			tr:   vanished,
			want: map[string]string{"SLODataAbsent/": alerting.StateFiring},
		},
		{
			name: "an SLI whose query fails raises SLOEvaluationFailing after evaluation_failing_for",
			// Two series where the engine expects one: every evaluation fails.
			spec: slothSpec(`      raw:
        error_ratio_query: sum by (job) (rate(checkout_errors_total[{{.window}}])) / sum by (job) (rate(checkout_requests_total[{{.window}}])) or vector(0.5)
`),
			tr:   steady(10, 0.02),
			want: map[string]string{"SLOEvaluationFailing/": alerting.StateFiring},
		},
		{
			name: "an events SLI whose series vanished raises SLODataAbsent after data_absent_for",
			spec: eventsSpec,
			tr:   vanished,
			want: map[string]string{"SLODataAbsent/": alerting.StateFiring},
		},
	}
	for _, tc := range cases {
		for _, incremental := range []bool{false, true} {
			name := tc.name
			if incremental {
				name += " (incremental evaluation from the TSDB)"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				opts := tsdb.DefaultOptions()
				opts.RetentionDuration = 0
				db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, db.Close()) })
				if tc.tr != nil {
					writeCounters(t, db, t1.Add(-3*time.Hour), t2, tc.tr)
				}

				l := sloengine.NewLoader()
				l.Add("checkout.yml", []byte(tc.spec))
				slos, err := l.Result()
				require.NoError(t, err)
				clk := &pinned{t: t1}
				cfg := alerting.DefaultConfig().WithDefaults()
				cfg.Route.Receiver = alerting.ReceiverLog
				if tc.tiers != nil {
					cfg.Rules.Tiers = tc.tiers
				}
				eopts := sloengine.Options{
					SLOs:    slos,
					Querier: sloengine.LocalQuerier{Engine: sloengine.NewPromQLEngine(), Queryable: db},
					Now:     clk.now,
					// The configured tiers are the engine's, as the app wires them.
					Tiers: cfg.Rules.TierOverrides(),
				}
				if incremental {
					eopts.Queryable = db // as the app runs it on the embedded TSDB
				}
				eng, err := sloengine.New(eopts)
				require.NoError(t, err)

				store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
				require.NoError(t, err)
				t.Cleanup(func() { _ = store.Close() })
				m, err := alerting.New(ctx, alerting.Options{
					Config: cfg, Store: store, Now: clk.now,
					Burns:      sloBurns{engine: eng, baseURL: "http://127.0.0.1:8080"},
					Appendable: db,
					Logger:     slog.New(slog.DiscardHandler),
				})
				require.NoError(t, err)

				for _, at := range []time.Time{t1, t2} {
					clk.set(at)
					eng.Evaluate(ctx, at)
					require.NoError(t, m.Evaluate(ctx))
				}
				got := map[string]string{}
				for ls, st := range m.RuleStates() {
					got[labelOf(ls, "alertname")+"/"+labelOf(ls, "tier")] = st
				}
				require.Equal(t, tc.want, got)

				// The TSDB holds Prometheus's ALERTS series for them, as
				// dashboards made for Prometheus read alert state.
				q, err := db.Querier(t2.UnixMilli(), t2.UnixMilli())
				require.NoError(t, err)
				defer q.Close()
				ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "ALERTS"))
				series := map[string]string{}
				for ss.Next() {
					ls := ss.At().Labels()
					series[ls.Get("alertname")+"/"+ls.Get("tier")] = ls.Get("alertstate")
				}
				require.NoError(t, ss.Err())
				require.Equal(t, tc.want, series)
			})
		}
	}
}

// labelOf reads one label from a label set's String form.
func labelOf(ls, name string) string {
	i := strings.Index(ls, name+`="`)
	if i < 0 {
		return ""
	}
	rest := ls[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
