package app

import (
	"errors"
	"fmt"

	"github.com/burnrate/burnrate/sloengine"
)

// buildSLOEngine loads the SLO files (plus the demo platform's SLOs when the
// demo runs), and evaluates them against the embedded TSDB or an external
// Prometheus, writing slo:* series back into the embedded TSDB either way so
// Grafana dashboards and the query API see them.
func (a *App) buildSLOEngine() error {
	slos, err := sloengine.LoadPaths(a.opts.Slos)
	if err != nil {
		return fmt.Errorf("slos: %w", err)
	}
	if a.opts.Demo.Enabled {
		ex, err := sloengine.Examples()
		if err != nil {
			return fmt.Errorf("embedded demo SLOs: %w", err)
		}
		seen := map[string]bool{}
		for _, s := range slos {
			seen[s.ID] = true
		}
		for _, s := range ex {
			if !seen[s.ID] { // a user's file with the same ID wins
				slos = append(slos, s)
			}
		}
	}
	if a.collector == nil {
		return errors.New("slo engine: the collector (embedded TSDB) is not built")
	}
	var q sloengine.Querier = sloengine.LocalQuerier{Engine: a.collector.QueryEngine(), Queryable: a.collector.Storage()}
	queryable := a.collector.Storage() // incremental evaluation from the TSDB
	if a.opts.Metrics.Backend == "prometheus" {
		q, queryable = sloengine.RemoteQuerier{URL: a.opts.Metrics.URL}, nil
	}
	e, err := sloengine.New(sloengine.Options{
		Config:     a.opts.SLO,
		SLOs:       slos,
		Querier:    q,
		Appendable: a.collector.Storage(),
		Queryable:  queryable,
		Logger:     a.logger.With("component", "sloengine"),
		Registerer: a.reg,
	})
	if err != nil {
		return fmt.Errorf("slo engine: %w", err)
	}
	a.slo = e
	a.mount("/api/v1/slos", e.Handler())
	a.mount("/api/v1/slos/", e.Handler())
	{
		// The SLO engine queries and appends to the TSDB, so it stops before
		// the collector's storage closes (closers run after all actors).
		a.addRunner("sloengine", e.Run)
	}
	a.addStatic("sloengine (restart to change slos, metrics.*, slo.*)")
	a.addEndpoint("slos", "/api/v1/slos")
	a.logger.Info("SLOs loaded", "count", len(slos), "backend", a.opts.Metrics.Backend)
	return nil
}

// SLOEngine is the running SLO engine (nil before New succeeds).
func (a *App) SLOEngine() *sloengine.Engine { return a.slo }
