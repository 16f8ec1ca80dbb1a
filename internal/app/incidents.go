package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/webhook"
	"github.com/burnrate/burnrate/incidents"
)

// buildIncidents opens <data_dir>/incidents.db and serves incidents,
// schedules, users, escalation policies and the Slack endpoints. It is
// built before alerting, which notifies it as the "incidents" receiver.
// Slack credentials are alerting's (alerting.slack.*): one Slack app posts
// the pages and receives the button clicks.
func (a *App) buildIncidents() error {
	cfg := a.opts.Incidents
	if cfg.ExternalURL == "" {
		cfg.ExternalURL = a.opts.Alerting.ExternalURL
	}
	if cfg.ExternalURL == "" {
		cfg.ExternalURL = a.URL()
	}
	sl := a.opts.Alerting.Slack
	logger := a.logger.With("component", "incidents")
	var budget incidents.BudgetSource
	if a.collector != nil {
		// The SLO engine writes its consumed budget back into the TSDB.
		budget = incidents.TSDBBudget{Queryable: a.collector.Storage()}
	}
	svc, err := incidents.Open(context.Background(), incidents.Options{
		Budget:     budget,
		Config:     cfg,
		Path:       filepath.Join(a.opts.DataDir, "incidents.db"),
		Slack:      incidents.SlackOptions{Token: sl.Token, SigningSecret: sl.SigningSecret, APIURL: sl.APIURL},
		Logger:     logger,
		Registerer: a.reg,
	})
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	a.incidents = svc
	a.addCloser("incidents store", svc.Close)
	h := svc.Handler()
	for _, p := range incidents.Prefixes {
		a.mount(p, h)
		a.mount(p+"/", h)
	}
	{
		// Escalation runs due steps from the deadlines in SQLite; it stops
		// after the listener has drained, before its store closes.
		a.addRunner("incidents escalation", svc.Run)
	}
	a.addStatic("incidents (restart to change incidents.*)")
	a.addEndpoint("incidents", "/api/v1/incidents")
	a.addEndpoint("on-call", "/api/v1/oncall")
	logger.Info("incidents ready", "tickets", cfg.WithDefaults().Tickets, "on_alert_resolved", cfg.WithDefaults().OnAlertResolved,
		"slack", sl.Token != "", "slack_interactivity", sl.SigningSecret != "")
	return nil
}

// Incidents is the running incidents component (nil before it is built).
func (a *App) Incidents() *incidents.Service { return a.incidents }

// withIncidentsRoute puts a first child route in front of the configured
// ones that sends pages (and tickets, when incidents.tickets is "open") to
// the incidents receiver and lets matching continue, so the routes that
// page people still see every alert.
func withIncidentsRoute(cfg alerting.Config, ic incidents.Config) alerting.Config {
	cfg = cfg.WithDefaults()
	match := `severity="page"`
	if ic.WithDefaults().Tickets == incidents.TicketsOpen {
		match = `severity=~"page|ticket"`
	}
	route := alerting.RouteConfig{
		Receiver:  incidents.ReceiverName,
		Matchers:  []string{match},
		GroupWait: time.Second,
		Continue:  true,
	}
	cfg.Route.Routes = append([]alerting.RouteConfig{route}, cfg.Route.Routes...)
	return cfg
}

// addIncidentWebhook adds the receiver that posts incident events to
// incidents.webhook_urls (when set) to alerting's receivers.
func (a *App) addIncidentWebhook(receivers map[string]alerting.Receiver) {
	if a.incidents != nil && len(a.opts.Incidents.WebhookURLs) > 0 {
		receivers[incidents.WebhookReceiverName] = webhook.New(a.opts.Incidents.WebhookURLs, nil)
	}
}

// sendIncidentEvents hands every incident change to alerting's outbox for
// incidents.webhook_urls, once alerting is built.
func (a *App) sendIncidentEvents(m *alerting.Manager) error {
	if a.incidents == nil || len(a.opts.Incidents.WebhookURLs) == 0 {
		return nil
	}
	if err := a.incidents.SendEvents(context.Background(), m, incidents.WebhookReceiverName); err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	return nil
}
