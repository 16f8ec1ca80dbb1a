package alerting_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/burnrate/burnrate/alerting"
)

// pageFastOnly is testConfig with one page tier whose `for` is forDur.
func pageFastOnly(forDur time.Duration) alerting.Config {
	cfg := testConfig()
	cfg.Rules.Tiers = []alerting.TierConfig{{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute,
		BudgetPercent: 2, For: forDur}}
	cfg.Rules.BudgetExhausted, cfg.Rules.DataAbsentFor = false, 0
	return cfg
}

// pageFastSLO is slo(r) as the engine evaluates it with pageFastOnly's
// tiers: the page-fast tier only.
func pageFastSLO(r float64) alerting.SLOBurn { return only(slo(r), "page-fast") }

// pageState is the state of the page-fast alert ("" when inactive).
func pageState(m *alerting.Manager) string {
	for ls, st := range m.RuleStates() {
		if contains(ls, `tier="page-fast"`) {
			return st
		}
	}
	return ""
}

func TestPendingTimeRestoredAfterARestartLeavesOutTheDowntime(t *testing.T) {
	cases := []struct {
		name             string
		forDur           time.Duration
		pending, down    time.Duration
		firesAfterReboot time.Duration
	}{
		{name: "the downtime does not count towards for", forDur: 30 * time.Minute, pending: 5 * time.Minute, down: 30 * time.Minute,
			firesAfterReboot: 25 * time.Minute},
		{name: "an alert about to fire gets the grace period", forDur: 30 * time.Minute, pending: 25 * time.Minute, down: time.Minute,
			firesAfterReboot: 10 * time.Minute},
		{name: "a for shorter than the grace period starts over", forDur: 5 * time.Minute, pending: 4 * time.Minute, down: 2 * time.Minute,
			firesAfterReboot: 5 * time.Minute},
		{name: "a stop longer than the outage tolerance starts over", forDur: 30 * time.Minute, pending: 20 * time.Minute, down: 2 * time.Hour,
			firesAfterReboot: 30 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := &burns{}
			src.set(pageFastSLO(20))
			f := &fixture{t: t, dir: t.TempDir(), cfg: pageFastOnly(tc.forDur), clock: newClock(t0), rcv: &recorder{}, burns: src}
			f.open()
			ctx := context.Background()
			for el := time.Duration(0); el <= tc.pending; el += time.Minute {
				require.NoError(t, f.m.Evaluate(ctx))
				require.Equal(t, alerting.StatePending, pageState(f.m))
				if el < tc.pending {
					f.clock.Advance(time.Minute)
				}
			}
			require.NoError(t, f.store.Close())
			f.clock.Advance(tc.down)
			f.open()
			var firedAfter time.Duration
			for el := time.Duration(0); el <= 2*time.Hour; el += time.Minute {
				require.NoError(t, f.m.Evaluate(ctx))
				if pageState(f.m) == alerting.StateFiring {
					firedAfter = el
					break
				}
				f.clock.Advance(time.Minute)
			}
			require.Equal(t, tc.firesAfterReboot, firedAfter)
		})
	}
}

func TestSLOAlertsOutliveAFewMissedEvaluations(t *testing.T) {
	src := &burns{}
	src.set(pageFastSLO(20))
	f := &fixture{t: t, dir: t.TempDir(), cfg: pageFastOnly(0), clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	// The engine stalls: no evaluation for three minutes (a slow cycle, a
	// restart). The alert stays active, as Prometheus's would.
	f.clock.Advance(3 * time.Minute)
	w := httptest.NewRecorder()
	f.m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/alerts", nil))
	require.Equal(t, 200, w.Code)
	var got []struct {
		Labels map[string]string `json:"labels"`
		EndsAt time.Time         `json:"endsAt"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got, 1, "the page is still active")
	require.Equal(t, t0.Add(4*alerting.RuleResendDelay), got[0].EndsAt.UTC(), "4 × the 1m resend delay")
}

func TestAFailedRuleStateSaveIsSavedWithTheNextEvaluation(t *testing.T) {
	src := &burns{}
	src.set(pageFastSLO(20))
	f := &fixture{t: t, dir: t.TempDir(), cfg: pageFastOnly(0), clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	ctx := context.Background()
	require.NoError(t, f.m.Evaluate(ctx))
	require.Equal(t, alerting.StateFiring, pageState(f.m))

	// The disk fails once: rule state cannot be written.
	side, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "alerting.db")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = side.Close() })
	for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
		_, err := side.Exec(`CREATE TRIGGER fail_` + op + ` BEFORE ` + op + ` ON rule_alerts BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`)
		require.NoError(t, err)
	}
	src.set(pageFastSLO(0)) // the burn is over: the page resolves
	f.clock.Advance(5 * time.Second)
	err = f.m.Evaluate(ctx)
	require.ErrorContains(t, err, "disk I/O error")
	require.Equal(t, alerting.StateResolved, pageState(f.m), "the advanced state is kept in memory")
	w := httptest.NewRecorder()
	f.m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/alerts", nil))
	require.JSONEq(t, `[]`, w.Body.String(), "and its resolution is put")

	for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
		_, err := side.Exec(`DROP TRIGGER fail_` + op)
		require.NoError(t, err)
	}
	f.clock.Advance(5 * time.Second)
	require.NoError(t, f.m.Evaluate(ctx), "nothing changed, but the left-over change is saved")

	f.restart()
	require.Equal(t, alerting.StateResolved, pageState(f.m), "a restart does not bring the page back")
}

func TestAnSLOWhoseEvaluationKeepsFailingRaisesItsOwnAlertAndReleasesItsPage(t *testing.T) {
	for _, failingFor := range []time.Duration{0, 3 * time.Minute} {
		want := failingFor
		if want == 0 {
			want = alerting.DefaultRulesConfig().EvaluationFailingFor
		}
		t.Run("evaluation_failing_for "+want.String(), func(t *testing.T) {
			src := &burns{}
			src.set(pageFastSLO(20))
			cfg := pageFastOnly(0)
			cfg.Rules.EvaluationFailingFor = failingFor
			f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
			f.open()
			ctx := context.Background()
			require.NoError(t, f.m.Evaluate(ctx))
			require.Equal(t, alerting.StateFiring, pageState(f.m))

			broken := pageFastSLO(0)
			broken.Stale, broken.Error = true, `window 5m: found duplicate series for the match group`
			src.set(broken)
			failingState := func() string {
				for ls, st := range f.m.RuleStates() {
					if contains(ls, `alertname="`+alerting.AlertEvaluationFails+`"`) {
						return st
					}
				}
				return ""
			}
			for el := time.Duration(0); el < want; el += time.Minute {
				require.NoError(t, f.m.Evaluate(ctx))
				require.Equal(t, alerting.StateFiring, pageState(f.m), "a failed evaluation holds the page for a while")
				require.Equal(t, alerting.StatePending, failingState())
				f.clock.Advance(time.Minute)
			}
			require.NoError(t, f.m.Evaluate(ctx))
			require.Equal(t, alerting.StateFiring, failingState(), "failing for %s raises SLOEvaluationFailing", want)
			require.Equal(t, alerting.StateResolved, pageState(f.m), "and the page it held resolves")

			src.set(pageFastSLO(0))
			f.clock.Advance(time.Minute)
			require.NoError(t, f.m.Evaluate(ctx))
			require.Equal(t, alerting.StateResolved, failingState(), "numbers again resolve it")
		})
	}
}
