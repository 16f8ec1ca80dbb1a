package gameday_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/sloengine"
)

func TestTheFourShippedScenariosParse(t *testing.T) {
	all, err := gameday.Embedded()
	require.NoError(t, err)
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
		require.NotEmpty(t, s.Title)
	}
	require.Equal(t, []string{"cache-failure", "latency-regression", "shard-outage", "traffic-spike"}, names)
	s, err := gameday.Lookup("shard-outage")
	require.NoError(t, err)
	require.Equal(t, "1", s.Timeline[0].Set["store.shard_down"])
	_, err = gameday.Lookup("no-such-drill")
	require.ErrorIs(t, err, gameday.ErrUnknownScenario)
}

func TestBadScenariosAreRefusedWithTheReason(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"an unknown key is refused", "name: x\nduration: 1m\nload: {rate: 1}\ntimeline: [{at: 1s}]\ncolour: red\n", "field colour not found"},
		{"a step after the end is refused", "name: x\nduration: 1m\nload: {rate: 1}\ntimeline: [{at: 2m}]\n", "outside the drill"},
		{"an expectation needs a query or a page", "name: x\nduration: 1m\nload: {rate: 1}\ntimeline: [{at: 1s, expect: [{name: a, within: 1s}]}]\n", "exactly one of query or page"},
		{"a load without a rate is refused", "name: x\nduration: 1m\nload: {shape: sine}\ntimeline: [{at: 1s}]\n", "load: rate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gameday.Parse([]byte(tc.yaml))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// fakeBurnrate serves the fault API and a query API whose burn signal
// appears `delay` after store.shard_down is set, as an SLO engine would.
func fakeBurnrate(t *testing.T, delay time.Duration) (*httptest.Server, *faults.Set) {
	set := faults.New()
	var downSince atomic.Int64
	set.Subscribe(func(st *faults.State) {
		if len(st.ShardDown) > 0 && downSince.Load() == 0 {
			downSince.Store(time.Now().UnixNano())
		}
		if len(st.ShardDown) == 0 {
			downSince.Store(0)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/demo/", set.Handler())
	mux.HandleFunc("/api/v2/alerts", func(w http.ResponseWriter, _ *http.Request) {
		// A latency page that started long ago is not this drill's page; the
		// availability page starts with the burn signal.
		alerts := []map[string]any{{"labels": map[string]string{"severity": "page", "slo": "demo-edge-latency"},
			"startsAt": "2020-01-01T00:00:00Z", "status": map[string]any{"state": "active"}}}
		if since := downSince.Load(); since != 0 && time.Since(time.Unix(0, since)) >= delay {
			alerts = append(alerts, map[string]any{"labels": map[string]string{"severity": "page", "slo": "demo-edge-availability", "alertname": "SLOErrorBudgetBurn"},
				"startsAt": time.Now().UTC(), "status": map[string]any{"state": "active"}})
		}
		_ = json.NewEncoder(w).Encode(alerts)
	})
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		result := []any{}
		since := downSince.Load()
		if strings.HasPrefix(q, "slo:current_burn_rate:ratio") && since != 0 && time.Since(time.Unix(0, since)) >= delay {
			result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{1, "30"}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, set
}

func TestADrillMeasuresDetectionAndScoresItAgainstTheWorkbook(t *testing.T) {
	burnrate, set := fakeBurnrate(t, 300*time.Millisecond)
	var hits atomic.Int64
	edge := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer edge.Close()

	s, err := gameday.Parse([]byte(`
name: mini-outage
title: Mini outage
duration: 2s
load: {shape: constant, rate: 20}
timeline:
  - at: 200ms
    set: {store.shard_down: "1"}
    expect:
      - name: burn on time
        query: slo:current_burn_rate:ratio{sloth_id="demo-edge-availability"} > 2
        within: 1s
        acknowledge_within: 5m
      - name: burn late
        query: slo:current_burn_rate:ratio{sloth_id="demo-edge-availability"} > 2
        within: 150ms
      - name: page arrives
        page: demo-edge-availability
        within: 1s
      - name: page never arrives
        page: demo-edge-latency
        within: 200ms
      - name: nothing is shed
        query: demo_edge_rejected_total{reason="shed"} > 0
        never: true
`))
	require.NoError(t, err)
	rep, err := gameday.Run(context.Background(), s, gameday.Options{URL: burnrate.URL, EdgeURL: edge.URL, Poll: 20 * time.Millisecond})
	require.NoError(t, err)

	byName := map[string]gameday.Result{}
	for _, r := range rep.Results {
		byName[r.Expect.Name] = r
	}
	onTime := byName["burn on time"]
	require.True(t, onTime.Detected)
	require.GreaterOrEqual(t, onTime.After, 300*time.Millisecond)
	require.InDelta(t, 100, onTime.Score, 0)
	late := byName["burn late"]
	require.True(t, late.Detected)
	require.Less(t, late.Score, 60.0, "twice as late as expected scores about half")
	require.Greater(t, late.Score, 0.0)
	require.True(t, byName["page arrives"].Detected)
	require.InDelta(t, 100, byName["page arrives"].Score, 0)
	require.False(t, byName["page never arrives"].Detected)
	require.Zero(t, byName["page never arrives"].Score)
	require.InDelta(t, 100, byName["nothing is shed"].Score, 0)

	require.Empty(t, set.Values(), "the drill clears the faults it set")
	require.Positive(t, hits.Load(), "the drill sent load to the edge")
	md := rep.Markdown()
	require.Contains(t, md, "# Game day: Mini outage")
	require.Contains(t, md, "| burn on time |")
	require.Contains(t, md, "not measured: no page or workbook SLO to find the incident by (expected 5m0s)")
	require.Contains(t, md, "| page arrives | page demo-edge-availability | 1s |")
	require.Contains(t, md, "not measured: the incident tracker is not running", "the fake serves no /api/v1/incidents")
	require.Contains(t, md, "set store.shard_down = 1")
	require.Contains(t, md, "**Score: ")
}

func TestTheShippedScenariosTakeTheirTimesFromSLOsThatExist(t *testing.T) {
	all, err := gameday.Embedded()
	require.NoError(t, err)
	slos, err := sloengine.Examples()
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, s := range slos {
		ids[s.ID] = true
	}
	for _, s := range all {
		for _, st := range s.Timeline {
			for _, e := range st.Expect {
				if e.Workbook == nil {
					continue
				}
				require.True(t, ids[e.Workbook.SLO], "%s: %s names SLO %s, which burnrate up does not load", s.Name, e.Name, e.Workbook.SLO)
				require.Zero(t, e.Within, "%s: %s: the workbook sets the time, not a hand-set within", s.Name, e.Name)
			}
		}
	}
}
