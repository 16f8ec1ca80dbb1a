package incidents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/slack-go/slack"
)

// Escalation pages that Slack could not take (5xx, 429, a timeout, no
// connection) wait in an in-memory queue and are retried, oldest first,
// with exponential backoff: a Slack outage across a page and the next
// escalation steps delays them, and they arrive once Slack is back, in the
// order the steps ran. A rejection Slack means (an unknown channel, a bad
// token) is not retried. The queue is not durable: a crash during an
// outage loses what it holds, as a crash between claiming and sending a
// step always did (the timeline still says who was to be paged).
const (
	redeliverInitial = time.Second
	redeliverMax     = 30 * time.Second
	// redeliverLimit bounds the queue; beyond it the oldest page is dropped.
	redeliverLimit = 1000
)

// redeliveries is the retry queue. Only the escalation loop (Run) uses it.
type redeliveries struct {
	queue   []page
	backoff time.Duration
	at      time.Time // when the head is tried again
}

// transient reports whether a failed Slack call is worth retrying.
func transient(err error) bool {
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 500 || sc.Code == 429 || sc.Code == 408
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// sendPages delivers pages after those still waiting for Slack, so that
// none overtakes an earlier one. It returns when the head is due again
// (zero: the queue is empty).
func (s *Service) sendPages(ctx context.Context, pages []page) time.Time {
	r := &s.redeliver
	r.queue = append(r.queue, pages...)
	if n := len(r.queue) - redeliverLimit; n > 0 {
		s.logger.Error("escalation: Slack pages dropped; the retry queue is full", "dropped", n)
		r.queue = r.queue[n:]
	}
	if len(pages) > 0 && len(r.queue) > len(pages) {
		return r.at // earlier pages are waiting: keep their schedule
	}
	return s.retryPages(ctx)
}

// retryPages tries the queue from its head while Slack takes the pages.
func (s *Service) retryPages(ctx context.Context) time.Time {
	r := &s.redeliver
	for len(r.queue) > 0 {
		if ctx.Err() != nil {
			return time.Time{}
		}
		p := r.queue[0]
		if p.attempts > 0 {
			if inc, err := s.Get(ctx, p.incident.ID); err == nil && inc.Status == StatusResolved {
				r.queue = r.queue[1:] // nobody needs paging for it any more
				continue
			}
		}
		err := s.deliver(ctx, p)
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() == nil {
				s.logger.Error("escalation: Slack refused the page", "incident", p.incident.ID, "err", err)
			}
			r.queue, r.backoff = r.queue[1:], 0
			continue
		}
		if p.attempts == 0 {
			_ = addEvent(context.WithoutCancel(ctx), s.db, Event{IncidentID: p.incident.ID, At: s.now().UTC(), Kind: EventNote,
				Source: "escalation", Text: fmt.Sprintf("Slack message to %s failed, retrying: %v", p.describe(), err)})
		}
		r.queue[0].attempts++
		r.backoff = min(max(2*r.backoff, redeliverInitial), redeliverMax)
		r.at = s.now().Add(r.backoff)
		s.logger.Warn("escalation: Slack page failed; retrying", "incident", p.incident.ID, "attempt", p.attempts+1,
			"retry_in", r.backoff, "queued", len(r.queue), "err", err)
		return r.at
	}
	return time.Time{}
}
