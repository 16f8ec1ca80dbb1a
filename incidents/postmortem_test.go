package incidents_test

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/incidents"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run `go test ./incidents -update`")
	require.Equal(t, string(want), string(got), "output differs from %s; if intended, rerun with -update", path)
}

// budgetHistory is the SLO engine's write-back of the consumed budget of
// api-availability in a real TSDB: 1.2% when the impact starts (09:56), 5%
// at resolution (10:11:30).
func budgetHistory(t *testing.T) *teststorage.TestStorage {
	st := teststorage.New(t)
	app := st.Appender(context.Background())
	ls := labels.FromStrings("__name__", "slo:period_error_budget_consumed:ratio", "sloth_id", "api-availability", "sloth_service", "api")
	other := labels.FromStrings("__name__", "slo:period_error_budget_consumed:ratio", "sloth_id", "cache-latency")
	for _, s := range []struct {
		at time.Time
		v  float64
	}{
		{t0.Add(-10 * time.Minute), 0.010},
		{t0.Add(-4*time.Minute - 5*time.Second), 0.012},
		{t0.Add(5 * time.Minute), 0.031},
		{t0.Add(11*time.Minute + 25*time.Second), 0.050},
	} {
		_, err := app.Append(0, ls, s.at.UnixMilli(), s.v)
		require.NoError(t, err)
		_, err = app.Append(0, other, s.at.UnixMilli(), 0.9)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	return st
}

func TestBudgetConsumedIsReadFromTheSLOEnginesHistory(t *testing.T) {
	b := incidents.TSDBBudget{Queryable: budgetHistory(t)}
	ctx := context.Background()
	v, ok := b.ConsumedAt(ctx, "api-availability", t0.Add(-4*time.Minute))
	require.True(t, ok)
	require.InDelta(t, 0.012, v, 1e-12, "the last evaluation at or before the instant")
	v, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(11*time.Minute+30*time.Second))
	require.True(t, ok)
	require.InDelta(t, 0.05, v, 1e-12)
	_, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(-11*time.Minute))
	require.False(t, ok, "nothing before the first evaluation")
	_, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(20*time.Minute))
	require.False(t, ok, "an evaluation more than five minutes old does not count")
	_, ok = b.ConsumedAt(ctx, "checkout", t0)
	require.False(t, ok, "an SLO without history")
}

func TestPostmortemDraftOfAWorkedIncident(t *testing.T) {
	cases := []struct {
		name, golden string
		budget       func(t *testing.T) incidents.BudgetSource
	}{
		{"without SLO history the budget is left to fill in", "postmortem.golden.md", func(*testing.T) incidents.BudgetSource { return nil }},
		{"with the SLO engine's history the budget consumed is computed", "postmortem-budget.golden.md", func(t *testing.T) incidents.BudgetSource {
			return incidents.TSDBBudget{Queryable: budgetHistory(t)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *incidents.Options) { o.Budget = tc.budget(t) })
			workIncident(t, e)
			md, err := e.svc.Postmortem(context.Background(), 1)
			require.NoError(t, err)
			golden(t, tc.golden, md)

			// The API serves the same draft.
			resp, err := e.srv.Client().Get(e.srv.URL + "/api/v1/incidents/1/postmortem")
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, "text/markdown; charset=utf-8", resp.Header.Get("Content-Type"))
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, string(md), string(body))
		})
	}
}

// workIncident runs incident 1 from page to resolution on the pinned clock.
func workIncident(t *testing.T, e *env) {
	ctx := context.Background()
	require.NoError(t, e.svc.Notify(ctx, pageNotification(1, "g1", alerting.StatusFiring)))
	e.clock.Advance(90 * time.Second)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "ann"}, nil))
	e.clock.Advance(time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/assign", map[string]string{"by": "ann", "user": "ann", "role": "commander"}, nil))
	require.Equal(t, 204, e.call(t, "POST", "/api/v1/incidents/events", map[string]string{"service": "api", "kind": "deploy", "text": "api v2.4.0 rolled out 10:02"}, nil))
	e.clock.Advance(3 * time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/note", map[string]string{"by": "ann", "text": "errors | timeouts from the store shard 3"}, nil))
	e.clock.Advance(5 * time.Minute)
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusResolved)))
	e.clock.Advance(time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/resolve", map[string]string{"by": "ann", "text": "rolled back to v2.3.9"}, nil))
}
