package gameday_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestADrillAgainstBurnrateUpHasHistoryAndAWorkbookTime runs a short drill
// against a real `burnrate up` (collector, SLO engine, demo platform): ten
// minutes of steady state are remote-written first, the fault's error ratio
// is measured from the drill's answers, and the expected time follows from
// the demo availability SLO's budget.
func TestADrillAgainstBurnrateUpHasHistoryAndAWorkbookTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs burnrate up for half a minute")
	}
	opts := app.DefaultOptions()
	opts.Demo.Load.Enabled = false
	opts.Demo.MetricInterval = time.Second
	opts.Demo.HealthInterval = 100 * time.Millisecond
	opts.SLO.Interval = time.Second
	r := testutil.StartApp(t, opts)
	edge := ""
	for _, e := range r.App.Endpoints() {
		if e.Name == "demo edge" {
			edge = e.URL[:len(e.URL)-len("/api/products/1")]
		}
	}
	require.NotEmpty(t, edge)

	s, err := gameday.Parse([]byte(`
name: up-outage
title: API errors against burnrate up
duration: 25s
load: {shape: constant, rate: 20}
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
		URL: r.URL, EdgeURL: edge, Poll: 250 * time.Millisecond, History: 10 * time.Minute, Logger: testutil.Logger(t),
	})
	require.NoError(t, err)
	require.Empty(t, rep.Void, rep.Markdown())
	require.Contains(t, rep.History, "10m0s of good traffic at 20/s")

	res := rep.Results[0]
	require.True(t, res.Detected, rep.Markdown())
	require.InDelta(t, 0.5, res.ErrorRatio, 0.15, "api.error_fraction=0.5 measured at the edge")
	// 2 × 0.001 / 0.5 × 5m = 1.2s.
	require.InDelta(t, float64(1200*time.Millisecond), float64(res.Within), float64(500*time.Millisecond))
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
