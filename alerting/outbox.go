package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/burnrate/burnrate/internal/retry"
)

// outbox delivers notifications written by the dispatcher. A notification
// is in SQLite before any attempt, retried with exponential backoff and
// jitter (at least as long as a 429's Retry-After), and marked sent once.
//
// Each integration (a receiver, or one destination of a receiver with
// several) has its own worker, so a hanging webhook delays nothing but
// itself, and a Retry-After pauses only the integration that sent it.
type outbox struct {
	store  *Store
	cfg    OutboxConfig
	logger *slog.Logger
	now    func() time.Time
	// integrations by name; fanout lists the integrations of each receiver.
	integrations map[string]Receiver
	names        []string
	fanout       map[string][]string
	receiverOf   map[string]string
	wake         map[string]chan struct{}
	// workers bounds the concurrent attempts of one integration.
	workers int
	// settled, when set, is told of every notification that reached its
	// end: delivered, or failed for good.
	settled func(it outboxItem, delivered bool)

	mu     sync.Mutex
	paused map[string]time.Time

	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	rejected *prometheus.CounterVec
	resent   *prometheus.CounterVec
	latency  prometheus.Histogram
}

// attemptTimeout bounds one delivery attempt, whatever the receiver's own
// client does: a destination that hangs costs a retry, not the queue.
// attemptLease is how long a row stays claimed by an attempt; it outlasts
// the attempt, so a row is never tried twice at once.
const (
	attemptTimeout = 30 * time.Second
	attemptLease   = 2 * attemptTimeout
)

func newOutbox(store *Store, receivers map[string]Receiver, cfg OutboxConfig, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*outbox, error) {
	o := &outbox{
		store: store, cfg: cfg, logger: logger, now: now, workers: 8,
		integrations: map[string]Receiver{}, fanout: map[string][]string{}, receiverOf: map[string]string{},
		wake: map[string]chan struct{}{}, paused: map[string]time.Time{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notifications_sent_total",
			Help: "Notifications delivered, by receiver.",
		}, []string{"receiver"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notification_attempts_failed_total",
			Help: "Failed delivery attempts, by receiver; each is retried unless permanent.",
		}, []string{"receiver"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notifications_rejected_total",
			Help: "Notifications a receiver rejected for good (invalid_blocks, msg_too_long, HTTP 400) or that made it panic; the group's next flush builds them again.",
		}, []string{"receiver"}),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_notifications_resent_after_interruption_total",
			Help: "Notifications sent again because an attempt was cut short (a crash or a stop mid-send) and the receiver cannot tell whether it arrived: each may have arrived twice.",
		}, []string{"receiver"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "burnrate_alerting_notification_latency_seconds",
			Help:    "Time from writing a notification to the outbox to its delivery.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800},
		}),
	}
	add := func(name, receiver string, r Receiver) {
		if _, dup := o.integrations[name]; dup {
			return
		}
		o.integrations[name] = r
		o.receiverOf[name] = receiver
		o.names = append(o.names, name)
		o.wake[name] = make(chan struct{}, 1)
	}
	for name, r := range receivers {
		// The receiver itself stays reachable by its name: rows written
		// before it had integrations are delivered as they were queued.
		add(name, name, r)
		f, ok := r.(Fanout)
		if !ok {
			o.fanout[name] = []string{name}
			continue
		}
		for _, in := range f.Integrations() {
			full := name + "/" + in.Name
			add(full, name, in.Receiver)
			o.fanout[name] = append(o.fanout[name], full)
		}
	}
	sort.Strings(o.names)
	if reg != nil {
		for _, c := range []prometheus.Collector{o.sent, o.failures, o.rejected, o.resent, o.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register outbox metrics: %w", err)
			}
		}
	}
	return o, nil
}

// targets returns the integrations a notification of receiver goes to.
func (o *outbox) targets(receiver string) []string {
	if t, ok := o.fanout[receiver]; ok {
		return t
	}
	return []string{receiver} // unknown: delivery fails it with a clear error
}

// notify wakes the senders after new notifications were written.
func (o *outbox) notify() {
	for _, w := range o.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// reclaim takes back, at start, what a previous process left mid-attempt.
func (o *outbox) reclaim(ctx context.Context) error {
	n, err := o.store.reclaimInterrupted(ctx, o.now())
	if n > 0 {
		o.logger.Warn("notifications were being sent when the process stopped; trying them again now", "notifications", n)
	}
	return err
}

// run delivers until ctx is cancelled, one worker per integration.
func (o *outbox) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range o.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.runIntegration(ctx, name)
		}()
	}
	wg.Wait()
	return nil
}

func (o *outbox) runIntegration(ctx context.Context, name string) {
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	for {
		n, err := o.deliverIntegration(ctx, name)
		if err != nil && ctx.Err() == nil {
			o.logger.Error("outbox", "integration", name, "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake[name]:
		case <-t.C:
		}
	}
}

// deliverDue makes one attempt at every due notification of every
// integration and returns how many it tried.
func (o *outbox) deliverDue(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, name := range o.names {
		n, err := o.deliverIntegration(ctx, name)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// pausedUntil is when the integration may be tried again after a
// Retry-After (zero when it is not paused).
func (o *outbox) pausedUntil(name string) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	until := o.paused[name]
	if !until.After(o.now()) {
		delete(o.paused, name)
		return time.Time{}
	}
	return until
}

func (o *outbox) pause(name string, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if until.After(o.paused[name]) {
		o.paused[name] = until
	}
}

// deliverIntegration makes one attempt at every due notification of one
// integration (one per group, in order) and returns how many it tried.
func (o *outbox) deliverIntegration(ctx context.Context, name string) (int, error) {
	if !o.pausedUntil(name).IsZero() {
		return 0, nil
	}
	items, err := o.store.due(ctx, name, o.now(), 256)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.n.ID
	}
	if err := o.store.markSending(ctx, ids, o.now().Add(attemptLease)); err != nil {
		return 0, err
	}
	sem := make(chan struct{}, o.workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var sent, failed []outboxItem
	var untried []int64
	tried := 0
	for i, it := range items {
		sem <- struct{}{}
		if until := o.pausedUntil(name); !until.IsZero() {
			// A Retry-After arrived during this round: the rest waits.
			<-sem
			for _, rest := range items[i:] {
				untried = append(untried, rest.n.ID)
			}
			if err := o.store.release(context.WithoutCancel(ctx), untried, until); err != nil {
				errs = append(errs, err)
			}
			break
		}
		tried++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := o.deliver(ctx, it)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			switch res {
			case delivered:
				sent = append(sent, it)
			case failedForGood:
				failed = append(failed, it)
			}
		}()
	}
	wg.Wait()
	// One transaction records every delivery of the round, with the
	// notification log entries they make true. A crash before it leaves
	// them "sending": reconciled (Slack) or sent again (at least once) on
	// start.
	if err := o.markSent(ctx, sent); err != nil {
		errs = append(errs, err)
	} else if o.settled != nil {
		for _, it := range sent {
			o.settled(it, true)
		}
	}
	if o.settled != nil {
		for _, it := range failed {
			o.settled(it, false)
		}
	}
	return tried, errors.Join(errs...)
}

// attempt outcomes
type outcome int

const (
	retrying outcome = iota
	delivered
	failedForGood
)

// deliver makes one attempt and reports how it ended. Errors returned are
// storage errors; delivery errors are recorded on the row and retried.
func (o *outbox) deliver(ctx context.Context, it outboxItem) (res outcome, err error) {
	n := it.n
	name := n.integration()
	fail := func(cause error) (outcome, error) {
		o.rejected.WithLabelValues(n.Receiver).Inc()
		return failedForGood, o.store.markFailed(context.WithoutCancel(ctx), n.ID, cause)
	}
	defer func() {
		// A receiver that panics (a bug rendering one notification) fails
		// that notification, not the process: a restart would find the row
		// again and die the same way.
		if p := recover(); p != nil {
			o.failures.WithLabelValues(n.Receiver).Inc()
			cause := fmt.Errorf("%w: receiver panicked: %v", ErrPermanent, p)
			o.logger.Error("notification delivery panicked; marking it failed", "receiver", name, "id", n.ID,
				"group", n.GroupKey, "err", cause, "stack", string(debug.Stack()))
			res, err = fail(cause)
		}
	}()
	rcv, found := o.integrations[name]
	if !found {
		o.logger.Error("notification for a receiver that is not configured; marking it failed", "receiver", name, "id", n.ID)
		return fail(fmt.Errorf("no receiver named %q is configured", name))
	}
	if len(n.Alerts) == 0 && n.Event == nil {
		// Written by an older version that notified muted groups: there is
		// nothing to tell.
		o.logger.Error("notification without alerts; marking it failed", "receiver", name, "id", n.ID, "group", n.GroupKey)
		return fail(fmt.Errorf("%w: notification without alerts", ErrPermanent))
	}
	if it.state == outboxSending || it.attempts > 0 {
		// A previous attempt was cut short (crash, stop) or failed in a way
		// that may hide a success (a timeout after the message was posted):
		// ask the receiver whether it arrived before trying again.
		rec, isRec := rcv.(Reconciler)
		if isRec {
			done, err := rec.Delivered(ctx, n)
			if err == nil && done {
				o.logger.Info("notification was delivered before the interruption; not sending it again", "receiver", name, "id", n.ID)
				return delivered, nil
			}
		}
		if it.state == outboxSending && !isRec {
			// The one duplicate at-least-once allows: the receiver may have
			// taken it in the instant before the process died.
			o.resent.WithLabelValues(n.Receiver).Inc()
			o.logger.Warn("sending again a notification whose delivery was cut short; it may arrive twice", "receiver", name, "id", n.ID, "group", n.GroupKey)
		}
	}
	n.Attempt = it.attempts + 1
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	err = rcv.Notify(actx, n)
	cancel()
	if err == nil {
		return delivered, nil
	}
	if ctx.Err() != nil {
		// Stopping: the row stays "sending" and is reconciled on start.
		return retrying, nil
	}
	o.failures.WithLabelValues(n.Receiver).Inc()
	if errors.Is(err, ErrPermanent) {
		o.logger.Error("notification rejected; not retrying it, the group's next flush builds it again", "receiver", name, "id", n.ID, "group", n.GroupKey, "err", err)
		return fail(err)
	}
	delay := o.backoff(it.attempts + 1)
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		// Rate limits are the receiver's (a Slack token, a webhook host):
		// every notification to it waits, others go on.
		o.pause(name, o.now().Add(ra.After))
		delay = max(delay, ra.After)
	}
	o.logger.Warn("notification failed; will retry", "receiver", name, "id", n.ID, "attempt", it.attempts+1, "retry_in", delay, "err", err)
	return retrying, o.store.retryAt(ctx, n.ID, o.now().Add(delay), err)
}

func (o *outbox) markSent(ctx context.Context, items []outboxItem) error {
	if len(items) == 0 {
		return nil
	}
	// The context may be cancelled by a stop right after a successful send:
	// recording it must not be skipped, or the notification goes out twice.
	if err := o.store.markSent(context.WithoutCancel(ctx), items, o.now()); err != nil {
		return err
	}
	for _, it := range items {
		o.sent.WithLabelValues(it.n.Receiver).Inc()
		if !it.n.CreatedAt.IsZero() {
			o.latency.Observe(o.now().Sub(it.n.CreatedAt).Seconds())
		}
	}
	return nil
}

// backoff is the delay before attempt number attempt+1: the one retry
// policy (internal/retry), from InitialInterval doubling to MaxInterval.
func (o *outbox) backoff(attempt int) time.Duration {
	return retry.Backoff(attempt, o.cfg.InitialInterval, o.cfg.MaxInterval)
}
