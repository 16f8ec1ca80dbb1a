// Package webhook delivers notifications as Alertmanager's webhook does:
// a JSON POST in the version 4 payload, so existing webhook consumers work
// unchanged. Event notifications (alerting.Manager.Enqueue) are posted as
// their body.
package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/burnrate/burnrate/alerting"
)

// Payload is Alertmanager's webhook body, version "4".
type Payload struct {
	Version string `json:"version"`
	*alerting.Notification
}

// Receiver posts each notification to every URL.
type Receiver struct {
	urls   []string
	client *http.Client
}

// New returns a receiver for urls. A nil client gets a 10s timeout.
func New(urls []string, client *http.Client) *Receiver {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Receiver{urls: urls, client: client}
}

// Notify posts the payload to every URL. Any failure fails the attempt.
// The outbox does not call it: it delivers to each of Integrations on its
// own, so that a failing URL is retried alone.
func (r *Receiver) Notify(ctx context.Context, n *alerting.Notification) error {
	var errs []error
	for _, u := range r.urls {
		errs = append(errs, post(ctx, r.client, u, n))
	}
	return errors.Join(errs...)
}

// Integrations returns one destination per URL, named by a hash of the URL
// (stable when URLs are added, removed or reordered, and keeping any token
// in the URL out of logs and metrics).
func (r *Receiver) Integrations() []alerting.Integration {
	out := make([]alerting.Integration, 0, len(r.urls))
	for _, u := range r.urls {
		sum := sha256.Sum256([]byte(u))
		out = append(out, alerting.Integration{Name: hex.EncodeToString(sum[:6]), Receiver: endpoint{url: u, client: r.client}})
	}
	return out
}

// endpoint is one URL of a webhook receiver.
type endpoint struct {
	url    string
	client *http.Client
}

func (e endpoint) Notify(ctx context.Context, n *alerting.Notification) error {
	return post(ctx, e.client, e.url, n)
}

func post(ctx context.Context, client *http.Client, u string, n *alerting.Notification) error {
	if n.Event != nil {
		// An event (Manager.Enqueue) is posted as its sender wrote it.
		return alerting.PostJSON(ctx, client, u, n.Event.Body, "webhook "+redact(u))
	}
	body, err := json.Marshal(Payload{Version: "4", Notification: n})
	if err != nil {
		return fmt.Errorf("%w: encode webhook payload: %w", alerting.ErrPermanent, err)
	}
	return alerting.PostJSON(ctx, client, u, body, "webhook "+redact(u))
}

// redact drops the user info and query of a URL for error messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}
