package deploy_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // a Tuesday

func healthy(id string) deploy.SLOState {
	return deploy.SLOState{ID: id, BudgetRemaining: 0.8, Coverage: 1, EvaluatedAt: t0.Add(-5 * time.Second),
		BurnRates: map[time.Duration]float64{5 * time.Minute: 0.5, time.Hour: 0.4, 6 * time.Hour: 0.3}}
}

func snap(slos ...deploy.SLOState) deploy.Snapshot {
	return deploy.Snapshot{Service: "checkout", SLOs: slos}
}

func TestDecisionsFollowEveryPolicyRule(t *testing.T) {
	base := deploy.DefaultPolicy()
	base.MinBudgetRemaining = 0.25
	base.WarnBudgetRemaining = 0.5
	base.MaxBurnRate = map[time.Duration]float64{time.Hour: 14.4}
	base.WarnBurnRate = map[time.Duration]float64{time.Hour: 2}
	base.MinCoverage = 0.1

	with := func(f func(*deploy.SLOState)) deploy.SLOState {
		s := healthy("checkout-availability")
		f(&s)
		return s
	}
	cases := []struct {
		name   string
		policy func(*deploy.Policy)
		snap   deploy.Snapshot
		want   deploy.Outcome
		reason string
	}{
		{name: "a healthy service passes", snap: snap(healthy("a"), healthy("b")), want: deploy.Pass},
		{name: "the lowest budget of the service's SLOs decides", want: deploy.Fail,
			snap:   snap(healthy("a"), with(func(s *deploy.SLOState) { s.BudgetRemaining = 0.2 })),
			reason: "error budget remaining 20.00% is below the policy minimum of 25.00%"},
		{name: "a budget below the warning level warns", want: deploy.Warn,
			snap:   snap(with(func(s *deploy.SLOState) { s.BudgetRemaining = 0.4 })),
			reason: "error budget remaining 40.00% is below the warning level of 50.00%"},
		{name: "an overspent budget fails even with no minimum", want: deploy.Fail,
			policy: func(p *deploy.Policy) { p.MinBudgetRemaining = 0 },
			snap:   snap(with(func(s *deploy.SLOState) { s.BudgetRemaining = -0.1 }))},
		{name: "a burn rate above the maximum fails", want: deploy.Fail,
			snap:   snap(with(func(s *deploy.SLOState) { s.BurnRates[time.Hour] = 20 })),
			reason: "the 1h burn rate is 20, above the maximum of 14.4"},
		{name: "a burn rate above the warning level warns", want: deploy.Warn,
			snap:   snap(with(func(s *deploy.SLOState) { s.BurnRates[time.Hour] = 3 })),
			reason: "the 1h burn rate is 3, above the warning level of 2"},
		{name: "a firing page freezes deploys", want: deploy.Fail,
			snap:   snap(with(func(s *deploy.SLOState) { s.PageFiring = []string{"SLOBurnRateFast"} })),
			reason: "page alert firing: SLOBurnRateFast"},
		{name: "a firing page does not freeze when the policy says so", want: deploy.Pass,
			policy: func(p *deploy.Policy) { p.FreezeOnPage = false },
			snap:   snap(with(func(s *deploy.SLOState) { s.PageFiring = []string{"SLOBurnRateFast"} }))},
		{name: "an open SEV2 incident freezes deploys", want: deploy.Fail,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("a")},
				Incidents: []deploy.OpenIncident{{ID: "7", Severity: "sev2", Title: "carts fail"}}},
			reason: "SEV2 incident 7 is open: carts fail"},
		{name: "an SLI whose series are absent fails, naming the SLO", want: deploy.Fail,
			snap: snap(healthy("a"), with(func(s *deploy.SLOState) {
				delete(s.BurnRates, 5*time.Minute)
				s.NoData = map[time.Duration]bool{5 * time.Minute: true}
				s.Absent = true
			})),
			reason: "SLO checkout-availability has no SLI data: its series are absent from the last 5m"},
		{name: "a window a burn-rate rule needs without series fails, naming the window", want: deploy.Fail,
			snap: snap(with(func(s *deploy.SLOState) {
				delete(s.BurnRates, time.Hour)
				s.NoData = map[time.Duration]bool{time.Hour: true}
			})),
			reason: "no SLI data over the 1h window for checkout-availability: the 1h burn-rate rule cannot be judged"},
		{name: "a window a burn-rate rule needs that the engine does not evaluate fails", want: deploy.Fail,
			snap:   snap(with(func(s *deploy.SLOState) { delete(s.BurnRates, time.Hour) })),
			reason: "no SLI data over the 1h window"},
		{name: "missing data warns when the policy says on_stale: warn", want: deploy.Warn,
			policy: func(p *deploy.Policy) { p.OnStale = deploy.Warn },
			snap: snap(with(func(s *deploy.SLOState) {
				delete(s.BurnRates, time.Hour)
				s.NoData = map[time.Duration]bool{time.Hour: true}
			}))},
		{name: "a quiet window (series present, too few events) is known, not missing", want: deploy.Pass,
			snap: snap(with(func(s *deploy.SLOState) {
				delete(s.BurnRates, time.Hour)
				s.LowTraffic = map[time.Duration]bool{time.Hour: true}
			}))},
		{name: "a failed lookup of open incidents is no pass", want: deploy.Fail,
			snap:   deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("a")}, IncidentsErr: "database is locked"},
			reason: "the open incidents of checkout are unknown: database is locked"},
		{name: "a failed lookup of open incidents does not matter to a policy without an incident freeze", want: deploy.Pass,
			policy: func(p *deploy.Policy) { p.FreezeOnIncident = nil },
			snap:   deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("a")}, IncidentsErr: "database is locked"}},
		{name: "an open SEV3 incident does not", want: deploy.Pass,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("a")},
				Incidents: []deploy.OpenIncident{{ID: "8", Severity: "SEV3"}}}},
		{name: "data older than the limit fails by default", want: deploy.Fail,
			snap:   snap(with(func(s *deploy.SLOState) { s.EvaluatedAt = t0.Add(-10 * time.Minute) })),
			reason: "the newest SLO data is 10m0s old, more than the 5m0s the policy allows"},
		{name: "stale data warns when the policy says warn", want: deploy.Warn,
			policy: func(p *deploy.Policy) { p.OnStale = deploy.Warn },
			snap:   snap(with(func(s *deploy.SLOState) { s.EvaluatedAt = t0.Add(-10 * time.Minute) }))},
		{name: "an SLO whose evaluation fails is stale data", want: deploy.Fail,
			snap:   snap(healthy("a"), with(func(s *deploy.SLOState) { s.Error = "query timed out" })),
			reason: "SLO checkout-availability cannot be evaluated: query timed out"},
		{name: "an SLO never evaluated is stale data", want: deploy.Fail,
			snap:   snap(with(func(s *deploy.SLOState) { s.EvaluatedAt = time.Time{} })),
			reason: "has not been evaluated yet"},
		{name: "a service with no SLO is no pass", want: deploy.Fail, snap: snap(),
			reason: "service checkout has no SLO to judge a deploy by"},
		{name: "a period too young for a budget figure warns, not fails", want: deploy.Warn,
			snap: snap(with(func(s *deploy.SLOState) {
				s.BudgetRemaining, s.Coverage, s.InsufficientData = math.NaN(), 0.0001, true
			})),
			reason: "the period of checkout-availability holds too little data yet to judge its budget"},
		{name: "low coverage warns", want: deploy.Warn,
			snap:   snap(with(func(s *deploy.SLOState) { s.Coverage = 0.02 })),
			reason: "data covers 2.00% of the period, less than the 10.00% the policy needs"},
		{
			// 20 minutes at 1% errors on a 30d 99.9% SLO: the honest budget
			// spent is 0.01 x (20m / 30d) / 0.001 = 0.46%, so 99.54% remains.
			name: "a young period at 1% errors still passes a 50%-remaining rule", want: deploy.Pass,
			policy: func(p *deploy.Policy) {
				p.MinBudgetRemaining, p.WarnBudgetRemaining, p.MinCoverage = 0.5, 0, 0
				p.WarnBurnRate = nil // its 1h burn rate is 10: the young period is about the budget
			},
			snap: snap(with(func(s *deploy.SLOState) {
				s.Coverage = (20 * time.Minute).Hours() / (30 * 24)
				s.BudgetRemaining = 1 - 0.01*s.Coverage/0.001
				s.BurnRates = map[time.Duration]float64{5 * time.Minute: 10, time.Hour: 10}
			})),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.MaxBurnRate = map[time.Duration]float64{time.Hour: 14.4}
			if tc.policy != nil {
				tc.policy(&p)
			}
			d := deploy.Decide(p, tc.snap, t0)
			require.Equal(t, tc.want, d.Decision, "reasons: %v", d.Reasons)
			if tc.want == deploy.Pass {
				require.Empty(t, d.Reasons)
			}
			if tc.reason != "" {
				require.Condition(t, func() bool {
					for _, r := range d.Reasons {
						if contains(r, tc.reason) {
							return true
						}
					}
					return false
				}, "no reason contains %q: %v", tc.reason, d.Reasons)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAPassingDecisionListsEveryRule(t *testing.T) {
	p := deploy.DefaultPolicy()
	p.MinCoverage = 0.1
	p.MaxBurnRate = map[time.Duration]float64{5 * time.Minute: 14.4, time.Hour: 6}
	p.WarnBurnRate = map[time.Duration]float64{time.Hour: 2}
	p.FreezeWindows = []deploy.FreezeWindow{freeze(t, "UTC", "Sat 00:00", "Mon 00:00").FreezeWindows[0]}
	d := deploy.Decide(p, snap(healthy("a")), t0)
	require.Equal(t, deploy.Pass, d.Decision, "reasons: %v", d.Reasons)
	var rules []string
	for _, c := range d.Checks {
		require.Equal(t, deploy.Pass, c.Outcome, c.Message)
		rules = append(rules, c.Rule)
	}
	require.Equal(t, []string{"data", "coverage", "budget", "burn_rate", "burn_rate", "freeze", "incident", "freeze"}, rules)
	require.Equal(t, "the 1h burn rate is 0.4 (limit 6)", d.Checks[4].Message)
}

func TestDecisionSummarisesTheServiceWorstCase(t *testing.T) {
	a, b := healthy("a"), healthy("b")
	b.BudgetRemaining, b.Coverage = 0.3, 0.5
	b.BurnRates[time.Hour] = 7
	b.EvaluatedAt = t0.Add(-30 * time.Second)
	d := deploy.Decide(deploy.DefaultPolicy(), snap(a, b), t0)
	require.InDelta(t, 0.3, float64(d.BudgetRemaining), 1e-12)
	require.InDelta(t, 0.5, float64(d.Coverage), 1e-12)
	require.InDelta(t, 7, d.BurnRates["1h"], 1e-12)
	require.InDelta(t, 0.5, d.BurnRates["5m"], 1e-12)
	require.Equal(t, t0.Add(-30*time.Second), d.EvaluatedAt, "the oldest evaluation dates the decision")
	require.InDelta(t, 30, d.DataAge, 1e-9)

	unknown := healthy("a")
	unknown.BudgetRemaining, unknown.Coverage = math.NaN(), math.NaN()
	d = deploy.Decide(deploy.DefaultPolicy(), snap(unknown), t0)
	require.True(t, math.IsNaN(float64(d.BudgetRemaining)))
	require.Equal(t, deploy.Fail, d.Decision, "no budget figure is no pass: %v", d.Reasons)
}

func freeze(t *testing.T, zone, start, end string) deploy.Policy {
	t.Helper()
	ps, err := deploy.ParsePolicies("p.yml", []byte(`
policies:
  - service: checkout
    freeze_windows:
      - {name: weekend, timezone: `+zone+`, start: "`+start+`", end: "`+end+`"}
`))
	require.NoError(t, err)
	return ps[0]
}

func TestFreezeWindowsFollowWallClockAcrossDST(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		require.NoError(t, err)
		return v
	}
	cases := []struct {
		name, zone, start, end string
		// first and last frozen minute, in UTC.
		from, to string
	}{
		// Berlin springs forward on Sunday 2026-03-29: Friday 16:00 CET is
		// 15:00 UTC, Monday 08:00 CEST is 06:00 UTC: 63 hours.
		{"Berlin's weekend freeze across spring forward", "Europe/Berlin", "Fri 16:00", "Mon 08:00", "2026-03-27 15:00", "2026-03-30 05:59"},
		// Berlin falls back on Sunday 2026-10-25: 14:00 UTC to 07:00 UTC: 65 hours.
		{"Berlin's weekend freeze across fall back", "Europe/Berlin", "Fri 16:00", "Mon 08:00", "2026-10-23 14:00", "2026-10-26 06:59"},
		// New York springs forward on 2026-03-08 at 02:00: 02:30 does not
		// exist that night, so the freeze ends when the clocks jump (03:00 EDT).
		{"a New York freeze ending in the skipped hour ends at the jump", "America/New_York", "Sat 22:00", "Sun 02:30", "2026-03-08 03:00", "2026-03-08 06:59"},
		// Santiago springs forward at midnight on Sunday 2026-09-06: 00:00
		// does not exist, the clocks read 01:00 (-03) at 03:00 UTC. A
		// Saturday-evening-to-Sunday-noon freeze still covers Sunday morning.
		{"a Santiago freeze across a midnight spring forward", "America/Santiago", "Sat 20:00", "Sun 12:00", "2026-09-06 00:00", "2026-09-06 14:59"},
		{"an ordinary New York evening freeze", "America/New_York", "Thu 18:00", "Fri 09:00", "2026-12-03 23:00", "2026-12-04 13:59"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := freeze(t, tc.zone, tc.start, tc.end)
			from, to := utc(tc.from), utc(tc.to)
			frozen := func(at time.Time) bool {
				s := healthy("a")
				s.EvaluatedAt = at
				return deploy.Decide(p, snap(s), at).Decision == deploy.Fail
			}
			require.False(t, frozen(from.Add(-time.Minute)), "the minute before %s", from)
			require.True(t, frozen(from), "the first minute %s", from)
			require.True(t, frozen(to), "the last minute %s", to)
			require.False(t, frozen(to.Add(time.Minute)), "the minute after %s", to)
			// Every minute in between is frozen: no gap at the DST change.
			for m := from; !m.After(to); m = m.Add(time.Minute) {
				if !frozen(m) {
					t.Fatalf("not frozen at %s", m)
				}
			}
		})
	}
}

// TestFreezeInTheRepeatedHourHoldsEachTimeItPasses: New York falls back
// on 2026-11-01, 01:30 happens twice, first in EDT (05:30 UTC) and then in
// EST (06:30 UTC). Each instant is judged by its own wall clock, as
// Alertmanager's time intervals are: 01:30-01:45 is frozen both times, and
// 01:45 EDT to 01:30 EST (whose wall clock reads 01:45-01:59, 01:00-01:29)
// is not.
func TestFreezeInTheRepeatedHourHoldsEachTimeItPasses(t *testing.T) {
	p := freeze(t, "America/New_York", "Sun 01:30", "Sun 01:45")
	frozen := func(at time.Time) bool {
		s := healthy("a")
		s.EvaluatedAt = at
		return deploy.Decide(p, snap(s), at).Decision == deploy.Fail
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var spans []string
	in := false
	for m := day.Add(4 * time.Hour); m.Before(day.Add(8 * time.Hour)); m = m.Add(time.Minute) {
		if f := frozen(m); f != in {
			spans = append(spans, m.Format("15:04"))
			in = f
		}
	}
	require.Equal(t, []string{"05:30", "05:45", "06:30", "06:45"}, spans, "frozen from, until, from, until (UTC)")
}

func TestFreezeReasonNamesTheWindowInItsZone(t *testing.T) {
	p := freeze(t, "Europe/Berlin", "Fri 16:00", "Mon 08:00")
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	s := healthy("a")
	s.EvaluatedAt = at
	d := deploy.Decide(p, snap(s), at)
	require.Equal(t, []string{`deploy freeze "weekend" from Fri 2026-12-04 16:00 CET until Mon 2026-12-07 08:00 CET`}, d.Reasons)
}
