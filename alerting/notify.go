package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/burnrate/burnrate/internal/retry"
)

// Notification is one message to one receiver about one alert group. Its
// JSON form is the body of Alertmanager's webhook, version 4.
type Notification struct {
	// ID is the outbox row; receivers use it to recognise a re-delivery.
	ID int64 `json:"-"`
	// Integration names the destination of this delivery: the receiver's
	// name, or "<receiver>/<name>" for one of the Integrations of a
	// receiver that has several.
	Integration       string            `json:"-"`
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []NotifiedAlert   `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	// Attempt counts delivery attempts, this one included (1 the first
	// time); the outbox sets it before each call to Notify.
	Attempt int `json:"-"`
	// CreatedAt is when the notification was written to the outbox.
	CreatedAt time.Time `json:"createdAt"`
	// Event, when set, makes this an event notification (Manager.Enqueue)
	// without alerts: receivers that post events post its Body.
	Event *Event `json:"event,omitempty"`
}

// NotifiedAlert is one alert of a notification.
type NotifiedAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert statuses in notifications.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Firing returns the alerts of n that are firing.
func (n *Notification) Firing() []NotifiedAlert {
	var out []NotifiedAlert
	for _, a := range n.Alerts {
		if a.Status == StatusFiring {
			out = append(out, a)
		}
	}
	return out
}

// Receiver delivers notifications. Notify must be safe to call again with
// the same notification (same ID) after an error.
type Receiver interface {
	Notify(ctx context.Context, n *Notification) error
}

// integration is the destination of n, its receiver when not set.
func (n *Notification) integration() string {
	if n.Integration != "" {
		return n.Integration
	}
	return n.Receiver
}

// Integration is one destination of a receiver.
type Integration struct {
	// Name tells the destination apart from the receiver's others and must
	// stay the same across restarts and configuration edits (a hash of a
	// URL, not its position in a list): the notification log is kept by it.
	Name     string
	Receiver Receiver
}

// Fanout is implemented by receivers made of independent destinations, such
// as the URLs of the webhook receiver. Each destination then gets its own
// outbox row, retries and notification log entry, as each integration of an
// Alertmanager receiver does: a failing URL never makes a healthy one
// receive the notification twice.
type Fanout interface {
	Integrations() []Integration
}

// Reconciler is implemented by receivers that can tell whether a delivery
// interrupted by a crash arrived, so that the outbox neither loses nor
// duplicates it. Receivers without one get the notification again (at
// least once, as Alertmanager's receivers do).
type Reconciler interface {
	Delivered(ctx context.Context, n *Notification) (bool, error)
}

// RetryAfterError asks the outbox to wait at least After before the next
// attempt (HTTP 429 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// ErrPermanent marks a failure retrying cannot fix (the receiver rejected
// the request as malformed). The notification is kept, marked failed, and
// not taken as sent: the group's next flush, a group_interval later, builds
// it again.
var ErrPermanent = errors.New("permanent delivery failure")

// HTTPError classifies an HTTP answer of a receiver endpoint: nil for 2xx,
// a RetryAfterError for 429 and 503 with Retry-After, ErrPermanent for other
// 4xx (except 408), a plain (retried) error otherwise.
func HTTPError(resp *http.Response, what string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err := fmt.Errorf("%s: unexpected status %s", what, resp.Status)
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After")); ok &&
		(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		return &RetryAfterError{After: d, Err: err}
	}
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return err
}

// PostJSON posts body as JSON to url, one attempt, and classifies the answer
// as HTTPError does, adding the start of the answer's body to the error.
// what names the endpoint in errors ("webhook http://...").
func PostJSON(ctx context.Context, client *http.Client, url string, body []byte, what string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Burnrate")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	if err := HTTPError(resp, what); err != nil {
		if m := strings.TrimSpace(string(msg)); m != "" {
			return fmt.Errorf("%w: %s", err, m)
		}
		return err
	}
	return nil
}

// ParseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func ParseRetryAfter(v string) (time.Duration, bool) { return retry.After(v, time.Now()) }

// LogReceiver writes notifications to the log. It is the default receiver
// when no Slack token is configured, so alerts are visible from the start.
type LogReceiver struct {
	Logger *slog.Logger
}

// Notify logs one line per alert.
func (r LogReceiver) Notify(_ context.Context, n *Notification) error {
	for _, a := range n.Alerts {
		r.Logger.Warn("alert "+a.Status,
			"alertname", a.Labels["alertname"], "severity", a.Labels["severity"], "slo", a.Labels["slo"],
			"summary", a.Annotations["summary"], "group", n.GroupKey, "fingerprint", a.Fingerprint, "starts_at", a.StartsAt)
	}
	return nil
}
