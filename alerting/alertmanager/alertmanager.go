// Package alertmanager forwards Burnrate's alerts to a real Alertmanager
// through its API (POST /api/v2/alerts), for teams that keep Alertmanager
// as their notification hub.
//
// Alertmanager resolves an alert whose end time passes, so a sender must
// keep re-sending what still fires. The forwarder does what Prometheus
// does: every firing alert it was given goes out again every ResendDelay
// (1m) with an end time 4 × max(ResendDelay, EvaluationInterval) ahead, so
// it stays active in Alertmanager however long Burnrate's own group and
// repeat intervals are, and lapses a few minutes after Burnrate stops.
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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

// DefaultResendDelay is Prometheus's --rules.alert.resend-delay.
const DefaultResendDelay = time.Minute

// Options configure a Forwarder.
type Options struct {
	// URLs are the Alertmanagers' base URLs, such as http://127.0.0.1:9093.
	URLs []string
	// Client defaults to one with a 10s timeout.
	Client *http.Client
	// ResendDelay is how often firing alerts are sent again (default 1m).
	ResendDelay time.Duration
	// EvaluationInterval is Burnrate's rule evaluation interval: end times
	// are 4 × max(ResendDelay, EvaluationInterval) ahead, as Prometheus's.
	EvaluationInterval time.Duration
	// ForgetAfter drops a group's firing alerts from the re-sends when no
	// notification of the group came for this long (a group muted in
	// Burnrate gets none); 0 keeps them until they resolve. Give it more
	// than the routes' longest repeat_interval.
	ForgetAfter time.Duration
	// State, when set, keeps the firing alerts across a restart.
	State  alerting.ReceiverState
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if len(o.URLs) == 0 {
		return errors.New("alertmanager: at least one URL is required")
	}
	for _, u := range o.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("alertmanager: url %q: want an absolute http(s) URL", u)
		}
	}
	if o.ResendDelay < 0 || o.EvaluationInterval < 0 || o.ForgetAfter < 0 {
		return errors.New("alertmanager: resend_delay, evaluation interval and forget_after must not be negative")
	}
	return nil
}

// Forwarder posts the alerts of each notification to every Alertmanager
// and re-sends the firing ones until they resolve.
type Forwarder struct {
	opts Options

	mu sync.Mutex
	// firing holds, per group key, the group's firing alerts as last
	// notified; Run re-sends them.
	firing map[string]*group
	loaded bool
	// running makes Run run once.
	running atomic.Bool
}

// group is the firing part of one group's last notification.
type group struct {
	Alerts []alerting.NotifiedAlert `json:"alerts"`
	At     time.Time                `json:"at"`
}

// stateKey is the receiver-state key of the firing alerts.
const stateKey = "firing"

// New returns a forwarder.
func New(opts Options) (*Forwarder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.ResendDelay == 0 {
		opts.ResendDelay = DefaultResendDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Forwarder{opts: opts, firing: map[string]*group{}}, nil
}

// lapse is how far ahead a firing alert's end time is.
func (f *Forwarder) lapse() time.Duration {
	return 4 * max(f.opts.ResendDelay, f.opts.EvaluationInterval)
}

// load reads the firing alerts kept before a restart, once. Call with f.mu.
func (f *Forwarder) load(ctx context.Context) error {
	if f.loaded || f.opts.State == nil {
		f.loaded = true
		return nil
	}
	raw, ok, err := f.opts.State.Get(ctx, stateKey)
	if err != nil {
		return fmt.Errorf("alertmanager: load firing alerts: %w", err)
	}
	if ok {
		if err := json.Unmarshal([]byte(raw), &f.firing); err != nil {
			return fmt.Errorf("alertmanager: load firing alerts: %w", err)
		}
	}
	f.loaded = true
	return nil
}

// save keeps the firing alerts. Call with f.mu.
func (f *Forwarder) save(ctx context.Context) error {
	if f.opts.State == nil {
		return nil
	}
	b, err := json.Marshal(f.firing)
	if err != nil {
		return err
	}
	if err := f.opts.State.Put(context.WithoutCancel(ctx), stateKey, string(b)); err != nil {
		return fmt.Errorf("alertmanager: save firing alerts: %w", err)
	}
	return nil
}

// Notify posts the notification's alerts: firing ones with an end time
// ahead (see the package comment), resolved ones with their end time. The
// group's firing alerts replace those re-sent so far.
func (f *Forwarder) Notify(ctx context.Context, n *alerting.Notification) error {
	now := f.opts.Now()
	f.mu.Lock()
	err := f.load(ctx)
	if err == nil {
		if firing := n.Firing(); len(firing) > 0 {
			f.firing[n.GroupKey] = &group{Alerts: firing, At: now}
		} else {
			delete(f.firing, n.GroupKey)
		}
		err = f.save(ctx)
	}
	f.mu.Unlock()
	if err != nil {
		// Without the state the alerts still go out; only their re-sends
		// after a restart are at stake.
		f.opts.Logger.Warn("alertmanager forwarder state", "err", err)
	}
	return f.post(ctx, n.Alerts, now)
}

// post sends alerts to every Alertmanager.
func (f *Forwarder) post(ctx context.Context, alerts []alerting.NotifiedAlert, now time.Time) error {
	out := make([]postableAlert, 0, len(alerts))
	for _, a := range alerts {
		pa := postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL,
			EndsAt: now.Add(f.lapse())}
		if a.Status == alerting.StatusResolved {
			pa.EndsAt = a.EndsAt
		}
		out = append(out, pa)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("%w: encode alerts: %w", alerting.ErrPermanent, err)
	}
	var errs []error
	for _, u := range f.opts.URLs {
		target := strings.TrimSuffix(u, "/") + "/api/v2/alerts"
		if err := alerting.PostJSON(ctx, f.opts.Client, target, body, "alertmanager "+u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Resend posts every firing alert again with a fresh end time, and returns
// how many it sent. Run calls it every ResendDelay.
func (f *Forwarder) Resend(ctx context.Context) (int, error) {
	now := f.opts.Now()
	f.mu.Lock()
	if err := f.load(ctx); err != nil {
		f.mu.Unlock()
		return 0, err
	}
	var alerts []alerting.NotifiedAlert
	forgot := false
	keys := make([]string, 0, len(f.firing))
	for k := range f.firing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := f.firing[k]
		if f.opts.ForgetAfter > 0 && now.Sub(g.At) > f.opts.ForgetAfter {
			delete(f.firing, k)
			forgot = true
			continue
		}
		alerts = append(alerts, g.Alerts...)
	}
	var err error
	if forgot {
		err = f.save(ctx)
	}
	f.mu.Unlock()
	if len(alerts) == 0 {
		return 0, err
	}
	return len(alerts), errors.Join(err, f.post(ctx, alerts, now))
}

// ErrRunning is returned by Run when the Forwarder already runs.
var ErrRunning = errors.New("alertmanager forwarder: already running")

// Run re-sends firing alerts every ResendDelay until ctx is cancelled,
// starting with those kept from before a restart. It runs once: a second
// call returns ErrRunning. Whoever builds the Forwarder runs it; the
// alerting Manager only hands it notifications.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer f.running.Store(false)
	t := time.NewTicker(f.opts.ResendDelay)
	defer t.Stop()
	for {
		if _, err := f.Resend(ctx); err != nil && ctx.Err() == nil {
			f.opts.Logger.Warn("re-sending firing alerts to Alertmanager failed; trying again next time", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
