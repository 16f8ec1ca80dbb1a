package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Event is a message of another component (an incident that changed) for
// receivers that post events, such as the webhook receiver, which posts
// Body as it is. It goes through the outbox like an alert notification:
// written to SQLite first, retried with backoff, delivered once per
// destination.
type Event struct {
	// Stream orders events: those of one stream reach each destination in
	// the order they were enqueued, one after the other.
	Stream string `json:"stream"`
	// ID identifies the event within its stream: enqueuing an event whose
	// ID is already in the outbox adds nothing.
	ID string `json:"id"`
	// Body is the JSON the receiver posts.
	Body json.RawMessage `json:"body"`
}

// Enqueue writes an event for receiver (each of its destinations) to the
// outbox and wakes the senders. The receiver must be configured; Stream,
// ID and a JSON Body are required.
func (m *Manager) Enqueue(ctx context.Context, receiver string, ev Event) error {
	if _, ok := m.outbox.integrations[receiver]; !ok {
		return fmt.Errorf("alerting: enqueue event: no receiver named %q is configured", receiver)
	}
	switch {
	case ev.Stream == "":
		return errors.New("alerting: enqueue event: stream is required")
	case ev.ID == "":
		return errors.New("alerting: enqueue event: id is required")
	case !json.Valid(ev.Body):
		return errors.New("alerting: enqueue event: body is not valid JSON")
	}
	now := m.now()
	err := m.store.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, target := range m.outbox.targets(receiver) {
			n := &Notification{Receiver: receiver, Integration: target, Status: "event", GroupKey: ev.Stream, Event: &ev, CreatedAt: now}
			res, err := tx.ExecContext(ctx, `INSERT INTO outbox(receiver, group_key, next_attempt_at, created_at, nflog, event_id)
				VALUES (?, ?, ?, ?, '', ?) ON CONFLICT DO NOTHING`, target, ev.Stream, ms(now), ms(now), ev.ID)
			if err != nil {
				return fmt.Errorf("enqueue event: %w", err)
			}
			added, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("enqueue event: %w", err)
			}
			if added == 0 {
				continue // already queued (or sent) under this ID
			}
			if n.ID, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("enqueue event: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_payloads(id, payload) VALUES (?, ?)`, n.ID, mustJSON(n)); err != nil {
				return fmt.Errorf("enqueue event: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.outbox.notify()
	return nil
}
