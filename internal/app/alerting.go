package app

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
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
	}
	var burns alerting.BurnSource
	if a.slo != nil {
		sb := sloBurns{engine: a.slo, baseURL: cfg.ExternalURL}
		if a.collector != nil {
			sb.exemplars = a.collector.DB()
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

// sloBurns adapts the SLO engine's snapshot to the alert rules' input.
type sloBurns struct {
	engine  *sloengine.Engine
	baseURL string
	// exemplars, when set, supplies trace IDs of failing requests.
	exemplars storage.ExemplarQueryable
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
			Windows:         map[time.Duration]alerting.WindowBurn{},
			BudgetRemaining: float64(st.BudgetRemaining),
			Stale:           st.Error != "",
			Error:           st.Error,
			DashboardURL:    strings.TrimSuffix(s.baseURL, "/") + "/api/v1/slos/" + st.ID,
		}
		if d, err := model.ParseDuration(st.Period); err == nil {
			b.Period = time.Duration(d)
		}
		// Event counts stay NaN where the SLI has none (raw error ratios):
		// the rules tell "not counted" from "no traffic" (0) and from "no
		// series" (NoData).
		for _, w := range st.Windows {
			d, err := model.ParseDuration(w.Window)
			if err != nil {
				continue
			}
			b.Windows[time.Duration(d)] = alerting.WindowBurn{BurnRate: float64(w.BurnRate), Errors: float64(w.BadEvents),
				Total: float64(w.TotalEvents), Held: w.LowTraffic, NoData: w.NoData}
		}
		// The period's error ratio is known once one of its slices had
		// traffic.
		b.HadTraffic = st.Error == "" && !math.IsNaN(float64(st.PeriodSLI.ErrorRatio))
		if o := slos[st.ID]; o != nil {
			b.Labels = o.Labels
			if b.Period == 0 {
				b.Period = o.Period
			}
			for _, k := range []string{"runbook_url", "runbook"} {
				if v := o.AlertAnnotations[k]; v != "" {
					b.RunbookURL = v
					break
				}
			}
			if v := o.AlertAnnotations["dashboard_url"]; v != "" {
				b.DashboardURL = v
			}
			b.Tiers = ownTiers(o)
			if w, ok := b.Windows[5*time.Minute]; ok && w.BurnRate > 1 {
				b.ExampleTraceIDs = s.traceIDs(o, st.EvaluatedAt)
			}
		}
		out = append(out, b)
	}
	return out
}

// ownTiers returns the SLO's tiers when its spec tunes them, or nil when
// they are the SLO engine's defaults (what a spec without tiers gets), so
// that alerting.rules (and per-SLO settings there) govern. Comparing with
// the configured tiers instead made any alerting.rules.tiers differing
// from the defaults lose to the defaults the engine filled in.
func ownTiers(o *sloengine.SLO) []alerting.Tier {
	if len(o.Tiers) == 0 {
		return nil
	}
	def := sloengine.DefaultTiers(o.Period)
	same := len(def) == len(o.Tiers)
	for i := 0; same && i < len(def); i++ {
		t := o.Tiers[i]
		same = t.Severity == def[i].Severity && t.LongWindow == def[i].LongWindow && t.ShortWindow == def[i].ShortWindow &&
			math.Abs(t.Factor-def[i].Factor) < 1e-9
	}
	if same {
		return nil
	}
	out := make([]alerting.Tier, 0, len(o.Tiers))
	for _, t := range o.Tiers {
		tier := alerting.Tier{Severity: t.Severity, Long: t.LongWindow, Short: t.ShortWindow, Factor: t.Factor}
		tier.Name = t.Severity + "-" + tier.Window()
		out = append(out, tier)
	}
	return out
}

var windowTmpl = regexp.MustCompile(`\{\{\s*\.window\s*\}\}`)

// traceIDs returns up to five trace IDs from exemplars of the SLO's error
// series in the last 15 minutes, newest first. otelhttp's exemplars sit on
// the histogram's _bucket series, so a _count selector is tried as _bucket
// too.
func (s sloBurns) traceIDs(o *sloengine.SLO, at time.Time) []string {
	if s.exemplars == nil || o.SLI.ErrorQuery == "" {
		return nil
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(windowTmpl.ReplaceAllString(o.SLI.ErrorQuery, "5m"))
	if err != nil {
		return nil
	}
	var sets [][]*labels.Matcher
	for _, sel := range parser.ExtractSelectors(expr) {
		sets = append(sets, sel)
		for i, m := range sel {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual && strings.HasSuffix(m.Value, "_count") {
				bucket := append([]*labels.Matcher(nil), sel...)
				bucket[i] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, strings.TrimSuffix(m.Value, "_count")+"_bucket")
				sets = append(sets, bucket)
			}
		}
	}
	q, err := s.exemplars.ExemplarQuerier(context.Background())
	if err != nil {
		return nil
	}
	res, err := q.Select(at.Add(-15*time.Minute).UnixMilli(), at.UnixMilli(), sets...)
	if err != nil {
		return nil
	}
	type ex struct {
		id string
		ts int64
	}
	var all []ex
	for _, r := range res {
		for _, e := range r.Exemplars {
			if id := e.Labels.Get("trace_id"); id != "" {
				all = append(all, ex{id, e.Ts})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ts > all[j].ts })
	var out []string
	seen := map[string]bool{}
	for _, e := range all {
		if !seen[e.id] && len(out) < 5 {
			seen[e.id] = true
			out = append(out, e.id)
		}
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
