package sloengine

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

func loadSLOs(t testing.TB, spec string) []*SLO {
	t.Helper()
	l := NewLoader()
	l.Add("test.yml", []byte(spec))
	slos, err := l.Result()
	require.NoError(t, err)
	return slos
}

func newTestEngine(t testing.TB, slos []*SLO, st storage.Storage) *Engine {
	t.Helper()
	e, err := New(Options{SLOs: slos, Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: st}, Appendable: st,
		Queryable: st, Config: Config{Interval: time.Minute, History: 3}})
	require.NoError(t, err)
	return e
}

const onePercentSpec = `version: burnrate/v1
service: api
slos:
  - name: availability
    objective: 99.9
    min_events: 100
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
`

// TestEngineComputesEveryOutput follows one SLO at a steady 1% error
// ratio (burn rate 10 on a 99.9% objective) through windows, budget,
// forecasts, tiers, write-back and the API.
func TestEngineComputesEveryOutput(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  requests_total 0+600x600
  errors_total   0+6x600
`)
	t.Cleanup(func() { st.Close() })
	e := newTestEngine(t, loadSLOs(t, onePercentSpec), st)
	ctx := context.Background()
	at := time.Unix(0, 0).Add(9 * time.Hour)
	for i := range 4 {
		e.Evaluate(ctx, at.Add(time.Duration(i-3)*time.Minute))
	}
	snap := e.Snapshot()
	require.Len(t, snap, 1)
	s := snap[0]
	require.Empty(t, s.Error)
	require.Equal(t, at.UTC(), s.EvaluatedAt)

	h1, ok := s.Window("1h")
	require.True(t, ok)
	require.InDelta(t, 0.01, float64(h1.ErrorRatio), 1e-12)
	require.InDelta(t, 0.99, float64(h1.SLI), 1e-12)
	require.InDelta(t, 10, float64(h1.BurnRate), 1e-9)
	require.InDelta(t, 36000, float64(h1.TotalEvents), 1e-6)
	require.InDelta(t, 360, float64(h1.BadEvents), 1e-6)
	require.InDelta(t, 35640, float64(h1.GoodEvents), 1e-6)
	require.False(t, h1.LowTraffic)

	// Nine hours at burn rate 10 of a 30-day budget: the period ratio is the
	// slices' 1%, and nine hours of a 30-day period have spent 10 x 9/720 of
	// the budget (the young period is not overspent nine times over).
	require.InDelta(t, 0.01, float64(s.PeriodSLI.ErrorRatio), 1e-9)
	require.InDelta(t, 9.0/720, float64(s.PeriodCoverage), 1e-12)
	require.False(t, s.InsufficientData)
	require.InDelta(t, 0.125, float64(s.BudgetConsumed), 1e-6)
	require.InDelta(t, 0.875, float64(s.BudgetRemaining), 1e-6)
	for _, f := range s.Forecasts {
		// remaining x period / burn rate 10.
		require.InDelta(t, 0.875*30*86400/10, float64(f.Seconds), 1e-3, f.Window)
	}
	firing := map[string]bool{}
	for _, tier := range s.Tiers {
		firing[FormatWindow(tier.LongWindow)] = tier.Firing
	}
	require.Equal(t, map[string]bool{"1h": false, "6h": true, "1d": true, "3d": true}, firing, "burn 10 passes 6, 3 and 1 but not 14.4")

	// Written back under Sloth's names.
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: st}
	for expr, want := range map[string]float64{
		`slo:sli_error:ratio_rate1h{sloth_id="api-availability",sloth_service="api",sloth_slo="availability",sloth_window="1h"}`: 0.01,
		`slo:period_error_budget_remaining:ratio{sloth_id="api-availability"}`:                                                   0.875,
		`slo:period_coverage:ratio{sloth_id="api-availability"}`:                                                                 9.0 / 720,
		`slo:error_budget:ratio{sloth_id="api-availability"}`:                                                                    0.001,
		`slo:current_burn_rate:ratio{sloth_id="api-availability"}`:                                                               10,
		`slo:time_period:days{sloth_id="api-availability"}`:                                                                      30,
	} {
		v, ok, err := scalar(ctx, q, expr, at)
		require.NoError(t, err)
		require.True(t, ok, expr)
		require.InDelta(t, want, v, 1e-6, expr)
	}

	// The API: list, one SLO with its history (History: 3 keeps three).
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	var list struct {
		Status string   `json:"status"`
		Data   []Status `json:"data"`
	}
	getJSON(t, srv.URL+"/api/v1/slos", http.StatusOK, &list)
	require.Equal(t, "success", list.Status)
	require.Len(t, list.Data, 1)
	require.InDelta(t, 0.875, float64(list.Data[0].BudgetRemaining), 1e-6)
	require.InDelta(t, 9.0/720, float64(list.Data[0].PeriodCoverage), 1e-12)
	var one struct {
		Data struct {
			SLO     Status       `json:"slo"`
			History []Evaluation `json:"history"`
		} `json:"data"`
	}
	getJSON(t, srv.URL+"/api/v1/slos/api-availability", http.StatusOK, &one)
	require.Len(t, one.Data.History, 3)
	require.Equal(t, at.UTC(), one.Data.History[2].EvaluatedAt)
	require.Len(t, one.Data.History[2].Windows, len(Windows)+1)
	require.InDelta(t, 10, float64(one.Data.History[2].Windows[2].BurnRate), 1e-9)
	var nf map[string]string
	getJSON(t, srv.URL+"/api/v1/slos/nope", http.StatusNotFound, &nf)
	require.Equal(t, "not_found", nf["errorType"])
}

func getJSON(t testing.TB, url string, code int, v any) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, code, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// TestLowTrafficHoldsBackAlerts: at 10 requests an hour one failure is a
// burn rate of 100 over the 1h window of a 99.9% SLO (and 1000 over a 5m
// window holding a single request); min_events keeps such windows from
// paging.
func TestLowTrafficHoldsBackAlerts(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 6m
  requests_total 0+1x200
  errors_total   0x150 1x50
`)
	t.Cleanup(func() { st.Close() })
	e := newTestEngine(t, loadSLOs(t, onePercentSpec), st)
	e.Evaluate(context.Background(), time.Unix(0, 0).Add(15*time.Hour+30*time.Minute))
	s := e.Snapshot()[0]
	h1, _ := s.Window("1h")
	require.InDelta(t, 10, float64(h1.TotalEvents), 1e-6)
	require.Greater(t, float64(h1.BurnRate), 14.4, "one failure in ten requests burns at 100")
	require.True(t, h1.LowTraffic)
	for _, tier := range s.Tiers {
		require.True(t, tier.Held, tier.Name)
		require.False(t, tier.Firing, tier.Name)
	}
}

func TestLatencyThresholdIsCheckedAgainstTheData(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  rpc_seconds_bucket{le="0.1"}  0+80x120
  rpc_seconds_bucket{le="0.5"}  0+95x120
  rpc_seconds_bucket{le="+Inf"} 0+100x120
  rpc_seconds_count             0+100x120
`)
	t.Cleanup(func() { st.Close() })
	spec := `version: burnrate/v1
service: rpc
slos:
  - name: fast
    objective: 90
    sli:
      latency: {metric: rpc_seconds, threshold: 0.5, buckets: [0.1, 0.5]}
  - name: typo
    objective: 90
    sli:
      latency: {metric: rpc_seconds, threshold: 0.25, buckets: [0.1, 0.25]}
`
	e := newTestEngine(t, loadSLOs(t, spec), st)
	e.Evaluate(context.Background(), time.Unix(0, 0).Add(90*time.Minute))
	snap := e.Snapshot()
	require.Equal(t, "rpc-fast", snap[0].ID)
	w, _ := snap[0].Window("30m")
	require.InDelta(t, 0.05, float64(w.ErrorRatio), 1e-9, "5 of 100 requests are slower than 0.5s")
	require.Equal(t, "rpc-typo", snap[1].ID)
	require.Equal(t, "test.yml:8: latency threshold 0.25 is not a bucket bound of rpc_seconds; the data has le=[0.1 0.5 +Inf]", snap[1].Error)
}

func TestNativeHistogramLatencyAndBoolGaugeSLIs(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  rpc_seconds {{schema:-53 sum:0 count:0 custom_values:[0.1 0.25 1] buckets:[0 0 0 0]}}+{{schema:-53 sum:10 count:100 custom_values:[0.1 0.25 1] buckets:[70 20 8 2]}}x120
  probe_success{target="a"} 1x50 0x9 1x60
`)
	t.Cleanup(func() { st.Close() })
	spec := `version: burnrate/v1
service: rpc
slos:
  - name: native
    objective: 95
    sli:
      latency_native: {metric: rpc_seconds, threshold: 0.25}
  - name: probe
    objective: 99
    sli:
      bool_gauge: {query: 'probe_success{target="a"}'}
`
	e := newTestEngine(t, loadSLOs(t, spec), st)
	e.Evaluate(context.Background(), time.Unix(0, 0).Add(119*time.Minute+30*time.Second))
	snap := e.Snapshot()
	require.Equal(t, "rpc-native", snap[0].ID)
	require.Empty(t, snap[0].Error)
	w, _ := snap[0].Window("30m")
	require.InDelta(t, 0.1, float64(w.ErrorRatio), 1e-9, "10 of 100 requests land above the 0.25 bound")
	require.Equal(t, "rpc-probe", snap[1].ID)
	require.Empty(t, snap[1].Error)
	w, _ = snap[1].Window("2h")
	// 119 samples in (−30s, 119m30s]: minutes 0..119 less the first.
	require.InDelta(t, 10.0/120, float64(w.ErrorRatio), 1e-9)
	require.InDelta(t, 120, float64(w.TotalEvents), 1e-9)
	require.False(t, math.IsNaN(float64(snap[1].BudgetRemaining)))
}

// TestBackendErrorsAreReportedPerSLO: a backend that rejects queries marks
// each SLO's status with the reason; the engine keeps evaluating.
func TestBackendErrorsAreReportedPerSLO(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`))
	}))
	defer srv.Close()
	e, err := New(Options{SLOs: loadSLOs(t, onePercentSpec), Querier: RemoteQuerier{URL: srv.URL}})
	require.NoError(t, err)
	e.Evaluate(context.Background(), time.Unix(1e9, 0))
	s := e.Snapshot()[0]
	require.Contains(t, s.Error, "bad_data: parse error: unexpected end of input")
	require.True(t, math.IsNaN(float64(s.BudgetRemaining)))

	srv.Close()
	e.Evaluate(context.Background(), time.Unix(1e9+60, 0))
	require.Contains(t, e.Snapshot()[0].Error, "connection refused")
}
