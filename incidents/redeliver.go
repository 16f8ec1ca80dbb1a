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
// token) is not retried. The queue is kept in SQLite too (page_queue): a
// page is written with the step that claims it, deleted just before each
// attempt and written back when the attempt fails, and Run reads what is
// left when it starts. So a restart during an outage sends what was
// waiting, in order; a crash in the moment between taking a page and
// Slack's answer loses that one page, and never sends one twice.
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
		for _, p := range r.queue[:n] {
			s.unstorePage(ctx, p)
		}
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
				s.unstorePage(ctx, p)
				continue
			}
		}
		r.queue = r.queue[1:] // taken before it is sent: never sent twice
		s.unstorePage(ctx, p)
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
		if err := storePage(context.WithoutCancel(ctx), s.db, &p); err != nil {
			s.logger.Error("escalation: keeping a Slack page for retry", "incident", p.incident.ID, "err", err)
		}
		r.queue = append([]page{p}, r.queue...) // back at the head: order kept
		r.backoff = min(max(2*r.backoff, redeliverInitial), redeliverMax)
		r.at = s.now().Add(r.backoff)
		s.logger.Warn("escalation: Slack page failed; retrying", "incident", p.incident.ID, "attempt", p.attempts+1,
			"retry_in", r.backoff, "queued", len(r.queue), "err", err)
		return r.at
	}
	return time.Time{}
}

// storePage writes p to page_queue, under its own seq when it has one (a
// page written back after a failed attempt keeps its place).
func storePage(ctx context.Context, q querier, p *page) error {
	user := ""
	if p.user != nil {
		user = p.user.ID
	}
	var seq any
	if p.seq > 0 {
		seq = p.seq
	}
	res, err := q.ExecContext(ctx, `INSERT INTO page_queue(seq, incident_id, user_id, channel, step, round, reason, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, p.incident.ID, user, p.channel, p.step, p.round, p.reason, p.attempts)
	if err != nil {
		return fmt.Errorf("queue page: %w", err)
	}
	if p.seq == 0 {
		if p.seq, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("queue page: %w", err)
		}
	}
	return nil
}

// unstorePage deletes p from page_queue. A failure is logged: the page is
// still sent, and would be sent again after a restart.
func (s *Service) unstorePage(ctx context.Context, p page) {
	if p.seq == 0 {
		return
	}
	if _, err := s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM page_queue WHERE seq = ?`, p.seq); err != nil {
		s.logger.Error("escalation: removing a sent page from the queue", "incident", p.incident.ID, "err", err)
	}
}

// loadPages puts the pages page_queue holds (those waiting for Slack when
// the process stopped) at the head of the retry queue, in their order,
// due now.
func (s *Service) loadPages(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, incident_id, user_id, channel, step, round, reason, attempts FROM page_queue ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read page queue: %w", err)
	}
	type row struct {
		p        page
		incident int64
		user     string
	}
	var stored []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.p.seq, &x.incident, &x.user, &x.p.channel, &x.p.step, &x.p.round, &x.p.reason, &x.p.attempts); err != nil {
			rows.Close()
			return fmt.Errorf("read page queue: %w", err)
		}
		stored = append(stored, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read page queue: %w", err)
	}
	var pages []page
	for _, x := range stored {
		p := x.p
		inc, err := getIncident(ctx, s.db, x.incident)
		if err == nil && x.user != "" {
			p.user, err = getUser(ctx, s.db, x.user)
		}
		if err != nil {
			// The incident or the person is gone: nobody to page.
			s.logger.Warn("escalation: dropping a queued page", "incident", x.incident, "err", err)
			s.unstorePage(ctx, p)
			continue
		}
		p.incident = inc
		pages = append(pages, p)
	}
	if len(pages) == 0 {
		return nil
	}
	r := &s.redeliver
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(pages, r.queue...)
	r.at = s.now()
	s.logger.Info("escalation: pages waiting for Slack since before the restart", "pages", len(pages))
	return nil
}
