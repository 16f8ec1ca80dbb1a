package gameday_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/internal/testutil"
)

// fakeStack is a Burnrate and an edge for drills: while store.shard_down is
// set the edge fails every other request with 500 (an error ratio of 0.5),
// the burn query answers `delay` after the fault, and the SLO API reports a
// 10% budget with a page tier of factor 14.4 on 1h and budget consumption
// that grows while the fault is on.
type fakeStack struct {
	burnrate, edge *httptest.Server
	set            *faults.Set
	queryFails     atomic.Bool
}

func newFakeStack(t *testing.T, delay time.Duration) *fakeStack {
	f := &fakeStack{set: faults.New()}
	var downSince atomic.Int64
	f.set.Subscribe(func(st *faults.State) {
		switch {
		case len(st.ShardDown) > 0 && downSince.Load() == 0:
			downSince.Store(time.Now().UnixNano())
		case len(st.ShardDown) == 0:
			downSince.Store(0)
		}
	})
	burning := func() bool {
		s := downSince.Load()
		return s != 0 && time.Since(time.Unix(0, s)) >= delay
	}
	var consumed atomic.Int64 // in 1/10000 of the budget
	consumed.Store(1000)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/demo/", f.set.Handler())
	mux.HandleFunc("/api/v2/alerts", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("[]")) })
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		if f.queryFails.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "error": "storage is down"})
			return
		}
		result := []any{}
		if burning() && strings.HasPrefix(r.URL.Query().Get("query"), "slo:current_burn_rate") {
			result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{1, "30"}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	})
	mux.HandleFunc("/api/v1/slos/{id}", func(w http.ResponseWriter, _ *http.Request) {
		if downSince.Load() != 0 {
			consumed.Add(10)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"slo": map[string]any{
			"error_budget":    0.1,
			"budget_consumed": float64(consumed.Load()) / 10000,
			"windows":         []any{map[string]any{"window": "1s", "burn_rate": 5.0}, map[string]any{"window": "1h", "burn_rate": 0.5}},
			"tiers": []any{
				map[string]any{"severity": "page", "long_window": "6h", "factor": 6},
				map[string]any{"severity": "page", "long_window": "1h", "factor": 14.4},
			},
		}}})
	})
	mux.HandleFunc("/api/v1/traces", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": []any{map[string]any{"traceID": "4bf92f3577b34da6a3ce929d0e0e4736"}}})
	})
	f.burnrate = httptest.NewServer(mux)
	t.Cleanup(f.burnrate.Close)
	var n atomic.Int64
	f.edge = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if len(f.set.State().ShardDown) > 0 && n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(f.edge.Close)
	return f
}

func (f *fakeStack) run(t *testing.T, yaml string) *gameday.Report {
	t.Helper()
	s, err := gameday.Parse([]byte(yaml))
	require.NoError(t, err)
	rep, err := gameday.Run(context.Background(), s, gameday.Options{URL: f.burnrate.URL, EdgeURL: f.edge.URL, Poll: 20 * time.Millisecond})
	require.NoError(t, err)
	return rep
}

const workbookDrill = `
name: workbook-outage
title: Workbook outage
duration: 2s
load: {shape: constant, rate: 100}
timeline:
  - at: 200ms
    set: {store.shard_down: "1"}
    expect:
      - name: burn on the 1s window
        query: slo:current_burn_rate:ratio{sloth_id="demo-edge-availability"} > 2
        workbook: {slo: demo-edge-availability, factor: 2, window: 1s}
      - name: page tier cannot fire in two seconds
        query: ALERTS{alertstate="firing"}
        workbook: {slo: demo-edge-availability, tier: page}
`

func TestTheExpectedTimeIsTheWorkbooksForTheMeasuredErrorRatio(t *testing.T) {
	f := newFakeStack(t, 250*time.Millisecond)
	rep := f.run(t, workbookDrill)
	require.Empty(t, rep.Void)
	burn := rep.Results[0]
	require.True(t, burn.Detected)
	require.InDelta(t, 0.5, burn.ErrorRatio, 0.1, "every other answer failed during the fault")
	// 2 × 0.1 / 0.5 × 1s = 400ms.
	require.InDelta(t, float64(400*time.Millisecond), float64(burn.Within), float64(100*time.Millisecond))
	require.Contains(t, burn.WithinWhy, "2 × 0.1 / 0.")
	require.False(t, burn.TooEarly, "after %s of an expected %s", burn.After, burn.Within)
	require.Positive(t, burn.Score)
	require.InDelta(t, 5.0, burn.BurnRate, 0, "the SLO's burn rate over the workbook window at detection")

	page := rep.Results[1]
	require.Contains(t, page.WithinWhy, "14.4 × 0.1", "the page tier that fires first: 14.4 on 1h, not 6 on 6h")
	require.Greater(t, page.Within, time.Minute)
	require.InDelta(t, 100, page.Score, 0, "the math says the tier cannot fire within the drill, and it did not")

	require.InDelta(t, 0, rep.BudgetConsumed["demo-edge-availability"], 0.5)
	require.Positive(t, rep.BudgetConsumed["demo-edge-availability"], "budget spent during the fault")
	require.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, rep.FailingTraces)
}

func TestADetectionFarEarlierThanTheMathAllowsIsFlaggedNotScored(t *testing.T) {
	f := newFakeStack(t, 0) // the signal is there the moment the fault is
	rep := f.run(t, workbookDrill)
	burn := rep.Results[0]
	require.True(t, burn.Detected)
	require.True(t, burn.TooEarly, "detected after %s, expected %s", burn.After, burn.Within)
	require.Zero(t, burn.Score)
	require.Contains(t, rep.Markdown(), "**too early**")
}

func TestADrillWhoseQueriesFailedScoresZeroAndSaysWhy(t *testing.T) {
	f := newFakeStack(t, 0)
	f.queryFails.Store(true)
	rep := f.run(t, workbookDrill)
	require.NotEmpty(t, rep.Void)
	require.Zero(t, rep.Score())
	md := rep.Markdown()
	require.Contains(t, md, "**Score: 0 / 100**")
	require.Contains(t, md, "The drill is void")
	require.Contains(t, md, "storage is down")
}

func TestAQueryThatFailsOnceThenAnswersDoesNotVoidTheDrill(t *testing.T) {
	f := newFakeStack(t, 0)
	f.queryFails.Store(true)
	time.AfterFunc(300*time.Millisecond, func() { f.queryFails.Store(false) })
	rep := f.run(t, workbookDrill)
	require.Empty(t, rep.Void, rep.Markdown())
	require.True(t, rep.Results[0].Detected, rep.Markdown())
}

func TestTheReportMatchesItsGoldenFile(t *testing.T) {
	s, err := gameday.Parse([]byte(workbookDrill))
	require.NoError(t, err)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// The drill's incident was acknowledged within the drill, not resolved.
	burn := s.Timeline[0].Expect[0]
	burn.AcknowledgeWithin, burn.ResolveWithin = 5*time.Minute, 30*time.Minute
	triggered, acked := start.Add(700*time.Millisecond), start.Add(1900*time.Millisecond)
	rep := &gameday.Report{
		Scenario: s, Started: start, Ended: start.Add(2 * time.Second),
		Results: []gameday.Result{
			{Step: 0, Expect: burn, Detected: true, After: 450 * time.Millisecond, Score: 89,
				Within: 400 * time.Millisecond, WithinWhy: "2 × 0.1 / 0.5000 × 1s", ErrorRatio: 0.5, Answers: 160, BurnRate: 5,
				Incident: &gameday.IncidentTimes{ID: 7, SLO: "demo-edge-availability", TriggeredAt: triggered, AcknowledgedAt: &acked}},
			{Step: 0, Expect: s.Timeline[0].Expect[1], Score: 100, Within: 1036800 * time.Millisecond,
				WithinWhy: "14.4 × 0.1 / 0.5000 × 1h0m0s", ErrorRatio: 0.5, Answers: 180, BurnRate: math.NaN()},
		},
		Events:         []string{"0s  set store.shard_down = 1"},
		BudgetConsumed: map[string]float64{"demo-edge-availability": 0.012},
		FaultEvents: []gameday.FaultEvent{
			{At: start.Add(200 * time.Millisecond), Kind: "fault_set", Flag: "store.shard_down", Value: "1", Source: "gameday"},
			{At: start.Add(2 * time.Second), Kind: "fault_cleared", Flag: "store.shard_down", Source: "gameday"},
		},
		FailingTraces: []string{"4bf92f3577b34da6a3ce929d0e0e4736"},
		History:       "2h0m0s of good traffic at 100/s written before the first fault",
	}
	rep.Load.Requests, rep.Load.AchievedRPS, rep.Load.Status = 200, 100, map[string]int{"200": 120, "500": 80}
	testutil.Golden(t, "report.golden.md", []byte(rep.Markdown()))
}
