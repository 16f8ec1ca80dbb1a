package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/burnrate/burnrate/alerting"
)

// WebhookReceiverName is alerting's receiver that posts incident events
// to incidents.webhook_urls.
const WebhookReceiverName = "incidents-webhook"

// EventStream is the outbox stream of incident events: one stream, so a
// receiver gets every change of every incident in the order it happened.
const EventStream = "incidents"

// EventQueue is where incident events go: alerting's durable outbox
// (*alerting.Manager).
type EventQueue interface {
	Enqueue(ctx context.Context, receiver string, ev alerting.Event) error
}

// WebhookEvent is the JSON body posted to incidents.webhook_urls for every
// timeline event (triggered, acknowledged, escalated, note, resolved,
// reopened, ...).
type WebhookEvent struct {
	Event Event `json:"event"`
	// Incident is the incident as it was when the event was handed to the
	// outbox, normally right after the change.
	Incident *Incident `json:"incident"`
}

// validateWebhookURLs checks incidents.webhook_urls.
func validateWebhookURLs(urls []string) error {
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("incidents.webhook_urls[%d]: %q is not an http:// or https:// URL", i, raw)
		}
	}
	return nil
}

// SendEvents hands every timeline event from now on to receiver through
// q, in order, each exactly once even across restarts: the timeline is
// the record, a cursor in the database says how far it was handed over,
// and the outbox ignores an event ID it already holds. Call it before Run.
func (s *Service) SendEvents(ctx context.Context, q EventQueue, receiver string) error {
	if q == nil || receiver == "" {
		return errors.New("incidents: send events: a queue and a receiver are required")
	}
	// A first start sends what happens from now on, not the history.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO event_cursor(receiver, last_id)
		VALUES (?, (SELECT COALESCE(MAX(id), 0) FROM timeline)) ON CONFLICT DO NOTHING`, receiver); err != nil {
		return fmt.Errorf("incidents: event cursor: %w", err)
	}
	s.eventsMu.Lock()
	s.events, s.eventsTo = q, receiver
	s.eventsMu.Unlock()
	s.nudge()
	return nil
}

// forwardEvents enqueues the timeline events after the cursor.
func (s *Service) forwardEvents(ctx context.Context) error {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	if s.events == nil {
		return nil
	}
	for {
		var last int64
		if err := s.db.QueryRowContext(ctx, `SELECT last_id FROM event_cursor WHERE receiver = ?`, s.eventsTo).Scan(&last); err != nil {
			return fmt.Errorf("read event cursor: %w", err)
		}
		evs, err := s.EventsAfter(ctx, last, 100)
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, e := range evs {
			inc, err := s.Get(ctx, e.IncidentID)
			if err != nil {
				return err
			}
			body, err := json.Marshal(WebhookEvent{Event: e, Incident: inc})
			if err != nil {
				return fmt.Errorf("encode incident event %d: %w", e.ID, err)
			}
			if err := s.events.Enqueue(ctx, s.eventsTo, alerting.Event{Stream: EventStream, ID: strconv.FormatInt(e.ID, 10), Body: body}); err != nil {
				return fmt.Errorf("enqueue incident event %d: %w", e.ID, err)
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE event_cursor SET last_id = ? WHERE receiver = ?`, e.ID, s.eventsTo); err != nil {
				return fmt.Errorf("advance event cursor: %w", err)
			}
		}
	}
}

// EventsAfter returns up to limit timeline events, of every incident, with
// an ID above after, oldest first: for readers that follow the timeline
// (webhooks, annotation series).
func (s *Service) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, incident_id, at, kind, source, actor, text FROM timeline WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read timeline events: %w", err)
	}
	return scanEvents(rows)
}

func (s *Service) sendsEvents() bool {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	return s.events != nil
}
