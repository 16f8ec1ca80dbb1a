package alerting_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

// burns is a settable BurnSource.
type burns struct {
	mu sync.Mutex
	b  []alerting.SLOBurn
}

func (s *burns) Burns() []alerting.SLOBurn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]alerting.SLOBurn(nil), s.b...)
}

func (s *burns) set(b ...alerting.SLOBurn) {
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
}

// slo returns a 99.9%/30d SLO burning at rate r on every window.
func slo(r float64) alerting.SLOBurn {
	w := map[time.Duration]alerting.WindowBurn{}
	for _, d := range []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour} {
		w[d] = alerting.WindowBurn{BurnRate: r, Errors: r, Total: 1000}
	}
	return alerting.SLOBurn{ID: "api-availability", Service: "api", Name: "availability", Objective: 0.999,
		Period: 30 * 24 * time.Hour, Windows: w, BudgetRemaining: 0.42, LastData: t0,
		RunbookURL: "https://runbooks.example/api", DashboardURL: "http://127.0.0.1:8080/d/api",
		ExampleTraceIDs: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}}
}

func TestTiersScaleWithThePeriod(t *testing.T) {
	cases := []struct {
		name   string
		period time.Duration
		want   []float64
	}{
		{"a 30-day SLO has the workbook's factors", 30 * 24 * time.Hour, []float64{14.4, 6, 3, 1}},
		{"a 28-day SLO spends the same percentages", 28 * 24 * time.Hour, []float64{13.44, 5.6, 2.8, 0.9333}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tiers := alerting.TiersFor(alerting.DefaultRulesConfig().Tiers, tc.period)
			require.Len(t, tiers, 4)
			for i, tier := range tiers {
				require.InDelta(t, tc.want[i], tier.Factor, 1e-3, tier.Name)
			}
			require.Equal(t, []string{"1h/5m", "6h/30m", "1d/2h", "3d/6h"},
				[]string{tiers[0].Window(), tiers[1].Window(), tiers[2].Window(), tiers[3].Window()})
		})
	}
}

func TestEveryTierFiresOnlyAboveItsFactor(t *testing.T) {
	cases := []struct {
		name  string
		rate  float64
		fires []string
	}{
		{"burn rate 1 is within budget", 1, nil},
		{"burn rate 1.5 opens the slow ticket", 1.5, []string{"ticket-slow"}},
		{"burn rate 3.5 opens both tickets", 3.5, []string{"ticket-fast", "ticket-slow"}},
		{"burn rate 7 pages slowly", 7, []string{"page-slow", "ticket-fast", "ticket-slow"}},
		{"burn rate 15 pages fast", 15, []string{"page-fast", "page-slow", "ticket-fast", "ticket-slow"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := &burns{}
			src.set(slo(tc.rate))
			f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: &recorder{}, burns: src}
			f.open()
			require.NoError(t, f.m.Evaluate(context.Background()))
			var firing []string
			for ls, st := range f.m.RuleStates() {
				if st == alerting.StateFiring {
					firing = append(firing, ls)
				}
			}
			require.Len(t, firing, len(tc.fires))
			for _, tier := range tc.fires {
				require.Contains(t, firing, ruleKey(firing, tier), "tier %s fires", tier)
			}
		})
	}
}

func ruleKey(keys []string, tier string) string {
	for _, k := range keys {
		if contains(k, `tier="`+tier+`"`) {
			return k
		}
	}
	return "tier " + tier + " not firing"
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestAShortWindowBelowTheFactorHoldsThePage(t *testing.T) {
	src := &burns{}
	b := slo(20)
	b.Windows[5*time.Minute] = alerting.WindowBurn{BurnRate: 2, Total: 100}
	b.Windows[30*time.Minute] = alerting.WindowBurn{BurnRate: 2, Total: 100}
	src.set(b)
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	for ls, st := range f.m.RuleStates() {
		require.NotContains(t, ls, `severity="page"`, "recovered short windows reset the page (%s is %s)", ls, st)
	}
}

func TestForAndKeepFiringForDriveTheLifecycle(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Tiers = []alerting.TierConfig{{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute,
		BudgetPercent: 2, For: 2 * time.Minute, KeepFiringFor: 10 * time.Minute}}
	cfg.Rules.BudgetExhausted = false
	cfg.Rules.DataAbsentFor = 0
	src := &burns{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	ctx := context.Background()
	state := func() string {
		for _, st := range f.m.RuleStates() {
			return st
		}
		return alerting.StateInactive
	}
	eval := func(d time.Duration, rate float64) string {
		f.clock.Advance(d)
		src.set(slo(rate))
		require.NoError(t, f.m.Evaluate(ctx))
		return state()
	}
	require.Equal(t, alerting.StateInactive, eval(0, 1))
	require.Equal(t, alerting.StatePending, eval(time.Minute, 20), "pending while for (2m) has not passed")
	require.Equal(t, alerting.StateInactive, eval(time.Minute, 1), "a pending alert whose condition ends goes back to inactive")
	require.Equal(t, alerting.StatePending, eval(time.Minute, 20))
	require.Equal(t, alerting.StatePending, eval(time.Minute, 20))
	require.Equal(t, alerting.StateFiring, eval(time.Minute, 20), "firing once the condition held for 2m")

	// A restart keeps the firing state.
	f.restart()
	require.Equal(t, alerting.StateFiring, eval(0, 1), "firing survives the restart; keep_firing_for holds it")
	require.Equal(t, alerting.StateFiring, eval(9*time.Minute, 1), "kept firing for 10m after the condition ended")
	require.Equal(t, alerting.StateResolved, eval(time.Minute, 1), "resolved after keep_firing_for")
}

func TestSLOAlertsCarryTheBudgetMathAndLinks(t *testing.T) {
	src := &burns{}
	src.set(slo(15))
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "slo", "severity"}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	f.clock.Advance(25 * time.Second)
	require.NoError(t, f.m.Evaluate(context.Background()), "rules re-send firing alerts every evaluation")
	f.step(5 * time.Second)
	var page *alerting.NotifiedAlert
	for _, n := range f.rcv.all() {
		for i, a := range n.Alerts {
			if a.Labels["tier"] == "page-fast" {
				page = &n.Alerts[i]
			}
		}
	}
	require.NotNil(t, page)
	require.Equal(t, map[string]string{
		"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "sloth_id": "api-availability",
		"service": "api", "sloth_service": "api", "sloth_slo": "availability",
		"severity": "page", "sloth_severity": "page", "tier": "page-fast", "window": "1h/5m",
	}, page.Labels)
	a := page.Annotations
	require.Equal(t, "SLO api-availability (99.9% of 30d) is burning its error budget 15.0x too fast (page, 1h/5m)", a["summary"])
	require.Equal(t, "15.00x", a["burn_rate_1h"])
	require.Equal(t, "15.00x", a["burn_rate_5m"])
	require.Equal(t, "14.40x", a["burn_rate_threshold"])
	require.Equal(t, "42.0%", a["budget_remaining"])
	require.Equal(t, "https://runbooks.example/api", a["runbook_url"])
	require.Equal(t, "http://127.0.0.1:8080/d/api", a["dashboard_url"])
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", a["trace_ids"])
	require.Contains(t, a["description"], "(2% of the 30d budget in 1h)")
}

func TestBudgetExhaustedAndDataAbsent(t *testing.T) {
	src := &burns{}
	b := slo(0.5)
	b.BudgetRemaining = -0.1
	b.LastData = t0.Add(-11 * time.Minute)
	src.set(b)
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	got := map[string]string{}
	for ls, st := range f.m.RuleStates() {
		got[ls] = st
	}
	require.Len(t, got, 2)
	require.Equal(t, alerting.StateFiring, got[ruleKeyByName(got, alerting.AlertBudgetExhausted)])
	require.Equal(t, alerting.StateFiring, got[ruleKeyByName(got, alerting.AlertDataAbsent)])

	// Fresh data and budget left: both resolve.
	b.BudgetRemaining, b.LastData = 0.5, t0
	src.set(b)
	require.NoError(t, f.m.Evaluate(context.Background()))
	for _, st := range f.m.RuleStates() {
		require.Equal(t, alerting.StateResolved, st)
	}
	b.BudgetRemaining = math.NaN()
	src.set(b)
	require.NoError(t, f.m.Evaluate(context.Background()))
}

func ruleKeyByName(m map[string]string, name string) string {
	for k := range m {
		if contains(k, `alertname="`+name+`"`) {
			return k
		}
	}
	return name + " missing"
}

func TestPerSLOTuningDisablesAndReplacesTiers(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.SLOs = map[string]alerting.SLORulesConfig{"api-availability": {Disable: []string{"ticket-slow", "ticket-fast", "budget_exhausted", "data_absent"}}}
	src := &burns{}
	src.set(slo(3.5))
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	require.Empty(t, f.m.RuleStates(), "disabled tiers do not fire")
}

func TestLowTrafficWindowsAndFailedEvaluationsHoldAlerts(t *testing.T) {
	src := &burns{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	ctx := context.Background()
	firing := func() int {
		n := 0
		for _, st := range f.m.RuleStates() {
			if st == alerting.StateFiring {
				n++
			}
		}
		return n
	}

	held := slo(20)
	held.Windows[5*time.Minute] = alerting.WindowBurn{BurnRate: 1000, Errors: 1, Total: 1, Held: true}
	src.set(held)
	require.NoError(t, f.m.Evaluate(ctx))
	for ls := range f.m.RuleStates() {
		require.NotContains(t, ls, `tier="page-fast"`, "one failure among few requests does not page")
	}

	src.set(slo(20))
	require.NoError(t, f.m.Evaluate(ctx))
	require.Equal(t, 4, firing())

	stale := slo(0)
	stale.Stale = true
	src.set(stale)
	f.clock.Advance(time.Minute)
	require.NoError(t, f.m.Evaluate(ctx))
	require.Equal(t, 4, firing(), "a failed evaluation neither resolves nor starts anything")

	src.set(slo(0))
	require.NoError(t, f.m.Evaluate(ctx))
	require.Equal(t, 0, firing(), "fresh numbers resolve")
}

func TestARestartBeforeTheSLOEngineHasNumbersNeitherResolvesNorRepages(t *testing.T) {
	src := &burns{}
	src.set(slo(20))
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "slo", "severity"}
	cfg.Rules.Tiers = alerting.DefaultRulesConfig().Tiers[:1] // page-fast only
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	ctx := context.Background()
	for range 6 {
		require.NoError(t, f.m.Evaluate(ctx))
		f.step(5 * time.Second)
	}
	require.Len(t, f.rcv.all(), 1, "paged once")

	require.NoError(t, f.store.Close())
	f.clock.Advance(2 * time.Minute) // down longer than the alerts' end time
	src.set()                        // after a restart the SLO engine has no numbers yet
	f.open()
	for range 12 {
		require.NoError(t, f.m.Evaluate(ctx))
		f.step(5 * time.Second)
	}
	src.set(slo(20))
	for range 12 {
		require.NoError(t, f.m.Evaluate(ctx))
		f.step(5 * time.Second)
	}
	require.Equal(t, []string{"firing:SLOErrorBudgetBurn"}, names(f.rcv.all()), "no resolve and no second page")
}
