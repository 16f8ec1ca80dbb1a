package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// User is a person who can be on call.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// SlackID is the Slack member ID (U012AB3CD). Without it, Slack users
	// are matched by email through users.lookupByEmail.
	SlackID string `json:"slack_id,omitempty"`
}

func (u *User) validate() error {
	if err := validID("id", u.ID); err != nil {
		return err
	}
	if strings.TrimSpace(u.Name) == "" {
		return invalid("name", "must not be empty")
	}
	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			return invalid("email", "%q is not an email address", u.Email)
		}
	}
	return nil
}

func getUser(ctx context.Context, q querier, id string) (*User, error) {
	var u User
	err := q.QueryRowContext(ctx, `SELECT id, name, email, slack_id FROM users WHERE id = ?`, id).Scan(&u.ID, &u.Name, &u.Email, &u.SlackID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", id, err)
	}
	return &u, nil
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	return getUser(ctx, s.db, id)
}

// Users lists users by ID.
func (s *Service) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, email, slack_id FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []*User{}
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.SlackID); err != nil {
			return nil, err
		}
		out = append(out, &u)
	}
	return out, rows.Err()
}

// PutUser creates or replaces a user.
func (s *Service) PutUser(ctx context.Context, u *User) error {
	if err := u.validate(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users(id, name, email, slack_id) VALUES (?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email, slack_id = excluded.slack_id`,
		u.ID, u.Name, u.Email, u.SlackID)
	if err != nil {
		return fmt.Errorf("save user %q: %w", u.ID, err)
	}
	return nil
}

// userBySlack finds the user with a Slack member ID, or by email.
func (s *Service) userBySlack(ctx context.Context, slackID, email string) (*User, error) {
	var u User
	err := s.db.QueryRowContext(ctx, `SELECT id, name, email, slack_id FROM users WHERE (slack_id != '' AND slack_id = ?) OR (email != '' AND lower(email) = lower(?)) ORDER BY slack_id = ? DESC LIMIT 1`,
		slackID, email, slackID).Scan(&u.ID, &u.Name, &u.Email, &u.SlackID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("slack user %s: %w", slackID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if u.SlackID == "" && slackID != "" {
		// Remember the match so the next lookup needs no Slack call.
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET slack_id = ? WHERE id = ?`, slackID, u.ID); err == nil {
			u.SlackID = slackID
		}
	}
	return &u, nil
}

func getSchedule(ctx context.Context, q querier, id string) (*Schedule, error) {
	var spec string
	err := q.QueryRowContext(ctx, `SELECT spec FROM schedules WHERE id = ?`, id).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("schedule %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read schedule %q: %w", id, err)
	}
	var sc Schedule
	if err := json.Unmarshal([]byte(spec), &sc); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", id, err)
	}
	return &sc, nil
}

// loadSchedule reads a schedule with its overrides and compiles it.
func loadSchedule(ctx context.Context, q querier, id string) (*Schedule, error) {
	sc, err := getSchedule(ctx, q, id)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT id, user_id, replaces, starts_at, ends_at, note, created_by FROM overrides WHERE schedule_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("read overrides of %q: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Override
		var st, en int64
		if err := rows.Scan(&o.ID, &o.User, &o.Replaces, &st, &en, &o.Note, &o.CreatedBy); err != nil {
			return nil, err
		}
		o.Start, o.End = fromMS(st), fromMS(en)
		sc.Overrides = append(sc.Overrides, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := sc.Prepare(); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", id, err)
	}
	return sc, nil
}

// Schedule returns a compiled schedule with its overrides.
func (s *Service) Schedule(ctx context.Context, id string) (*Schedule, error) {
	return loadSchedule(ctx, s.db, id)
}

// Schedules lists the schedules by ID.
func (s *Service) Schedules(ctx context.Context) ([]*Schedule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM schedules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := []*Schedule{}
	for _, id := range ids {
		sc, err := s.Schedule(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// PutSchedule creates or replaces a schedule's layers (its overrides stay).
// Every user it names must exist.
func (s *Service) PutSchedule(ctx context.Context, sc *Schedule) error {
	sc.Overrides = nil
	if err := s.cfg.Limits.checkSchedule(sc); err != nil {
		return err
	}
	if err := sc.Prepare(); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for i, l := range sc.Layers {
			for j, u := range l.Users {
				if _, err := getUser(ctx, tx, u); err != nil {
					return invalid(fmt.Sprintf("layers[%d].users[%d]", i, j), "%v", err)
				}
			}
		}
		spec, _ := json.Marshal(sc)
		_, err := tx.ExecContext(ctx, `INSERT INTO schedules(id, spec) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET spec = excluded.spec`,
			sc.ID, string(spec))
		return err
	})
	if err == nil {
		s.nudge() // the next handoff may have moved
	}
	return err
}

// DeleteSchedule removes a schedule and its overrides. It is a conflict
// while an escalation policy pages the schedule: the policy would page
// nobody.
func (s *Service) DeleteSchedule(ctx context.Context, id string) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := getSchedule(ctx, tx, id); err != nil {
			return err
		}
		pols, err := policiesPaging(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(pols) > 0 {
			return fmt.Errorf("schedule %q is used by escalation policy %s; change or delete the policy first: %w",
				id, strings.Join(pols, ", "), ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM overrides WHERE schedule_id = ?`, id); err != nil {
			return fmt.Errorf("delete overrides of %q: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete schedule %q: %w", id, err)
		}
		return nil
	})
	if err == nil {
		s.nudge() // its handoffs are gone
	}
	return err
}

// policiesPaging returns the IDs (quoted, in order) of the escalation
// policies with a step that pages schedule.
func policiesPaging(ctx context.Context, q querier, schedule string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, spec FROM escalation_policies ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read escalation policies: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, spec string
		if err := rows.Scan(&id, &spec); err != nil {
			return nil, err
		}
		var p Policy
		if err := json.Unmarshal([]byte(spec), &p); err != nil {
			return nil, fmt.Errorf("escalation policy %q: %w", id, err)
		}
	pol:
		for _, st := range p.Steps {
			for _, t := range st.Targets {
				if t.Type == TargetSchedule && t.ID == schedule {
					out = append(out, strconv.Quote(id))
					break pol
				}
			}
		}
	}
	return out, rows.Err()
}

// AddOverride puts o.User on call over [o.Start, o.End).
func (s *Service) AddOverride(ctx context.Context, schedule string, o Override) (*Override, error) {
	if err := o.validate(""); err != nil {
		return nil, err
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.roomForOverrides(ctx, tx, schedule, 1); err != nil {
			return err
		}
		var err error
		o.ID, err = insertOverride(ctx, tx, schedule, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	o.Start, o.End = o.Start.UTC(), o.End.UTC()
	return &o, nil
}

// roomForOverrides refuses n more overrides on a schedule already holding
// incidents.limits.max_overrides.
func (s *Service) roomForOverrides(ctx context.Context, q querier, schedule string, n int) error {
	var have int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM overrides WHERE schedule_id = ?`, schedule).Scan(&have); err != nil {
		return fmt.Errorf("count overrides of %q: %w", schedule, err)
	}
	if limit := s.cfg.Limits.MaxOverrides; have+n > limit {
		return invalid("overrides", "schedule %q holds %d overrides; %d more exceed the limit incidents.limits.max_overrides (%d): delete past ones first",
			schedule, have, n, limit)
	}
	return nil
}

func insertOverride(ctx context.Context, tx *sql.Tx, schedule string, o Override) (int64, error) {
	if _, err := getSchedule(ctx, tx, schedule); err != nil {
		return 0, err
	}
	if _, err := getUser(ctx, tx, o.User); err != nil {
		return 0, invalid("user", "%v", err)
	}
	if o.Replaces != "" {
		if _, err := getUser(ctx, tx, o.Replaces); err != nil {
			return 0, invalid("replaces", "%v", err)
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO overrides(schedule_id, user_id, replaces, starts_at, ends_at, note, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		schedule, o.User, o.Replaces, ms(o.Start), ms(o.End), o.Note, o.CreatedBy)
	if err != nil {
		return 0, fmt.Errorf("save override: %w", err)
	}
	return res.LastInsertId()
}

// DeleteOverride removes one override.
func (s *Service) DeleteOverride(ctx context.Context, schedule string, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM overrides WHERE schedule_id = ? AND id = ?`, schedule, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("override %d of schedule %q: %w", id, schedule, ErrNotFound)
	}
	s.nudge()
	return nil
}

// Swap is two people exchanging shifts: the shift of A holding AAt goes to
// B and the shift of B holding BAt goes to A.
type Swap struct {
	A   string    `json:"a"`
	AAt time.Time `json:"a_at"`
	B   string    `json:"b"`
	BAt time.Time `json:"b_at"`
	// By is who swaps; recorded as both overrides' CreatedBy.
	By string `json:"by,omitempty"`
}

// SwapShifts records a swap as two overrides, so every reader (who is on
// call, next, escalation, iCal) sees it.
func (s *Service) SwapShifts(ctx context.Context, schedule string, sw Swap) ([]Override, error) {
	if sw.A == "" || sw.B == "" || sw.A == sw.B {
		return nil, invalid("b", "a swap needs two different people a and b")
	}
	var out []Override
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		sc, err := loadSchedule(ctx, tx, schedule)
		if err != nil {
			return err
		}
		sa, ok := sc.ShiftAt(sw.A, sw.AAt)
		if !ok {
			return invalid("a_at", "%s is not on call in %s at %s", sw.A, schedule, sw.AAt.Format(time.RFC3339))
		}
		sb, ok := sc.ShiftAt(sw.B, sw.BAt)
		if !ok {
			return invalid("b_at", "%s is not on call in %s at %s", sw.B, schedule, sw.BAt.Format(time.RFC3339))
		}
		if sa.Start.Before(sb.End) && sb.Start.Before(sa.End) {
			return invalid("b_at", "the two shifts overlap; nothing to swap")
		}
		if err := s.roomForOverrides(ctx, tx, schedule, 2); err != nil {
			return err
		}
		note := fmt.Sprintf("swap of %s and %s", sw.A, sw.B)
		for _, o := range []Override{
			{User: sw.B, Replaces: sw.A, Start: sa.Start, End: sa.End, Note: note, CreatedBy: sw.By},
			{User: sw.A, Replaces: sw.B, Start: sb.Start, End: sb.End, Note: note, CreatedBy: sw.By},
		} {
			id, err := insertOverride(ctx, tx, schedule, o)
			if err != nil {
				return err
			}
			o.ID = id
			out = append(out, o)
		}
		return nil
	})
	if err == nil {
		s.nudge()
	}
	return out, err
}

// OnCall is who is on call in one schedule now and next.
type OnCall struct {
	Schedule string    `json:"schedule"`
	At       time.Time `json:"at"`
	Users    []*User   `json:"users"`
	Next     []Shift   `json:"next,omitempty"`
}

// WhoIsOnCall answers for every schedule (or one) at t.
func (s *Service) WhoIsOnCall(ctx context.Context, schedule string, t time.Time) ([]OnCall, error) {
	var scs []*Schedule
	if schedule != "" {
		sc, err := s.Schedule(ctx, schedule)
		if err != nil {
			return nil, err
		}
		scs = []*Schedule{sc}
	} else {
		var err error
		if scs, err = s.Schedules(ctx); err != nil {
			return nil, err
		}
	}
	out := []OnCall{}
	for _, sc := range scs {
		oc := OnCall{Schedule: sc.ID, At: t.UTC(), Users: []*User{}, Next: sc.Next(t)}
		for _, id := range sc.OnCallAt(t) {
			u, err := s.GetUser(ctx, id)
			if err != nil {
				u = &User{ID: id, Name: id}
			}
			oc.Users = append(oc.Users, u)
		}
		out = append(out, oc)
	}
	return out, nil
}
