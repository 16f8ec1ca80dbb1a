package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/burnrate/burnrate/collector"
	"github.com/burnrate/burnrate/sloengine"
)

// buildSLOEngine loads the SLO files (plus the demo platform's SLOs when the
// demo runs), and evaluates them against the embedded TSDB or an external
// Prometheus, writing slo:* series back into the embedded TSDB either way so
// Grafana dashboards and the query API see them.
func (a *App) buildSLOEngine() error {
	slos, err := a.loadSLOs()
	if err != nil {
		return err
	}
	if a.opts.Metrics.Backend != "prometheus" && !a.opts.SLO.AllowShortRetention {
		retention, _ := a.tsdbRetention()
		if err := sloengine.CheckRetention(slos, retention); err != nil {
			return fmt.Errorf("slos: %w", err)
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
		Config:           a.opts.SLO,
		SLOs:             slos,
		Querier:          q,
		Appendable:       a.collector.Storage(),
		Queryable:        queryable,
		Logger:           a.logger.With("component", "sloengine"),
		Registerer:       a.reg,
		OutOfOrderWindow: a.opts.Collector.TSDB.OutOfOrderWindow,
		StateDir:         filepath.Join(a.opts.DataDir, "sloengine"),
		OnEvaluated: func([]sloengine.Status) {
			a.rulesDue()
			if src := a.gateSrc.Load(); src != nil {
				src.invalidate()
			}
		},
		// alerting.rules.tiers replace the default tiers, so the tiers the
		// engine evaluates (and the API shows) are the tiers that page.
		Tiers: a.opts.Alerting.Rules.TierOverrides(),
	})
	if err != nil {
		return fmt.Errorf("slo engine: %w", err)
	}
	a.slo = e
	if a.opts.Metrics.Backend != "prometheus" {
		// Evaluate an SLO as samples for its series arrive, not only on
		// the ticker: a page goes out seconds after the data shows a burn.
		a.collector.ObserveWrites(e.SeriesAppended)
	}
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

// loadSLOs reads the SLO files, plus the demo platform's SLOs when the demo
// runs (a user's file with the same ID wins).
func (a *App) loadSLOs() ([]*sloengine.SLO, error) {
	slos, err := sloengine.LoadPaths(a.opts.Slos)
	if err != nil {
		return nil, fmt.Errorf("slos: %w", err)
	}
	if a.opts.Demo.Enabled {
		ex, err := sloengine.Examples()
		if err != nil {
			return nil, fmt.Errorf("embedded demo SLOs: %w", err)
		}
		seen := map[string]bool{}
		for _, s := range slos {
			seen[s.ID] = true
		}
		for _, s := range ex {
			if !seen[s.ID] {
				slos = append(slos, s)
			}
		}
	}
	return slos, nil
}

// tsdbRetention is the TSDB retention to open the collector with: the
// configured one, except that the default (15d) grows to cover the longest
// loaded SLO period plus 3 days. raised reports that it grew.
func (a *App) tsdbRetention() (retention time.Duration, raised bool) {
	retention = a.opts.Collector.WithDefaults().TSDB.Retention
	if retention != collector.DefaultConfig().TSDB.Retention {
		return retention, false
	}
	slos, err := a.loadSLOs()
	if err != nil {
		return retention, false // buildSLOEngine reports it
	}
	if need := sloengine.RequiredRetention(slos); need > retention {
		return need, true
	}
	return retention, false
}

// rulesDue asks for the alert rules to run now, after an SLO evaluation,
// without making the engine wait for them.
func (a *App) rulesDue() {
	select {
	case a.rulesNow <- struct{}{}:
	default:
	}
}

// runRulesOnEvaluation runs the alert rules each time the SLO engine has
// evaluated, so a burn pages as soon as the engine sees it.
func (a *App) runRulesOnEvaluation(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.rulesNow:
			if err := a.alerting.Evaluate(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("alert rules after an SLO evaluation", "err", err)
			}
		}
	}
}
