package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/sloengine"
)

// gateOnTSDB is the gate as the app wires it (SLO engine, alert rules,
// gate source) over a real TSDB, with the clock pinned.
type gateOnTSDB struct {
	db     *tsdb.DB
	clk    *pinned
	engine *sloengine.Engine
	alerts *alerting.Manager
	gate   *deploy.Gate
	srv    *httptest.Server
	src    *gateSource
	// incidents is what the open-incident lookup answers.
	incidents func() (map[string][]deploy.OpenIncident, error)
}

func newGateOnTSDB(t *testing.T, spec string, policies ...deploy.Policy) *gateOnTSDB {
	t.Helper()
	ctx := context.Background()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	l := sloengine.NewLoader()
	l.Add("checkout.yml", []byte(spec))
	slos, err := l.Result()
	require.NoError(t, err)
	g := &gateOnTSDB{db: db, clk: &pinned{}}
	g.incidents = func() (map[string][]deploy.OpenIncident, error) { return nil, nil }
	var src *gateSource
	// As the app wires it: each evaluation rebuilds the gate's index (here
	// at once, where the app's runner does it moments later).
	g.engine, err = sloengine.New(sloengine.Options{SLOs: slos, Queryable: db, Now: g.clk.now,
		OnEvaluated: func([]sloengine.Status) { src.rebuild() },
		Querier:     sloengine.LocalQuerier{Engine: sloengine.NewPromQLEngine(), Queryable: db}})
	require.NoError(t, err)
	cfg := alerting.DefaultConfig().WithDefaults()
	cfg.Route.Receiver = alerting.ReceiverLog
	store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	g.alerts, err = alerting.New(ctx, alerting.Options{Config: cfg, Store: store, Now: g.clk.now,
		Burns: sloBurns{engine: g.engine, baseURL: "http://127.0.0.1:8080"}, Appendable: db, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	dstore, err := deploy.OpenStore(ctx, filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = dstore.Close() })
	src = newGateSource(g.engine, g.alerts, func() (map[string][]deploy.OpenIncident, error) { return g.incidents() })
	g.src = src
	g.gate, err = deploy.New(deploy.Options{Policies: deploy.NewPolicies(policies...), Store: dstore, Now: g.clk.now,
		Source: src, History: sloHistory{engine: g.engine},
		Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	g.srv = httptest.NewServer(g.gate.Handler())
	t.Cleanup(g.srv.Close)
	return g
}

// evaluate runs the engine and the alert rules at each instant.
func (g *gateOnTSDB) evaluate(t *testing.T, at ...time.Time) {
	t.Helper()
	for _, a := range at {
		g.clk.set(a)
		g.engine.Evaluate(context.Background(), a)
		require.NoError(t, g.alerts.Evaluate(context.Background()))
	}
}

func (g *gateOnTSDB) firing(alertname string) bool {
	for ls, st := range g.alerts.RuleStates() {
		if labelOf(ls, "alertname") == alertname && st == alerting.StateFiring {
			return true
		}
	}
	return false
}

func (g *gateOnTSDB) call(t *testing.T, method, path, body string) (int, deploy.Decision) {
	t.Helper()
	req, err := http.NewRequest(method, g.srv.URL+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var d deploy.Decision
	require.NoError(t, json.Unmarshal(raw, &d), string(raw))
	return resp.StatusCode, d
}

// TestTheGateFailsClosedWhenTheSLIsDataStops writes checkout's counters
// into a real TSDB until the exporter disappears, then asks the gate
// fifteen minutes later, past data_absent_for: SLODataAbsent fires, and
// the gate answers fail naming the missing data, Flagger's status hook
// gets 403 and its rollback hook does not roll back. Before the data
// stops the same gate passes.
func TestTheGateFailsClosedWhenTheSLIsDataStops(t *testing.T) {
	t1 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	stop := t1.Add(-15 * time.Minute)
	strict := deploy.DefaultPolicy()
	strict.Service = "checkout"
	strict.MaxBurnRate = map[time.Duration]float64{5 * time.Minute: 14.4, time.Hour: 6}

	for _, p := range []deploy.Policy{deploy.DefaultPolicy(), strict} {
		t.Run("policy with burn-rate windows "+strings.Join(windowNames(p), ","), func(t *testing.T) {
			g := newGateOnTSDB(t, eventsSpec, p)
			writeCounters(t, g.db, t1.Add(-3*time.Hour), t1, func(at time.Time) (float64, float64, bool) {
				return 10, 0.001, at.Before(stop) // the exporter is gone from stop on
			})
			flagger := `{"name":"checkout","namespace":"shop","phase":"Progressing","checksum":"6d4b9c","metadata":{"service":"checkout"}}`

			g.evaluate(t, stop.Add(-time.Minute))
			code, d := g.call(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, deploy.Pass, d.Decision, "with data flowing: %v", d.Reasons)
			// The rollback hook sees the canary first while all is well.
			code, _ = g.call(t, http.MethodPost, "/api/v1/gate?mode=rollback", flagger)
			require.Equal(t, http.StatusForbidden, code)

			g.evaluate(t, stop.Add(5*time.Minute), stop.Add(10*time.Minute), t1)
			require.True(t, g.firing(alerting.AlertDataAbsent), "SLODataAbsent fires")

			code, d = g.call(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
			require.Equal(t, http.StatusOK, code, "Argo reads the decision from a 200")
			require.Equal(t, deploy.Fail, d.Decision, "checks: %+v", d.Checks)
			require.Contains(t, strings.Join(d.Reasons, "\n"), "SLO checkout-requests-availability has no SLI data: its series are absent from the last 5m")
			for _, c := range d.Checks {
				if c.Rule == deploy.RuleBurnRate || c.Rule == deploy.RuleData {
					require.NotEqual(t, deploy.Pass, c.Outcome, "no burn-rate or data rule passes on data that is not there: %+v", c)
				}
			}

			code, _ = g.call(t, http.MethodPost, "/api/v1/gate?mode=status", flagger)
			require.Equal(t, http.StatusForbidden, code, "Flagger's confirm hooks halt")
			code, d = g.call(t, http.MethodPost, "/api/v1/gate?mode=rollback", flagger)
			require.Equal(t, http.StatusForbidden, code, "Flagger's rollback hook must not roll back on missing data: %v", d.Reasons)
		})
	}
}

func windowNames(p deploy.Policy) []string {
	var out []string
	for w := range p.MaxBurnRate {
		out = append(out, w.String())
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// TestTheGateFailsClosedWhenTheIncidentLookupFails: a freeze on open
// incidents that cannot be looked up is no pass.
func TestTheGateFailsClosedWhenTheIncidentLookupFails(t *testing.T) {
	t1 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	g := newGateOnTSDB(t, eventsSpec)
	writeCounters(t, g.db, t1.Add(-3*time.Hour), t1, func(time.Time) (float64, float64, bool) { return 10, 0.001, true })
	g.evaluate(t, t1)
	_, d := g.call(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
	require.Equal(t, deploy.Pass, d.Decision, "%v", d.Reasons)

	g.incidents = func() (map[string][]deploy.OpenIncident, error) {
		return nil, errLookup
	}
	g.src.rebuild() // as the app's runner does every second
	_, d = g.call(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
	require.Equal(t, deploy.Fail, d.Decision)
	require.Contains(t, d.Reasons, "the open incidents of checkout are unknown: incidents: database is locked")
}

var errLookup = &lookupError{}

type lookupError struct{}

func (*lookupError) Error() string { return "incidents: database is locked" }
