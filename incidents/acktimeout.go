package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Acknowledgement timeouts (PagerDuty's): a policy with AckTimeoutMinutes
// re-triggers an incident that stays acknowledged, unresolved, that long,
// and its escalation starts over from the first step. An acknowledgement
// is a promise to work on the incident, and a forgotten one should not
// silence the pager for good.
//
// The deadline is a row in ack_timeouts, written in the transaction that
// acknowledges, so it survives a restart; a timeout that fell due while
// the process was down runs once, at start. Each acknowledgement sets a
// new deadline; resolving removes it; a deadline that finds the incident
// no longer acknowledged (resolved by its alert, escalated, re-triggered)
// is dropped.

// EventAckTimedOut is the timeline event of a lapsed acknowledgement.
const EventAckTimedOut = "ack_timed_out"

// armAckTimeout sets the acknowledgement deadline of inc, acknowledged at
// now, when its escalation policy has a timeout.
func armAckTimeout(ctx context.Context, tx *sql.Tx, inc *Incident, now time.Time) error {
	if inc.EscalationPolicy == "" {
		return nil
	}
	pol, err := getPolicy(ctx, tx, inc.EscalationPolicy)
	if errors.Is(err, ErrNotFound) {
		return nil // the policy is gone; there is nothing to escalate to
	}
	if err != nil {
		return err
	}
	if pol.AckTimeoutMinutes <= 0 {
		return disarmAckTimeout(ctx, tx, inc.ID)
	}
	due := now.Add(time.Duration(pol.AckTimeoutMinutes * float64(time.Minute)))
	if _, err := tx.ExecContext(ctx, `INSERT INTO ack_timeouts(incident_id, due_at, minutes) VALUES (?, ?, ?)
		ON CONFLICT(incident_id) DO UPDATE SET due_at = excluded.due_at, minutes = excluded.minutes`,
		inc.ID, ms(due), pol.AckTimeoutMinutes); err != nil {
		return fmt.Errorf("set acknowledgement timeout of %d: %w", inc.ID, err)
	}
	return nil
}

func disarmAckTimeout(ctx context.Context, q querier, incident int64) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM ack_timeouts WHERE incident_id = ?`, incident); err != nil {
		return fmt.Errorf("clear acknowledgement timeout of %d: %w", incident, err)
	}
	return nil
}

// AckTimeout returns when an acknowledged incident re-triggers unless it is
// resolved first (ErrNotFound: it has no acknowledgement timeout).
func (s *Service) AckTimeout(ctx context.Context, incident int64) (time.Time, error) {
	var due int64
	err := s.db.QueryRowContext(ctx, `SELECT due_at FROM ack_timeouts WHERE incident_id = ?`, incident).Scan(&due)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("acknowledgement timeout of incident %d: %w", incident, ErrNotFound)
	}
	if err != nil {
		return time.Time{}, err
	}
	return fromMS(due), nil
}

// runAckTimeouts re-triggers every incident whose acknowledgement timed
// out, each in one transaction with its deadline's removal, and returns
// the next deadline (zero: none).
func (s *Service) runAckTimeouts(ctx context.Context) (time.Time, error) {
	for {
		next, fired, err := s.claimAckTimeout(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if fired {
			s.nudge() // the restarted escalation's first step is due now
		}
		if next.IsZero() || next.After(s.now()) {
			return next, nil
		}
	}
}

// claimAckTimeout takes the earliest deadline. When it is due it removes
// it and, if the incident is still acknowledged, re-triggers it. It
// returns the deadline it found (zero: none) and whether it re-triggered.
func (s *Service) claimAckTimeout(ctx context.Context) (next time.Time, fired bool, err error) {
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		var id, due int64
		var minutes float64
		err := tx.QueryRowContext(ctx, `SELECT incident_id, due_at, minutes FROM ack_timeouts ORDER BY due_at, incident_id LIMIT 1`).
			Scan(&id, &due, &minutes)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read acknowledgement timeouts: %w", err)
		}
		next = fromMS(due)
		if due > ms(now) {
			return nil
		}
		if err := disarmAckTimeout(ctx, tx, id); err != nil {
			return err
		}
		inc, err := getIncident(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if inc.Status != StatusAcknowledged {
			return nil
		}
		text := "Acknowledgement timed out after " + strconv.FormatFloat(minutes, 'f', -1, 64) + " minutes: re-triggered, escalation starts over"
		if err := s.retrigger(ctx, tx, inc, now, Actor{By: "escalation", Source: "escalation"}, EventAckTimedOut, text); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET updated_at = ? WHERE id = ?`, ms(now), id); err != nil {
			return err
		}
		fired = true
		return nil
	})
	return next, fired, err
}

// withAckTimeouts runs the due acknowledgement timeouts for Run and
// returns the earlier of next and the next timeout.
func (s *Service) withAckTimeouts(ctx context.Context, next time.Time) time.Time {
	t, err := s.runAckTimeouts(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return next
		}
		s.logger.Error("acknowledgement timeouts", "err", err)
		t = s.now().Add(5 * time.Second)
	}
	if !t.IsZero() && (next.IsZero() || t.Before(next)) {
		return t
	}
	return next
}
