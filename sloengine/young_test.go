package sloengine

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/require"
)

// TestYoungPeriodSpendsOnlyWhatWasSpent: 20 minutes at 1% errors on a 30d
// 99.9% SLO. Sloth's period ratio (1%) against the whole budget reads as
// -900% left; the budget actually spent is the 20 minutes' bad events over
// the budget of the events 30 days at that traffic would hold:
// 0.01 x (20m / 30d) / 0.001 = 0.463%.
func TestYoungPeriodSpendsOnlyWhatWasSpent(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  requests_total 0+600x20
  errors_total   0+6x20
`)
	t.Cleanup(func() { st.Close() })
	e := newTestEngine(t, loadSLOs(t, onePercentSpec), st)
	ctx := context.Background()

	// Before the first evaluation the API says the budget is unknown.
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	var list struct {
		Data []map[string]any `json:"data"`
	}
	getJSON(t, srv.URL+"/api/v1/slos", http.StatusOK, &list)
	require.Len(t, list.Data, 1)
	require.Equal(t, true, list.Data[0]["insufficient_data"])
	require.Nil(t, list.Data[0]["period_coverage"])
	require.Nil(t, list.Data[0]["budget_remaining"])

	// Three minutes in, no 5-minute slice is complete: too little data,
	// shown as unknown, never as spent.
	e.Evaluate(ctx, time.Unix(0, 0).Add(3*time.Minute))
	s := e.Snapshot()[0]
	require.True(t, s.InsufficientData)
	require.Equal(t, "null", mustJSON(t, s.BudgetRemaining))
	require.Equal(t, "null", mustJSON(t, s.BudgetConsumed))
	for _, f := range s.Forecasts {
		require.True(t, math.IsNaN(float64(f.Seconds)), "no exhaustion forecast without data (%s)", f.Window)
	}

	at := time.Unix(0, 0).Add(20 * time.Minute)
	e.Evaluate(ctx, at)
	s = e.Snapshot()[0]
	require.Empty(t, s.Error)
	require.False(t, s.InsufficientData)
	require.InDelta(t, 0.01, float64(s.PeriodSLI.ErrorRatio), 1e-9)
	coverage := (20 * time.Minute).Seconds() / (30 * 24 * time.Hour).Seconds()
	requireClose(t, coverage, float64(s.PeriodCoverage), "coverage")
	requireClose(t, 0.01*coverage/0.001, float64(s.BudgetConsumed), "consumed")
	require.InDelta(t, 0.00463, float64(s.BudgetConsumed), 0.00001)
	require.Greater(t, float64(s.BudgetRemaining), 0.99)
	// Forecasts use the honest remaining budget: at burn rate 10 the
	// remaining 99.5% lasts 99.5% x 30d / 10.
	f1h := s.Forecasts[0]
	require.Equal(t, "1h", f1h.Window)
	requireClose(t, (1-0.01*coverage/0.001)*30*86400/float64(f1h.BurnRate), float64(f1h.Seconds), "1h forecast")

	v, ok, err := scalar(ctx, LocalQuerier{Engine: NewPromQLEngine(), Queryable: st}, `slo:period_coverage:ratio{sloth_id="api-availability"}`, at)
	require.NoError(t, err)
	require.True(t, ok)
	requireClose(t, coverage, v, "written-back coverage")
}
