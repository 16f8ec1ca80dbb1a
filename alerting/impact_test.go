package alerting_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/sloengine"
)

// phase is an error ratio holding from `from` until the next phase.
type phase struct {
	from  time.Time
	ratio float64
}

// errorHistory is an SLI's error ratio over time, for constant traffic.
type errorHistory []phase

// over is the error ratio of the window (at-w, at]: the time-weighted mean
// of the phases it overlaps, as rate()-based SLIs at constant traffic see it.
func (h errorHistory) over(at time.Time, w time.Duration) float64 {
	from := at.Add(-w)
	var sum float64
	for i, p := range h {
		end := at
		if i+1 < len(h) && h[i+1].from.Before(end) {
			end = h[i+1].from
		}
		start := p.from
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			sum += p.ratio * end.Sub(start).Seconds()
		}
	}
	return sum / w.Seconds()
}

// sloUnder is the 99.9%/30d SLO as the engine evaluates it at `at` under the
// error history h: every window's ratio and burn rate, and the page-fast
// tier (1h/5m, factor 14.4) decided on them.
func sloUnder(h errorHistory, at time.Time) alerting.SLOBurn {
	const eb = 0.001
	b := slo(0)
	b.Windows = map[time.Duration]alerting.WindowBurn{}
	var windows []sloengine.WindowStatus
	for _, d := range sloengine.Windows {
		r := h.over(at, d)
		b.Windows[d] = alerting.WindowBurn{BurnRate: r / eb, Errors: r * 1000, Total: 1000}
		windows = append(windows, sloengine.WindowStatus{Length: d, ErrorRatio: sloengine.Value(r), BurnRate: sloengine.Value(r / eb), TotalEvents: 1000})
	}
	b.Tiers = sloengine.EvaluateTiers(sloengine.DefaultTiers(30*24*time.Hour), windows, eb)
	b.EvaluatedAt = at
	return only(b, "page-fast")
}

// pageImpact returns the page-fast alert's impact_started_at annotation as
// the alerts API serves it ("" when the alert or the annotation is absent).
func pageImpact(t *testing.T, m *alerting.Manager) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/alerts", nil))
	require.Equal(t, 200, w.Code)
	var got []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	for _, a := range got {
		if a.Labels["tier"] == "page-fast" {
			return a.Annotations[alerting.AnnotationImpactStarted]
		}
	}
	return ""
}

// impactFixture evaluates the page-fast rule every interval against the
// error history h, as the engine would see it at the fixture's clock.
func impactFixture(t *testing.T, h errorHistory, start time.Time) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), cfg: pageFastOnly(0), clock: newClock(start), rcv: &recorder{}}
	f.burns = alerting.BurnSourceFunc(func() []alerting.SLOBurn { return []alerting.SLOBurn{sloUnder(h, f.clock.Now())} })
	f.open()
	return f
}

// untilFiring evaluates every interval until the page fires (for at most
// limit) and returns when it fired.
func untilFiring(t *testing.T, f *fixture, interval, limit time.Duration) time.Time {
	t.Helper()
	ctx := context.Background()
	for end := f.clock.Now().Add(limit); !f.clock.Now().After(end); f.clock.Advance(interval) {
		require.NoError(t, f.m.Evaluate(ctx))
		if pageState(f.m) == alerting.StateFiring {
			return f.clock.Now()
		}
	}
	t.Fatalf("the page did not fire within %s", limit)
	return time.Time{}
}

// TestAPageCarriesWhenItsSLOStartedBurning: a constant error ratio e from
// t0 on a 99.9% SLO pages on the 1h/5m tier (factor 14.4) after the SRE
// Workbook's detection time F x budget / e x 1h, and the page says the
// burn began at t0 (within one evaluation interval): the short window
// burns above 1 from the first evaluation after t0.
func TestAPageCarriesWhenItsSLOStartedBurning(t *testing.T) {
	const interval = 30 * time.Second
	start := t0.Add(-3 * time.Hour) // the history's beginning
	// detection is the workbook's F x budget / e x W for the 1h window;
	// a background ratio b before t0 fills the rest of the window, so the
	// window crosses F x budget after (F x budget - b) / (e - b) x W.
	detection := func(e, background float64) time.Duration {
		return time.Duration((14.4*0.001 - background) / (e - background) * float64(time.Hour))
	}
	cases := []struct {
		name      string
		h         errorHistory
		detection time.Duration
	}{
		{name: "a full outage pages after 52 s", h: errorHistory{{start.Add(-2 * time.Hour), 0}, {t0, 1}}, detection: detection(1, 0)},
		{name: "5% errors page after 17 minutes", h: errorHistory{{start.Add(-2 * time.Hour), 0}, {t0, 0.05}}, detection: detection(0.05, 0)},
		{name: "2% errors page after 43 minutes", h: errorHistory{{start.Add(-2 * time.Hour), 0}, {t0, 0.02}}, detection: detection(0.02, 0)},
		{
			name: "a background below the budget and an earlier blip that ended do not move the impact start",
			h: errorHistory{{start.Add(-2 * time.Hour), 0.0005}, {t0.Add(-90 * time.Minute), 0.01}, {t0.Add(-88 * time.Minute), 0.0005},
				{t0, 0.05}},
			detection: detection(0.05, 0.0005),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := impactFixture(t, tc.h, t0.Add(-2*time.Hour))
			fired := untilFiring(t, f, interval, 3*time.Hour)
			require.GreaterOrEqual(t, fired.Sub(t0), tc.detection, "fires once the 1h window crosses 14.4x")
			require.LessOrEqual(t, fired.Sub(t0), tc.detection+interval, "at the first evaluation after that")

			v := pageImpact(t, f.m)
			require.NotEmpty(t, v, "the firing page carries impact_started_at")
			impact, err := time.Parse(time.RFC3339Nano, v)
			require.NoError(t, err)
			require.Equal(t, time.UTC, impact.Location())
			require.False(t, impact.Before(t0), "the burn began at t0, not with the blip before it: %s", impact)
			require.LessOrEqual(t, impact.Sub(t0), interval, "impact start %s is within one evaluation of t0", impact)

			// The annotation stays while the alert fires.
			f.clock.Advance(interval)
			require.NoError(t, f.m.Evaluate(context.Background()))
			require.Equal(t, v, pageImpact(t, f.m))
		})
	}
}

// TestTheImpactStartSurvivesARestart: the burn run and the firing alert's
// impact start are kept with the rule state, as pending time is, so a
// restart during the burn, before or after the page, moves neither; a stop
// longer than for_outage_tolerance starts the run over, as it starts a
// pending alert's time over.
func TestTheImpactStartSurvivesARestart(t *testing.T) {
	const interval = 30 * time.Second
	start := t0.Add(-time.Hour)
	h := errorHistory{{start.Add(-2 * time.Hour), 0}, {t0, 0.05}}
	ctx := context.Background()

	t.Run("a restart before the page", func(t *testing.T) {
		f := impactFixture(t, h, start)
		for f.clock.Now().Before(t0.Add(10 * time.Minute)) {
			require.NoError(t, f.m.Evaluate(ctx))
			f.clock.Advance(interval)
		}
		require.Empty(t, pageState(f.m), "burning, not paging yet")
		f.restart()
		f.clock.Advance(2 * time.Minute)
		untilFiring(t, f, interval, time.Hour)
		impact, err := time.Parse(time.RFC3339Nano, pageImpact(t, f.m))
		require.NoError(t, err)
		require.False(t, impact.Before(t0))
		require.LessOrEqual(t, impact.Sub(t0), interval, "the run begun before the restart: %s", impact)

		f.restart()
		f.clock.Advance(interval)
		require.NoError(t, f.m.Evaluate(ctx))
		require.Equal(t, impact.Format(time.RFC3339Nano), pageImpact(t, f.m), "and after a restart while it fires")
	})

	t.Run("a stop longer than for_outage_tolerance", func(t *testing.T) {
		f := impactFixture(t, h, start)
		for f.clock.Now().Before(t0.Add(10 * time.Minute)) {
			require.NoError(t, f.m.Evaluate(ctx))
			f.clock.Advance(interval)
		}
		require.NoError(t, f.store.Close())
		f.clock.Advance(2 * time.Hour)
		f.open()
		back := f.clock.Now()
		fired := untilFiring(t, f, interval, time.Hour)
		require.Equal(t, back, fired, "the 1h window burns at 50x: it pages at once")
		require.Equal(t, back.Format(time.RFC3339Nano), pageImpact(t, f.m),
			"nothing was seen for two hours: the run starts over at the first evaluation after the stop")
	})
}

// TestTheImpactStartIsFixedWhileTheAlertFires: the run ends when the short
// window cools, but an alert kept firing by keep_firing_for keeps the
// impact start it activated with, and a new burn while it still fires
// does not move it.
func TestTheImpactStartIsFixedWhileTheAlertFires(t *testing.T) {
	const interval = 30 * time.Second
	h := errorHistory{{t0.Add(-3 * time.Hour), 0}, {t0, 1}, {t0.Add(5 * time.Minute), 0}, {t0.Add(12 * time.Minute), 1}}
	f := impactFixture(t, h, t0.Add(-time.Hour))
	f.cfg.Rules.Tiers[0].KeepFiringFor = time.Hour
	f.restart()
	untilFiring(t, f, interval, 2*time.Hour)
	first := pageImpact(t, f.m)
	require.NotEmpty(t, first)
	ctx := context.Background()
	for f.clock.Now().Before(t0.Add(20 * time.Minute)) {
		f.clock.Advance(interval)
		require.NoError(t, f.m.Evaluate(ctx))
		require.Equal(t, alerting.StateFiring, pageState(f.m), "kept firing at %s", f.clock.Now())
		require.Equal(t, first, pageImpact(t, f.m), "at %s", f.clock.Now())
	}
}

// TestATierWhoseFactorIsBelowOneStartsItsRunAtItsFactor: a tier that fires
// below burn rate 1 (the 28-day slow ticket tier's 0.933, here 0.5) starts
// its run when the short window crosses its factor, so the alert's impact
// start is the burn's, not its own activation.
func TestATierWhoseFactorIsBelowOneStartsItsRunAtItsFactor(t *testing.T) {
	const interval = 30 * time.Second
	// 0.08% errors: burn rate 0.8 on a 99.9% SLO, above the factor 0.5.
	h := errorHistory{{t0.Add(-3 * time.Hour), 0}, {t0, 0.0008}}
	cfg := pageFastOnly(0)
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0.Add(-10 * time.Minute)), rcv: &recorder{}}
	f.burns = alerting.BurnSourceFunc(func() []alerting.SLOBurn {
		b := sloUnder(h, f.clock.Now())
		var windows []sloengine.WindowStatus
		for d, w := range b.Windows {
			windows = append(windows, sloengine.WindowStatus{Length: d, ErrorRatio: sloengine.Value(w.BurnRate * 0.001), BurnRate: sloengine.Value(w.BurnRate), TotalEvents: 1000})
		}
		tier := sloengine.Tier{Name: "page-fast", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 0.5}
		b.Tiers = sloengine.EvaluateTiers([]sloengine.Tier{tier}, windows, 0.001)
		return []alerting.SLOBurn{b}
	})
	f.open()
	fired := untilFiring(t, f, interval, 2*time.Hour)
	// The 1h window crosses 0.5 x budget after 0.5/0.8 h, the 5m window
	// after 0.5/0.8 x 5m.
	require.InDelta(t, (37*time.Minute + 30*time.Second).Seconds(), fired.Sub(t0).Seconds(), interval.Seconds())
	impact, err := time.Parse(time.RFC3339Nano, pageImpact(t, f.m))
	require.NoError(t, err)
	require.InDelta(t, (3*time.Minute + 7500*time.Millisecond).Seconds(), impact.Sub(t0).Seconds(), interval.Seconds(),
		"the run started when the 5m window crossed the factor: %s", impact)
}
