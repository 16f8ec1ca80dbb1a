package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/burnrate/burnrate/alerting"
)

// Every message incidents sends to a person (an escalation page, a
// handoff notice) goes through alerting's outbox, the one delivery queue
// of the process, as an event for the receiver PagerReceiverName:
//
//   - the escalation step that sends a page enqueues it inside the
//     transaction that claims the step, under an ID made of the step's
//     identity, so a crash between the two enqueues nothing twice;
//   - the outbox claims the row (leased) before the attempt and marks it
//     sent only once Slack has answered ok: a crash mid-send sends it again
//     after the restart (the one duplicate at-least-once allows, counted in
//     burnrate_alerting_notifications_resent_after_interruption_total);
//   - a failed attempt, a failed users.lookupByEmail included, is retried
//     with the outbox's backoff (jitter, Retry-After honoured), and the
//     incident's timeline says so; "notified" is written only after Slack
//     took the message.
//
// Pages of one incident share an outbox stream, so they arrive in the
// order their steps ran.

// PagerReceiverName is alerting's receiver that delivers escalation pages
// and handoff notices (Service.Pager).
const PagerReceiverName = "incidents-pager"

// Message kinds the pager delivers.
const (
	messagePage    = "page"
	messageHandoff = "handoff"
)

// message is one page or handoff notice, the body of its outbox event.
type message struct {
	Kind     string `json:"kind"`
	Incident int64  `json:"incident,omitempty"`
	User     string `json:"user,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Step     int    `json:"step,omitempty"`
	Round    int    `json:"round,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Schedule, Start and End describe a handoff's shift.
	Schedule string    `json:"schedule,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
}

// DeliverThrough makes q the queue of every page and handoff notice, for
// the receiver PagerReceiverName (whose Receiver is Pager). Call it before
// Run: Run refuses to start without it, since a page it could not queue
// would be a page lost.
func (s *Service) DeliverThrough(q EventQueue) {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	s.queue = q
}

func (s *Service) pageQueue() EventQueue {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	return s.queue
}

// enqueue writes m to the delivery queue under id, in stream.
func (s *Service) enqueue(ctx context.Context, stream, id string, m message) error {
	q := s.pageQueue()
	if q == nil {
		return errors.New("incidents: no delivery queue (DeliverThrough was not called)")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := q.Enqueue(ctx, PagerReceiverName, alerting.Event{Stream: stream, ID: id, Body: body}); err != nil {
		return fmt.Errorf("queue %s: %w", m.Kind, err)
	}
	return nil
}

// queuePage enqueues one escalation page. dueAt is the due time of the
// claimed step: with the incident, round, step and target it names the
// page, so a step claimed again after a crash enqueues nothing new, while
// the same step of a later escalation (a re-trigger) is a new page.
func (s *Service) queuePage(ctx context.Context, p page, dueAt int64) error {
	target := p.channel
	if p.user != nil {
		target = "user:" + p.user.ID
	} else {
		target = "channel:" + target
	}
	m := message{Kind: messagePage, Incident: p.incident.ID, Channel: p.channel, Step: p.step, Round: p.round, Reason: p.reason}
	if p.user != nil {
		m.User = p.user.ID
	}
	id := fmt.Sprintf("page/%d/%d/%d/%d/%s", p.incident.ID, dueAt, p.round, p.step, target)
	return s.enqueue(ctx, "incident/"+strconv.FormatInt(p.incident.ID, 10), id, m)
}

// Pager is the receiver that delivers what the Service queues: register
// it with alerting under PagerReceiverName. It is a receiver and nothing
// else: it has no loop of its own to be started.
func (s *Service) Pager() alerting.Receiver { return pager{s: s} }

type pager struct{ s *Service }

// Notify makes one attempt at a page or a handoff notice.
func (p pager) Notify(ctx context.Context, n *alerting.Notification) error {
	if n.Event == nil {
		return fmt.Errorf("%w: the pager delivers events only", alerting.ErrPermanent)
	}
	var m message
	if err := json.Unmarshal(n.Event.Body, &m); err != nil {
		return fmt.Errorf("%w: decode message: %w", alerting.ErrPermanent, err)
	}
	switch m.Kind {
	case messagePage:
		return p.s.deliverPage(ctx, m, n.Attempt)
	case messageHandoff:
		return p.s.deliverHandoff(ctx, m)
	}
	return fmt.Errorf("%w: unknown message kind %q", alerting.ErrPermanent, m.Kind)
}

// deliverPage sends one escalation page and records in the timeline what
// became of it: delivered ("notified"), failed and retried, or failed for
// good. A page whose incident was acknowledged or resolved while it waited
// is not sent.
func (s *Service) deliverPage(ctx context.Context, m message, attempt int) error {
	inc, err := s.Get(ctx, m.Incident)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: incident %d is gone", alerting.ErrPermanent, m.Incident)
	}
	if err != nil {
		return err
	}
	pg := page{incident: inc, channel: m.Channel, step: m.Step, round: m.Round, reason: m.Reason}
	if m.User != "" {
		if pg.user, err = s.GetUser(ctx, m.User); err != nil {
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			pg.user = &User{ID: m.User, Name: m.User}
		}
	}
	record := func(kind, text string) {
		if err := addEvent(context.WithoutCancel(ctx), s.db, Event{IncidentID: inc.ID, At: s.now().UTC(), Kind: kind,
			Source: "escalation", Text: text}); err != nil {
			s.logger.Error("escalation: record delivery", "incident", inc.ID, "err", err)
		}
	}
	if inc.Status != StatusTriggered {
		record(EventNote, fmt.Sprintf("Page to %s (step %d, round %d) not sent: the incident was %s meanwhile",
			pg.who(), m.Step+1, m.Round+1, inc.Status))
		return nil
	}
	how, err := s.deliver(ctx, pg)
	if err == nil {
		if pg.user != nil {
			s.metrics.paged(pg.user.ID)
		}
		text := fmt.Sprintf("Notified %s (%s) for escalation step %d, round %d", pg.who(), how, m.Step+1, m.Round+1)
		if attempt > 1 {
			text += fmt.Sprintf(", after %d attempts", attempt)
		}
		record(EventNotified, text)
		return nil
	}
	if errors.Is(err, alerting.ErrPermanent) {
		record(EventDeliveryFailed, fmt.Sprintf("Page to %s (step %d, round %d) failed for good: %v", pg.who(), m.Step+1, m.Round+1, err))
		return err
	}
	if attempt <= 1 {
		record(EventDeliveryFailed, fmt.Sprintf("Page to %s (step %d, round %d) failed, retrying: %v", pg.who(), m.Step+1, m.Round+1, err))
	}
	return err
}

// who names a page's recipient.
func (p page) who() string {
	if p.channel != "" {
		return "#" + p.channel
	}
	return p.user.ID
}

// slackError classifies a failed Slack call for the outbox: transient
// failures (5xx, 429 with its Retry-After, timeouts, no connection) are
// retried, anything else (an unknown channel, a bad token) is permanent.
func slackError(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &alerting.RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code >= 500 || sc.Code == 429 || sc.Code == 408 {
			return err
		}
		return fmt.Errorf("%w: %w", alerting.ErrPermanent, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "internal_error", "fatal_error", "ratelimited", "service_unavailable", "request_timeout":
			return err
		}
		return fmt.Errorf("%w: %w", alerting.ErrPermanent, err)
	}
	// Anything else (a body that is not Slack's JSON, a reset) may pass.
	return err
}

// moveLegacyPages hands the pages an older version left waiting in its
// own queue (page_queue, during a Slack outage) to the delivery queue,
// then empties it: an upgrade in the middle of an outage loses no page.
func (s *Service) moveLegacyPages(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, incident_id, user_id, channel, step, round, reason FROM page_queue ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read legacy page queue: %w", err)
	}
	type legacy struct {
		seq int64
		m   message
	}
	var left []legacy
	for rows.Next() {
		var l legacy
		l.m.Kind = messagePage
		if err := rows.Scan(&l.seq, &l.m.Incident, &l.m.User, &l.m.Channel, &l.m.Step, &l.m.Round, &l.m.Reason); err != nil {
			rows.Close()
			return fmt.Errorf("read legacy page queue: %w", err)
		}
		left = append(left, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read legacy page queue: %w", err)
	}
	for _, l := range left {
		id := fmt.Sprintf("legacy-page/%d", l.seq)
		if err := s.enqueue(ctx, "incident/"+strconv.FormatInt(l.m.Incident, 10), id, l.m); err != nil {
			return err
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM page_queue WHERE seq = ?`, l.seq); err != nil {
			return fmt.Errorf("empty legacy page queue: %w", err)
		}
	}
	if len(left) > 0 {
		s.logger.Info("escalation: pages an older version left waiting for Slack are queued again", "pages", len(left))
	}
	return nil
}
