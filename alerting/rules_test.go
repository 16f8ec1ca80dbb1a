package alerting_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/sloengine"
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

// slo returns a 99.9%/30d SLO burning at rate r on every window, with the
// default tiers as the SLO engine decides them at that rate.
func slo(r float64) alerting.SLOBurn {
	w := map[time.Duration]alerting.WindowBurn{}
	var windows []sloengine.WindowStatus
	for _, d := range sloengine.Windows {
		w[d] = alerting.WindowBurn{BurnRate: r, Errors: r, Total: 1000}
		windows = append(windows, sloengine.WindowStatus{Length: d, ErrorRatio: sloengine.Value(r * 0.001), BurnRate: sloengine.Value(r), TotalEvents: 1000})
	}
	tiers := sloengine.EvaluateTiers(sloengine.DefaultTiers(30*24*time.Hour), windows, 0.001)
	return alerting.SLOBurn{ID: "api-availability", Service: "api", Name: "availability", Objective: 0.999,
		Period: 30 * 24 * time.Hour, Windows: w, Tiers: tiers, BudgetRemaining: 0.42, LastData: t0,
		RunbookURL: "https://runbooks.example/api", DashboardURL: "http://127.0.0.1:8080/d/api",
		ExampleTraceIDs: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}}
}

// only keeps the tiers of b named names.
func only(b alerting.SLOBurn, names ...string) alerting.SLOBurn {
	var keep []sloengine.TierState
	for _, t := range b.Tiers {
		for _, n := range names {
			if t.Name == n {
				keep = append(keep, t)
			}
		}
	}
	b.Tiers = keep
	return b
}

func TestConfiguredTiersAreTheEnginesOverrides(t *testing.T) {
	cfg := alerting.DefaultRulesConfig()
	require.Equal(t, sloengine.TierOverrides{}, cfg.TierOverrides(), "no tiers configured: the engine's defaults")
	cfg.Tiers = []alerting.TierConfig{
		{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Factor: 20},
		{Name: "ticket-slow", Severity: "ticket", Long: 72 * time.Hour, Short: 6 * time.Hour, BudgetPercent: 10, Disabled: true},
	}
	cfg.SLOs = map[string]alerting.SLORulesConfig{"quiet": {Tiers: []alerting.TierConfig{}}, "other": {Disable: []string{"page-fast"}}}
	require.Equal(t, sloengine.TierOverrides{
		Default: []sloengine.TierSpec{{Name: "page-fast", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 20}},
		SLOs:    map[string][]sloengine.TierSpec{"quiet": {}},
	}, cfg.TierOverrides())

	cfg.Tiers[0].Short = 15 * time.Minute
	require.ErrorContains(t, cfg.Validate(), "short_window 15m is not an evaluated window", "the engine cannot evaluate a 15m window")
}

// TestEveryTierFiresOnlyAboveItsFactor follows the engine's decisions (see
// slo) into rule states, one firing alert per firing tier.
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

// TestATierTheEngineDoesNotFireDoesNotPage checks that the rules take the
// engine's decision and do not recompute it from the burn rates: the
// engine holds the pages (a short window below the factor, say) although
// every window reads 20.
func TestATierTheEngineDoesNotFireDoesNotPage(t *testing.T) {
	src := &burns{}
	b := slo(20)
	for i := range b.Tiers {
		if b.Tiers[i].Severity == "page" {
			b.Tiers[i].Firing = false
		}
	}
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
		src.set(only(slo(rate), "page-fast"))
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
	held.Windows[5*time.Minute] = alerting.WindowBurn{BurnRate: 1000, Errors: 1, Total: 1}
	held.Tiers[0].Held, held.Tiers[0].Firing = true, false // the engine holds page-fast
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
	src.set(only(slo(20), "page-fast"))
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "slo", "severity"}
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
	src.set(only(slo(20), "page-fast"))
	for range 12 {
		require.NoError(t, f.m.Evaluate(ctx))
		f.step(5 * time.Second)
	}
	require.Equal(t, []string{"firing:SLOErrorBudgetBurn"}, names(f.rcv.all()), "no resolve and no second page")
}

func TestFiringPagesListOnlyFiringPagesBySLO(t *testing.T) {
	cfg := testConfig()
	cfg.Rules.Tiers = []alerting.TierConfig{
		{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute, BudgetPercent: 2},
		{Name: "page-slow", Severity: "page", Long: 6 * time.Hour, Short: 30 * time.Minute, BudgetPercent: 5, For: time.Hour},
		{Name: "ticket-fast", Severity: "ticket", Long: 24 * time.Hour, Short: 2 * time.Hour, BudgetPercent: 10},
	}
	// A label name Prometheus's text form cannot write unquoted, and an SLO
	// label that tries to pass for the severity.
	dotted := only(slo(20), "page-fast", "page-slow", "ticket-fast")
	dotted.Labels = map[string]string{"app.kubernetes.io/team": "checkout", "sloth_severity": "ticket"}
	quiet := slo(0)
	quiet.ID = "web-availability"
	src := &burns{}
	src.set(dotted, quiet)
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, burns: src}
	f.open()
	require.NoError(t, f.m.Evaluate(context.Background()))
	require.Equal(t, map[string][]string{"api-availability": {alerting.AlertBurnRate}}, f.m.FiringPages(),
		"page-fast fires; page-slow is pending for 1h; ticket-fast is not a page")
}

func TestTierConfigErrorsNameTheTier(t *testing.T) {
	page := alerting.TierConfig{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute, BudgetPercent: 2}
	with := func(f func(*alerting.TierConfig)) []alerting.TierConfig {
		c := page
		f(&c)
		return []alerting.TierConfig{c}
	}
	cases := []struct {
		name  string
		tiers []alerting.TierConfig
		want  string
	}{
		{"a tier needs a name", with(func(c *alerting.TierConfig) { c.Name = "" }), "tier 0: needs a unique name"},
		{"names are unique", []alerting.TierConfig{page, page}, "tier 1: needs a unique name"},
		{"a tier needs a severity", with(func(c *alerting.TierConfig) { c.Severity = "" }), "tier page-fast: severity must be set"},
		{"the short window is not longer than the long one", with(func(c *alerting.TierConfig) { c.Short = 6 * time.Hour }), "tier page-fast: short_window must not be longer than long_window"},
		{"a tier needs a threshold", with(func(c *alerting.TierConfig) { c.BudgetPercent = 0 }), "tier page-fast: set factor or budget_percent (positive)"},
		{"for is not negative", with(func(c *alerting.TierConfig) { c.For = -time.Second }), "tier page-fast: for and keep_firing_for must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := alerting.DefaultRulesConfig()
			cfg.Tiers = tc.tiers
			require.ErrorContains(t, cfg.Validate(), tc.want)
		})
	}
}
