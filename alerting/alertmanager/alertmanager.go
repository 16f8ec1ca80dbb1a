// Package alertmanager forwards Burnrate's alerts to a real Alertmanager
// through its API (POST /api/v2/alerts), for teams that keep Alertmanager
// as their notification hub.
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/burnrate/burnrate/alerting"
)

// postableAlert is Alertmanager's API v2 alert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Forwarder posts the alerts of each notification to every Alertmanager.
//
// Firing alerts are sent without an end time, so Alertmanager resolves them
// after its resolve_timeout (5m) unless they are sent again: give the route
// of this receiver a repeat_interval below that, as Prometheus re-sends
// every evaluation.
type Forwarder struct {
	urls   []string
	client *http.Client
}

// New returns a forwarder to the Alertmanagers at urls (base URLs such as
// http://127.0.0.1:9093). A nil client gets a 10s timeout.
func New(urls []string, client *http.Client) *Forwarder {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Forwarder{urls: urls, client: client}
}

// Notify posts the notification's alerts.
func (f *Forwarder) Notify(ctx context.Context, n *alerting.Notification) error {
	alerts := make([]postableAlert, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		pa := postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL}
		if a.Status == alerting.StatusResolved {
			pa.EndsAt = a.EndsAt
		}
		alerts = append(alerts, pa)
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("%w: encode alerts: %w", alerting.ErrPermanent, err)
	}
	var errs []error
	for _, u := range f.urls {
		target := strings.TrimSuffix(u, "/") + "/api/v2/alerts"
		if err := alerting.PostJSON(ctx, f.client, target, body, "alertmanager "+u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
