package gameday_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestGameDaysAgainstBurnrateUp runs drills against one real `burnrate up`
// (collector, SLO engine, demo platform), one after the other as a team
// would: a short drill measured in detail, then the four shipped scenarios.
func TestGameDaysAgainstBurnrateUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs burnrate up for half a minute")
	}
	opts := app.DefaultOptions()
	opts.Demo.Load.Enabled = false
	opts.Demo.MetricInterval = time.Second
	opts.Demo.HealthInterval = 100 * time.Millisecond
	opts.SLO.Interval = time.Second
	r := apptest.StartApp(t, opts)
	edge := ""
	for _, e := range r.App.Endpoints() {
		if e.Name == "demo edge" {
			edge = e.URL[:len(e.URL)-len("/api/products/1")]
		}
	}
	require.NotEmpty(t, edge)
	t.Run("a drill has history and a workbook time", func(t *testing.T) { drillWithHistory(t, r.URL, edge) })
	t.Run("the four shipped game days run", func(t *testing.T) { shippedDrills(t, r.URL, edge) })
}

// drillWithHistory: ten minutes of steady state are remote-written first,
// the fault's error ratio is measured from the drill's answers, and the
// expected time follows from the demo availability SLO's budget.
func drillWithHistory(t *testing.T, burnrate, edge string) {

	s, err := gameday.Parse([]byte(`
name: up-outage
title: API errors against burnrate up
duration: 12s
load: {shape: constant, rate: 50}
timeline:
  - at: 3s
    set: {api.error_fraction: "0.5"}
    expect:
      - name: availability burns on the 5m window
        query: slo:current_burn_rate:ratio{sloth_id="demo-edge-availability"} > 2
        workbook: {slo: demo-edge-availability, factor: 2, window: 5m}
`))
	require.NoError(t, err)
	rep, err := gameday.Run(context.Background(), s, gameday.Options{
		URL: burnrate, EdgeURL: edge, Poll: 250 * time.Millisecond, History: 10 * time.Minute, Logger: testutil.Logger(t),
	})
	require.NoError(t, err)
	require.Empty(t, rep.Void, rep.Markdown())
	require.Contains(t, rep.History, "10m0s of good traffic at 50/s")

	res := rep.Results[0]
	require.True(t, res.Detected, rep.Markdown())
	// The ratio is measured from the drill's own answers between the fault
	// and the signal, a few seconds at 50/s: a sample of a hundred or so,
	// so 0.5 within ±0.2 (four standard deviations).
	require.InDelta(t, 0.5, res.ErrorRatio, 0.2, "api.error_fraction=0.5 measured at the edge")
	// The workbook time for that ratio: 2 × 0.001 / ratio × 5m (1.2 s at 0.5).
	want := time.Duration(2 * 0.001 / res.ErrorRatio * float64(5*time.Minute))
	require.InDelta(t, float64(want), float64(res.Within), float64(50*time.Millisecond))
	require.False(t, res.TooEarly)
	require.Positive(t, res.Score)

	var set bool
	for _, e := range rep.FaultEvents {
		set = set || (e.Kind == "fault_set" && e.Flag == "api.error_fraction" && e.Source == "gameday")
	}
	require.True(t, set, "the report lists the fault events of the event store")
	require.Contains(t, rep.BudgetConsumed, "demo-edge-availability")
	require.Contains(t, rep.Markdown(), "## Fault events")
}

// shippedDrills runs every shipped scenario end to end, ninety times faster
// than written: history (continued, not stacked, from the drill before),
// faults set and cleared on the timeline, every expectation watched and
// judged, nothing void.
func shippedDrills(t *testing.T, burnrate, edge string) {
	all, err := gameday.Embedded()
	require.NoError(t, err)
	require.Len(t, all, 4)
	for _, s := range all {
		t.Run(s.Name, func(t *testing.T) {
			rep, err := gameday.Run(context.Background(), s, gameday.Options{
				URL: burnrate, EdgeURL: edge, Poll: 200 * time.Millisecond, History: 10 * time.Minute, TimeScale: 90,
			})
			require.NoError(t, err)
			require.Empty(t, rep.Void, rep.Markdown())
			var n int
			for _, st := range s.Timeline {
				n += len(st.Expect)
			}
			require.Len(t, rep.Results, n, "every expectation is judged")
			for _, x := range rep.Results {
				if x.Expect.Workbook != nil && !x.Expect.Never {
					require.NotEmpty(t, x.WithinWhy, "%s: the time comes from the workbook", x.Expect.Name)
				}
			}
			var sets int
			for _, e := range rep.FaultEvents {
				if e.Kind == "fault_set" && e.Source == "gameday" {
					sets++
				}
			}
			var want int
			for _, st := range s.Timeline {
				want += len(st.Set)
			}
			require.Equal(t, want, sets, "the event store has every fault the timeline set")
		})
	}
}
