package incidents

import (
	"context"
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

// runHandoffs notifies the people whose shift has just begun (once each,
// recorded in SQLite) and returns the next handoff instant (zero: none).
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
			full, ok := sc.ShiftAt(sh.User, now)
			if !ok {
				full = sh
			}
			res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO handoffs(schedule_id, user_id, shift_start, shift_end, sent_at) VALUES (?, ?, ?, ?, ?)`,
				sc.ID, sh.User, ms(sh.Start), ms(full.End), ms(now))
			if err != nil {
				return time.Time{}, fmt.Errorf("record handoff: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				s.sendHandoff(ctx, sc, full)
			}
		}
		if nx := sc.Next(now); len(nx) > 0 && (next.IsZero() || nx[0].Start.Before(next)) {
			next = nx[0].Start
		}
	}
	return next, nil
}

// sendHandoff tells the incoming person, by Slack DM or in the log.
func (s *Service) sendHandoff(ctx context.Context, sc *Schedule, sh Shift) {
	loc := sc.Location()
	text := fmt.Sprintf("You are on call for %s from %s until %s.", sc.ID,
		sh.Start.In(loc).Format("Mon 2 Jan 15:04 MST"), sh.End.In(loc).Format("Mon 2 Jan 15:04 MST"))
	u, err := s.GetUser(ctx, sh.User)
	if err != nil {
		u = &User{ID: sh.User, Name: sh.User}
	}
	target := s.slackTarget(ctx, u)
	if target == "" {
		s.logger.Info("handoff", "schedule", sc.ID, "to", u.ID, "start", sh.Start, "end", sh.End)
		return
	}
	if _, _, err := s.slack.api.PostMessageContext(ctx, target, slack.MsgOptionText(text, false)); err != nil {
		s.logger.Warn("handoff: Slack message failed", "schedule", sc.ID, "to", u.ID, "err", err)
	}
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
