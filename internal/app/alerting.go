package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/prometheus/storage"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/alertmanager"
	"github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/alerting/webhook"
	"github.com/burnrate/burnrate/incidents"
	"github.com/burnrate/burnrate/sloengine"
)

// buildAlerting opens <data_dir>/alerting.db, builds the receivers the
// configuration asks for (the log receiver always; Slack with a token;
// webhooks and Alertmanagers with URLs) and serves Alertmanager's API v2
// under /api/v2/, so Prometheus and amtool can point at Burnrate.
func (a *App) buildAlerting() error {
	cfg := a.opts.Alerting.WithDefaults()
	if cfg.ExternalURL == "" {
		cfg.ExternalURL = a.URL()
	}
	ctx := context.Background()
	store, err := alerting.OpenStore(ctx, filepath.Join(a.opts.DataDir, "alerting.db"))
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	a.addCloser("alerting store", store.Close)

	receivers := map[string]alerting.Receiver{}
	if a.incidents != nil {
		receivers[incidents.ReceiverName] = a.incidents
		receivers[incidents.PagerReceiverName] = a.incidents.Pager()
		cfg = withIncidentsRoute(cfg, a.opts.Incidents)
	}
	if cfg.Slack.Token != "" {
		receivers[alerting.ReceiverSlack] = slack.New(cfg.Slack, store.ReceiverState(alerting.ReceiverSlack), nil).
			WithLogger(a.logger.With("component", "alerting", "receiver", alerting.ReceiverSlack))
	}
	if len(cfg.Webhook.URLs) > 0 {
		receivers[alerting.ReceiverWebhook] = webhook.New(cfg.Webhook.URLs, nil)
	}
	a.addIncidentWebhook(receivers)
	if len(cfg.Alertmanager.URLs) > 0 {
		fwd, err := alertmanager.New(alertmanager.Options{
			URLs: cfg.Alertmanager.URLs, ResendDelay: cfg.Alertmanager.ResendDelay, EvaluationInterval: cfg.EvaluationInterval,
			ForgetAfter: 2 * longestRepeat(cfg.Route), State: store.ReceiverState(alerting.ReceiverAlertmanager),
			Logger: a.logger.With("component", "alerting", "receiver", alerting.ReceiverAlertmanager),
		})
		if err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		receivers[alerting.ReceiverAlertmanager] = fwd
		{
			// The forwarder re-sends firing alerts to Alertmanager; it is
			// run here, once, beside the Manager that hands it notifications.
			a.addRunner("alertmanager forwarder", fwd.Run)
		}
	}
	var burns alerting.BurnSource
	if a.slo != nil {
		sb := sloBurns{engine: a.slo, baseURL: cfg.ExternalURL}
		if a.collector != nil {
			sb.traceIDs = a.collector.TraceIDs
		}
		burns = sb
	}
	logger := a.logger.With("component", "alerting")
	m, err := alerting.New(ctx, alerting.Options{
		Config:     cfg,
		Store:      store,
		Receivers:  receivers,
		Burns:      burns,
		Appendable: a.collectorStorage(),
		Logger:     logger,
		Registerer: a.reg,
	})
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	a.alerting = m
	if a.slo != nil {
		// The SLO rules run right after each SLO evaluation, besides their
		// own interval; this stops with the other engines.
		a.addRunner("alert rules on SLO evaluation", a.runRulesOnEvaluation)
	}
	if a.incidents != nil {
		// Escalation pages and handoff notices go out through the one
		// delivery queue, alerting's outbox.
		a.incidents.DeliverThrough(m)
	}
	if err := a.sendIncidentEvents(m); err != nil {
		return err
	}
	a.mount("/api/v2/", m.Handler())
	{
		// Alerting flushes groups and delivers the outbox; it stops after
		// the listener has drained, and its store closes after it returns.
		a.addRunner("alerting", m.Run)
	}
	a.addStatic("alerting (restart to change alerting.*)")
	a.addEndpoint("alerts", "/api/v2/alerts")
	logger.Info("alerting ready", "default_receiver", cfg.DefaultReceiver(), "slo_rules", burns != nil)
	return nil
}

// longestRepeat is the longest repeat_interval of the routing tree: a
// firing group is notified again at least that often.
func longestRepeat(r alerting.RouteConfig) time.Duration {
	d := r.RepeatInterval
	for _, c := range r.Routes {
		d = max(d, longestRepeat(c))
	}
	return d
}

// Alerting is the running alerting component (nil before New succeeds).
func (a *App) Alerting() *alerting.Manager { return a.alerting }

// sloBurns maps the SLO engine's statuses, tiers and firing decisions
// included, to the alert rules' input, adding what the spec says about
// alerts (labels, runbook, dashboard) and example traces.
type sloBurns struct {
	engine  *sloengine.Engine
	baseURL string
	// traceIDs, when set, finds trace IDs of failing requests in the
	// exemplars of the SLI's error series (collector.TraceIDs).
	traceIDs func(ctx context.Context, query string, from, to time.Time, n int) ([]string, error)
}

func (s sloBurns) Burns() []alerting.SLOBurn {
	slos := map[string]*sloengine.SLO{}
	for _, o := range s.engine.SLOs() {
		slos[o.ID] = o
	}
	snap := s.engine.Snapshot()
	out := make([]alerting.SLOBurn, 0, len(snap))
	for _, st := range snap {
		b := alerting.SLOBurn{
			ID: st.ID, Service: st.Service, Name: st.Name, Objective: st.Objective,
			Period: st.PeriodLength, Windows: map[time.Duration]alerting.WindowBurn{}, Tiers: st.Tiers,
			BudgetRemaining: float64(st.BudgetRemaining),
			EvaluatedAt:     st.EvaluatedAt,
			Stale:           st.Error != "",
			Error:           st.Error,
			DashboardURL:    strings.TrimSuffix(s.baseURL, "/") + "/api/v1/slos/" + st.ID,
		}
		// Event counts stay NaN where the SLI has none (raw error ratios):
		// the rules tell "not counted" from "no traffic" (0) and from "no
		// series" (NoData).
		for _, w := range st.Windows {
			b.Windows[w.Length] = alerting.WindowBurn{BurnRate: float64(w.BurnRate), Errors: float64(w.BadEvents),
				Total: float64(w.TotalEvents), NoData: w.NoData}
		}
		b.HadTraffic = st.HadTraffic()
		if o := slos[st.ID]; o != nil {
			b.Labels = o.Labels
			for _, k := range []string{"runbook_url", "runbook"} {
				if v := o.AlertAnnotations[k]; v != "" {
					b.RunbookURL = v
					break
				}
			}
			if v := o.AlertAnnotations["dashboard_url"]; v != "" {
				b.DashboardURL = v
			}
			if w, ok := b.Windows[5*time.Minute]; ok && w.BurnRate > 1 && s.traceIDs != nil && o.SLI.ErrorQuery != "" {
				// Best effort: an annotation, not a reason to hold the alert.
				b.ExampleTraceIDs, _ = s.traceIDs(context.Background(), o.SLI.ErrorQuery, st.EvaluatedAt.Add(-15*time.Minute), st.EvaluatedAt, 5)
			}
		}
		out = append(out, b)
	}
	return out
}

// collectorStorage is the embedded TSDB, or nil when no collector runs.
func (a *App) collectorStorage() storage.Appendable {
	if a.collector == nil {
		return nil
	}
	return a.collector.Storage()
}
