package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// outbox delivers notifications written by the dispatcher. A notification
// is in SQLite before any attempt, retried with exponential backoff and
// jitter (at least as long as a 429's Retry-After), and marked sent once.
type outbox struct {
	store     *Store
	receivers map[string]Receiver
	cfg       OutboxConfig
	logger    *slog.Logger
	now       func() time.Time
	wake      chan struct{}
	workers   int

	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  prometheus.Histogram
}

func newOutbox(store *Store, receivers map[string]Receiver, cfg OutboxConfig, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*outbox, error) {
	o := &outbox{
		store: store, receivers: receivers, cfg: cfg, logger: logger, now: now,
		wake: make(chan struct{}, 1), workers: 8,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notifications_sent_total",
			Help: "Notifications delivered, by receiver.",
		}, []string{"receiver"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notification_attempts_failed_total",
			Help: "Failed delivery attempts, by receiver; each is retried unless permanent.",
		}, []string{"receiver"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "burnrate_alerting_notification_latency_seconds",
			Help:    "Time from writing a notification to the outbox to its delivery.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{o.sent, o.failures, o.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register outbox metrics: %w", err)
			}
		}
	}
	return o, nil
}

// notify wakes the sender after new notifications were written.
func (o *outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx is cancelled.
func (o *outbox) run(ctx context.Context) error {
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	for {
		n, err := o.deliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			o.logger.Error("outbox", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-o.wake:
		case <-t.C:
		}
	}
}

// deliverDue makes one attempt at every due notification (one per group,
// in order) and returns how many it tried.
func (o *outbox) deliverDue(ctx context.Context) (int, error) {
	items, err := o.store.due(ctx, o.now(), 256)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.n.ID
	}
	if err := o.store.markSending(ctx, ids); err != nil {
		return 0, err
	}
	sem := make(chan struct{}, o.workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var sent []*Notification
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := o.deliver(ctx, it)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				sent = append(sent, it.n)
			}
		}()
	}
	wg.Wait()
	// One transaction records every delivery of the round. A crash before
	// it leaves them "sending": reconciled (Slack) or sent again (at least
	// once) on start.
	if err := o.markSent(ctx, sent); err != nil {
		errs = append(errs, err)
	}
	return len(items), errors.Join(errs...)
}

// deliver makes one attempt and reports whether the notification arrived.
// Errors returned are storage errors; delivery errors are recorded on the
// row and retried.
func (o *outbox) deliver(ctx context.Context, it outboxItem) (ok bool, err error) {
	n := it.n
	defer func() {
		// A receiver that panics (a bug rendering one notification) fails
		// that notification, not the process: a restart would find the row
		// again and die the same way.
		if p := recover(); p != nil {
			o.failures.WithLabelValues(n.Receiver).Inc()
			cause := fmt.Errorf("%w: receiver panicked: %v", ErrPermanent, p)
			o.logger.Error("notification delivery panicked; marking it failed", "receiver", n.Receiver, "id", n.ID,
				"group", n.GroupKey, "err", cause, "stack", string(debug.Stack()))
			ok, err = false, o.store.markFailed(context.WithoutCancel(ctx), n.ID, cause)
		}
	}()
	rcv, found := o.receivers[n.Receiver]
	if !found {
		return false, o.store.markFailed(ctx, n.ID, fmt.Errorf("no receiver named %q is configured", n.Receiver))
	}
	if len(n.Alerts) == 0 {
		// Written by an older version that notified muted groups: there is
		// nothing to tell.
		o.logger.Error("notification without alerts; marking it failed", "receiver", n.Receiver, "id", n.ID, "group", n.GroupKey)
		return false, o.store.markFailed(ctx, n.ID, fmt.Errorf("%w: notification without alerts", ErrPermanent))
	}
	if it.state == outboxSending || it.attempts > 0 {
		// A previous attempt was cut short (crash, stop) or failed in a way
		// that may hide a success (a timeout after the message was posted):
		// ask the receiver whether it arrived before trying again.
		if rec, isRec := rcv.(Reconciler); isRec {
			done, err := rec.Delivered(ctx, n)
			if err == nil && done {
				o.logger.Info("notification was delivered before the interruption; not sending it again", "receiver", n.Receiver, "id", n.ID)
				return true, nil
			}
		}
	}
	err = rcv.Notify(ctx, n)
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil {
		// Stopping: the row stays "sending" and is reconciled on start.
		return false, nil
	}
	o.failures.WithLabelValues(n.Receiver).Inc()
	if errors.Is(err, ErrPermanent) {
		o.logger.Error("notification rejected; not retrying", "receiver", n.Receiver, "id", n.ID, "err", err)
		return false, o.store.markFailed(ctx, n.ID, err)
	}
	delay := o.backoff(it.attempts + 1)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > delay {
		delay = ra.After
	}
	o.logger.Warn("notification failed; will retry", "receiver", n.Receiver, "id", n.ID, "attempt", it.attempts+1, "retry_in", delay, "err", err)
	return false, o.store.retryAt(ctx, n.ID, o.now().Add(delay), err)
}

func (o *outbox) markSent(ctx context.Context, ns []*Notification) error {
	if len(ns) == 0 {
		return nil
	}
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	// The context may be cancelled by a stop right after a successful send:
	// recording it must not be skipped, or the notification goes out twice.
	if err := o.store.markSent(context.WithoutCancel(ctx), ids, o.now()); err != nil {
		return err
	}
	for _, n := range ns {
		o.sent.WithLabelValues(n.Receiver).Inc()
		if !n.CreatedAt.IsZero() {
			o.latency.Observe(o.now().Sub(n.CreatedAt).Seconds())
		}
	}
	return nil
}

// backoff is the delay before attempt number attempt+1: exponential from
// InitialInterval, doubled each time, capped at MaxInterval, with ±50% jitter
// so that many notifications failing together do not retry in lockstep.
func (o *outbox) backoff(attempt int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     o.cfg.InitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         o.cfg.MaxInterval,
	}
	b.Reset()
	var d time.Duration
	for range min(attempt, 64) {
		d = b.NextBackOff()
	}
	return d
}
