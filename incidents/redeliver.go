package incidents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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

// redeliveries is the retry queue. The escalation loop (Run) is its user;
// mu makes it safe for any other caller too, and a page leaves the queue
// before it is sent, so no two callers send the same page.
type redeliveries struct {
	mu      sync.Mutex
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
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, pages...)
	if n := len(r.queue) - redeliverLimit; n > 0 {
		s.logger.Error("escalation: Slack pages dropped; the retry queue is full", "dropped", n)
		r.queue = r.queue[n:]
	}
	if len(pages) > 0 && len(r.queue) > len(pages) {
		return r.at // earlier pages are waiting: keep their schedule
	}
	return s.retryLocked(ctx)
}

// retryPages tries the queue from its head while Slack takes the pages.
func (s *Service) retryPages(ctx context.Context) time.Time {
	s.redeliver.mu.Lock()
	defer s.redeliver.mu.Unlock()
	return s.retryLocked(ctx)
}

// pending reports whether pages wait for Slack, and when the head is tried
// again.
func (s *Service) pending() (bool, time.Time) {
	s.redeliver.mu.Lock()
	defer s.redeliver.mu.Unlock()
	return len(s.redeliver.queue) > 0, s.redeliver.at
}

func (s *Service) retryLocked(ctx context.Context) time.Time {
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
		r.queue = r.queue[1:] // taken before it is sent: never sent twice
		err := s.deliver(ctx, p)
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() == nil {
				s.logger.Error("escalation: Slack refused the page", "incident", p.incident.ID, "err", err)
			}
			r.backoff = 0
			continue
		}
		if p.attempts == 0 {
			_ = addEvent(context.WithoutCancel(ctx), s.db, Event{IncidentID: p.incident.ID, At: s.now().UTC(), Kind: EventNote,
				Source: "escalation", Text: fmt.Sprintf("Slack message to %s failed, retrying: %v", p.describe(), err)})
		}
		p.attempts++
		r.queue = append([]page{p}, r.queue...) // back at the head: order kept
		r.backoff = min(max(2*r.backoff, redeliverInitial), redeliverMax)
		r.at = s.now().Add(r.backoff)
		s.logger.Warn("escalation: Slack page failed; retrying", "incident", p.incident.ID, "attempt", p.attempts+1,
			"retry_in", r.backoff, "queued", len(r.queue), "err", err)
		return r.at
	}
	return time.Time{}
}
