// Package webhook delivers notifications as Alertmanager's webhook does:
// a JSON POST in the version 4 payload, so existing webhook consumers work
// unchanged.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// Notify posts the payload to every URL. Any failure fails the attempt, and
// the outbox retries it: delivery is at least once, as in Alertmanager.
func (r *Receiver) Notify(ctx context.Context, n *alerting.Notification) error {
	body, err := json.Marshal(Payload{Version: "4", Notification: n})
	if err != nil {
		return fmt.Errorf("%w: encode webhook payload: %w", alerting.ErrPermanent, err)
	}
	var errs []error
	for _, u := range r.urls {
		if err := alerting.PostJSON(ctx, r.client, u, body, "webhook "+u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
