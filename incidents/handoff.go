package incidents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
)

// handoffGrace is how late a handoff notification may still be sent: a
// shift that began while the process was down is announced at start if it
// began at most this long ago.
const handoffGrace = 15 * time.Minute

// Handoff is a notification sent to the person coming on call.
type Handoff struct {
	Schedule string    `json:"schedule"`
	User     string    `json:"user"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	SentAt   time.Time `json:"sent_at"`
}

// runHandoffs queues a notice for each person whose shift has just begun
// (once each: the notice is queued under the shift's identity before the
// handoff is recorded, so a crash between the two queues nothing twice)
// and returns the next handoff instant (zero: none).
func (s *Service) runHandoffs(ctx context.Context) (time.Time, error) {
	scs, err := s.Schedules(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := s.now().UTC()
	var next time.Time
	for _, sc := range scs {
		for _, sh := range sc.Final(now.Add(-handoffGrace), now.Add(time.Nanosecond)) {
			if !sh.Start.After(now.Add(-handoffGrace)) {
				continue // began before the window (or clipped to it)
			}
			var seen int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM handoffs WHERE schedule_id = ? AND user_id = ? AND shift_start = ?`,
				sc.ID, sh.User, ms(sh.Start)).Scan(&seen); err != nil {
				return time.Time{}, fmt.Errorf("read handoffs: %w", err)
			}
			if seen > 0 {
				continue
			}
			full, ok := sc.ShiftAt(sh.User, now)
			if !ok {
				full = sh
			}
			id := fmt.Sprintf("handoff/%s/%s/%d", sc.ID, sh.User, ms(sh.Start))
			if err := s.enqueue(ctx, "handoff/"+sh.User, id, message{Kind: messageHandoff, User: sh.User, Schedule: sc.ID,
				Start: full.Start, End: full.End}); err != nil {
				return time.Time{}, err
			}
			if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO handoffs(schedule_id, user_id, shift_start, shift_end, sent_at) VALUES (?, ?, ?, ?, ?)`,
				sc.ID, sh.User, ms(sh.Start), ms(full.End), ms(now)); err != nil {
				return time.Time{}, fmt.Errorf("record handoff: %w", err)
			}
		}
		if nx := sc.Next(now); len(nx) > 0 && (next.IsZero() || nx[0].Start.Before(next)) {
			next = nx[0].Start
		}
	}
	return next, nil
}

// deliverHandoff tells the incoming person, by Slack DM or in the log.
func (s *Service) deliverHandoff(ctx context.Context, m message) error {
	sc, err := loadSchedule(ctx, s.db, m.Schedule)
	if errors.Is(err, ErrNotFound) {
		return nil // the schedule is gone: nobody is coming on call for it
	}
	if err != nil {
		return err
	}
	loc := sc.Location()
	text := fmt.Sprintf("You are on call for %s from %s until %s.", sc.ID,
		m.Start.In(loc).Format("Mon 2 Jan 15:04 MST"), m.End.In(loc).Format("Mon 2 Jan 15:04 MST"))
	u, err := s.GetUser(ctx, m.User)
	if err != nil {
		u = &User{ID: m.User, Name: m.User}
	}
	target, err := s.slackTarget(ctx, u)
	if err != nil {
		return err
	}
	if target == "" {
		s.logger.Info("handoff", "schedule", sc.ID, "to", u.ID, "start", m.Start, "end", m.End)
		return nil
	}
	if _, _, err := s.slack.api.PostMessageContext(ctx, target, slack.MsgOptionText(text, false)); err != nil {
		return slackError(fmt.Errorf("handoff to %s: %w", u.ID, err))
	}
	return nil
}

// Handoffs lists the handoff notifications sent for a schedule, newest
// first.
func (s *Service) Handoffs(ctx context.Context, schedule string) ([]Handoff, error) {
	if _, err := getSchedule(ctx, s.db, schedule); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, shift_start, shift_end, sent_at FROM handoffs WHERE schedule_id = ? ORDER BY shift_start DESC, user_id LIMIT 200`, schedule)
	if err != nil {
		return nil, fmt.Errorf("read handoffs: %w", err)
	}
	defer rows.Close()
	out := []Handoff{}
	for rows.Next() {
		h := Handoff{Schedule: schedule}
		var st, en, sent int64
		if err := rows.Scan(&h.User, &st, &en, &sent); err != nil {
			return nil, err
		}
		h.Start, h.End, h.SentAt = fromMS(st), fromMS(en), fromMS(sent)
		out = append(out, h)
	}
	return out, rows.Err()
}
