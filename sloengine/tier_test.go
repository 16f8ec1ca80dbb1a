package sloengine

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/require"
)

func TestTheTierFiringDecision(t *testing.T) {
	tier := DefaultTiers(30 * 24 * time.Hour)[0] // page-fast, 14.4 x 0.001
	win := func(d time.Duration, ratio, total float64) WindowStatus {
		return WindowStatus{Window: FormatWindow(d), Length: d, ErrorRatio: Value(ratio), TotalEvents: Value(total), BurnRate: Value(ratio / 0.001)}
	}
	nan := math.NaN()
	cases := []struct {
		name        string
		long, short WindowStatus
		firing      bool
		held        bool
	}{
		{"both windows above the threshold fire", win(time.Hour, 0.02, 1000), win(5*time.Minute, 0.02, 100), true, false},
		{"a short window below the threshold holds the page", win(time.Hour, 0.02, 1000), win(5*time.Minute, 0.002, 100), false, false},
		{"a ratio exactly at the threshold does not exceed it", win(time.Hour, 0.0144, 1000), win(5*time.Minute, 0.0144, 100), false, false},
		{"a low-traffic window holds the tier", win(time.Hour, 0.5, 1000), WindowStatus{Window: "5m", Length: 5 * time.Minute, ErrorRatio: 0.5, TotalEvents: 2, LowTraffic: true}, false, true},
		{"a raw ratio SLI without counted events fires on its ratio", win(time.Hour, 0.02, nan), win(5*time.Minute, 0.02, nan), true, false},
		{"a window whose series are gone is not measured", win(time.Hour, 0.02, nan), WindowStatus{Window: "5m", Length: 5 * time.Minute, ErrorRatio: 0.02, TotalEvents: Value(nan), NoData: true}, false, false},
		{"a window without a known ratio is not measured", win(time.Hour, 0.02, nan), win(5*time.Minute, nan, nan), false, false},
		{"a window the engine did not evaluate is not measured", win(time.Hour, 0.02, 1000), WindowStatus{}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideTier(tier, tc.long, tc.short, 0.001)
			require.Equal(t, tc.firing, got.Firing)
			require.Equal(t, tc.held, got.Held)
			require.InDelta(t, 0.0144, got.Threshold, 1e-12)
			require.Equal(t, tier, got.Tier)
		})
	}
}

func TestTierStatesKeepTheAPIsJSONForm(t *testing.T) {
	ts := decideTier(DefaultTiers(30 * 24 * time.Hour)[2], WindowStatus{}, WindowStatus{}, 0.001)
	b, err := json.Marshal(ts)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"ticket-fast","severity":"ticket","long_window":"1d","short_window":"2h","budget_percent":10,
		"factor":3,"threshold":0.003,"firing":false,"held":false}`, string(b))
	var back TierState
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ts, back)
	require.Error(t, json.Unmarshal([]byte(`{"long_window":"soon","short_window":"5m"}`), &back))
}

const ownTiersSpec = `version: burnrate/v1
service: api
slos:
  - name: own
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
    alerting:
      tiers:
        - {severity: page, long_window: 6h, short_window: 30m, budget_percent: 5}
  - name: default
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: tuned
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: tickets
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
    alerting:
      page_alert:
        disable: true
`

// TestTierOverridesDecideWhatTheEngineEvaluates checks the precedence: an
// SLO's own tiers, then the per-SLO override, then the global override,
// and that the evaluated tiers are those tiers.
func TestTierOverridesDecideWhatTheEngineEvaluates(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  requests_total 0+600x120
  errors_total   0+12x120
`) // 2% errors: burn rate 20
	t.Cleanup(func() { st.Close() })
	fast := TierSpec{Name: "page-quick", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 25}
	slow := TierSpec{Severity: "ticket", LongWindow: 2 * time.Hour, ShortWindow: 30 * time.Minute, BudgetPercent: 5}
	e, err := New(Options{SLOs: loadSLOs(t, ownTiersSpec), Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: st},
		Tiers: TierOverrides{Default: []TierSpec{fast, slow}, SLOs: map[string][]TierSpec{"api-tuned": {slow}}}})
	require.NoError(t, err)
	e.Evaluate(context.Background(), time.Unix(0, 0).Add(2*time.Hour))
	got := map[string][]string{}
	for _, s := range e.Snapshot() {
		require.Empty(t, s.Error)
		for _, ts := range s.Tiers {
			state := "ok"
			if ts.Firing {
				state = "firing"
			}
			got[s.ID] = append(got[s.ID], ts.Name+"="+FormatWindow(ts.LongWindow)+"/"+FormatWindow(ts.ShortWindow)+":"+state)
		}
	}
	require.Equal(t, map[string][]string{
		"api-own":     {"page-6h/30m=6h/30m:firing"},
		"api-default": {"page-quick=1h/5m:ok", "ticket-2h/30m=2h/30m:firing"},
		"api-tuned":   {"ticket-2h/30m=2h/30m:firing"},
		"api-tickets": {"ticket-2h/30m=2h/30m:firing"},
	}, got, "burn 20 is under factor 25 and over 18 (5% of 30d in 2h); the spec's own tiers and disabled pages stay")
}

func TestTierOverridesTheEngineCannotEvaluateAreRefused(t *testing.T) {
	cases := []struct {
		name string
		o    TierOverrides
		want string
	}{
		{"a window that is not evaluated", TierOverrides{Default: []TierSpec{{Name: "x", Severity: "page", LongWindow: time.Hour, ShortWindow: 15 * time.Minute, Factor: 2}}},
			"tiers: tier x: short_window 15m is not an evaluated window"},
		{"a tier without a threshold", TierOverrides{SLOs: map[string][]TierSpec{"a": {{Name: "x", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute}}}},
			"slos.a.tiers: tier x: set factor or budget_percent"},
		{"a short window longer than the long one", TierOverrides{Default: []TierSpec{{Name: "x", Severity: "page", LongWindow: time.Hour, ShortWindow: 6 * time.Hour, Factor: 2}}},
			"short_window must not be longer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Querier: LocalQuerier{}, Tiers: tc.o})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestTiersASpecListsKeepTheNamesTheirAlertsHad(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name  string
		tiers []Tier
		want  []string
	}{
		{"the default tiers keep their names", DefaultTiers(30 * day), []string{"page-fast", "page-slow", "ticket-fast", "ticket-slow"}},
		{"any other list names every tier by severity and windows", DefaultTiers(30 * day)[2:],
			[]string{"ticket-1d/2h", "ticket-3d/6h"}},
		{"a default window with another budget is not the default tier", []Tier{newTier("page", time.Hour, 5*time.Minute, 5, 30*day)},
			[]string{"page-1h/5m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nameSpecTiers(tc.tiers, 30*day)
			var got []string
			for _, tier := range tc.tiers {
				got = append(got, tier.Name)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestStatusAccessorsReadTheTypedSnapshot(t *testing.T) {
	s := Status{Windows: []WindowStatus{{Window: "5m", Length: 5 * time.Minute, BurnRate: 2}, {Window: "1h", Length: time.Hour, BurnRate: 3}},
		PeriodSLI: WindowStatus{ErrorRatio: 0.01}}
	w, ok := s.WindowOf(time.Hour)
	require.True(t, ok)
	require.InDelta(t, 3, float64(w.BurnRate), 0)
	_, ok = s.WindowOf(6 * time.Hour)
	require.False(t, ok, "a window that was not evaluated")

	require.True(t, s.HadTraffic(), "the period's ratio is known")
	s.PeriodSLI.ErrorRatio = Value(math.NaN())
	require.False(t, s.HadTraffic(), "no slice of the period had traffic")
	s.PeriodSLI.ErrorRatio, s.Error = 0.01, "query failed"
	require.False(t, s.HadTraffic(), "a failed evaluation says nothing")
}
