package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Policy is an escalation policy: ordered steps, each notifying its
// targets and then waiting; after the last step the policy starts over,
// Repeat more times. Acknowledging or resolving the incident stops it; a
// re-trigger starts it again from the first step.
type Policy struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Repeat is how many more times the steps run after the first pass (K).
	Repeat int    `json:"repeat"`
	Steps  []Step `json:"steps"`
	// AckTimeoutMinutes, when above zero, re-triggers an incident that
	// stays acknowledged (unresolved) that long; its escalation starts
	// over from the first step (acktimeout.go). Zero, the default, never.
	AckTimeoutMinutes float64 `json:"ack_timeout_minutes,omitempty"`
}

// Step notifies its targets, then waits WaitMinutes for an acknowledgement
// before the next step.
type Step struct {
	Targets []Target `json:"targets"`
	// WaitMinutes may be fractional (0.5 is 30 seconds).
	WaitMinutes float64 `json:"wait_minutes"`
}

// Wait is the step's wait as a duration.
func (st Step) Wait() time.Duration { return time.Duration(st.WaitMinutes * float64(time.Minute)) }

// Target types.
const (
	TargetSchedule = "schedule"
	TargetUser     = "user"
	TargetChannel  = "channel"
)

// Target is who a step notifies: the on-call of a schedule, a user, or a
// Slack channel.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

func validID(field, id string) error {
	if !idPattern.MatchString(id) {
		return invalid(field, "%q must be 1-64 letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

// validate checks the policy's shape; references are checked by the store.
func (p *Policy) validate() error {
	if err := validID("id", p.ID); err != nil {
		return err
	}
	if p.Repeat < 0 || p.Repeat > 20 {
		return invalid("repeat", "%d is outside 0..20", p.Repeat)
	}
	if !(p.AckTimeoutMinutes >= 0) || p.AckTimeoutMinutes > 24*60 {
		return invalid("ack_timeout_minutes", "%v is outside 0 (never) to 1440", p.AckTimeoutMinutes)
	}
	if len(p.Steps) == 0 {
		return invalid("steps", "must not be empty")
	}
	for i, st := range p.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		if len(st.Targets) == 0 {
			return invalid(f+".targets", "must not be empty")
		}
		if !(st.WaitMinutes > 0) || st.WaitMinutes > 24*60 {
			return invalid(f+".wait_minutes", "%v is outside (0, 1440]", st.WaitMinutes)
		}
		for j, t := range st.Targets {
			tf := fmt.Sprintf("%s.targets[%d]", f, j)
			switch t.Type {
			case TargetSchedule, TargetUser, TargetChannel:
			default:
				return invalid(tf+".type", "%q is not one of schedule, user, channel", t.Type)
			}
			if strings.TrimSpace(t.ID) == "" {
				return invalid(tf+".id", "must not be empty")
			}
		}
	}
	return nil
}

func getPolicy(ctx context.Context, q querier, id string) (*Policy, error) {
	var spec string
	err := q.QueryRowContext(ctx, `SELECT spec FROM escalation_policies WHERE id = ?`, id).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("escalation policy %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read escalation policy %q: %w", id, err)
	}
	var p Policy
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return nil, fmt.Errorf("escalation policy %q: %w", id, err)
	}
	return &p, nil
}

// GetPolicy returns one escalation policy.
func (s *Service) GetPolicy(ctx context.Context, id string) (*Policy, error) {
	return getPolicy(ctx, s.db, id)
}

// Policies lists the escalation policies by ID.
func (s *Service) Policies(ctx context.Context) ([]*Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT spec FROM escalation_policies ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list escalation policies: %w", err)
	}
	defer rows.Close()
	out := []*Policy{}
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, err
		}
		var p Policy
		if err := json.Unmarshal([]byte(spec), &p); err != nil {
			return nil, err
		}
		out = append(out, &p)
	}
	return out, rows.Err()
}

// PutPolicy creates or replaces a policy. Every user and schedule it names
// must exist.
func (s *Service) PutPolicy(ctx context.Context, p *Policy) error {
	if err := p.validate(); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for i, st := range p.Steps {
			for j, t := range st.Targets {
				var err error
				switch t.Type {
				case TargetUser:
					_, err = getUser(ctx, tx, t.ID)
				case TargetSchedule:
					_, err = getSchedule(ctx, tx, t.ID)
				}
				if err != nil {
					return invalid(fmt.Sprintf("steps[%d].targets[%d].id", i, j), "%v", err)
				}
			}
		}
		spec, _ := json.Marshal(p)
		_, err := tx.ExecContext(ctx, `INSERT INTO escalation_policies(id, spec) VALUES (?, ?)
			ON CONFLICT(id) DO UPDATE SET spec = excluded.spec`, p.ID, string(spec))
		return err
	})
}

// DeletePolicy removes a policy; escalations in progress under it stop.
func (s *Service) DeletePolicy(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM escalation_policies WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("escalation policy %q: %w", id, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM escalations WHERE policy_id = ?`, id)
		return err
	})
}

// startEscalation (re)starts an incident's escalation at the first step,
// due now.
func (s *Service) startEscalation(ctx context.Context, q querier, incident int64, policy string, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO escalations(incident_id, policy_id, step, round, due_at) VALUES (?, ?, 0, 0, ?)
		ON CONFLICT(incident_id) DO UPDATE SET policy_id = excluded.policy_id, step = 0, round = 0, due_at = excluded.due_at`,
		incident, policy, ms(now))
	if err != nil {
		return fmt.Errorf("start escalation of %d: %w", incident, err)
	}
	return nil
}

func stopEscalation(ctx context.Context, q querier, incident int64) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM escalations WHERE incident_id = ?`, incident); err != nil {
		return fmt.Errorf("stop escalation of %d: %w", incident, err)
	}
	return nil
}

// Escalation is the next step of an incident's escalation.
type Escalation struct {
	IncidentID int64     `json:"incident_id"`
	Policy     string    `json:"policy"`
	Step       int       `json:"step"`
	Round      int       `json:"round"`
	DueAt      time.Time `json:"due_at"`
}

// PendingEscalation returns the next step of an incident's escalation.
func (s *Service) PendingEscalation(ctx context.Context, incident int64) (*Escalation, error) {
	var e Escalation
	var due int64
	err := s.db.QueryRowContext(ctx, `SELECT incident_id, policy_id, step, round, due_at FROM escalations WHERE incident_id = ?`, incident).
		Scan(&e.IncidentID, &e.Policy, &e.Step, &e.Round, &due)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("escalation of incident %d: %w", incident, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	e.DueAt = fromMS(due)
	return &e, nil
}

// EscalateNow makes the incident's next escalation step due now (the
// Escalate button): an acknowledged incident goes back to triggered and
// its next level is paged. With no steps left the policy starts over.
func (s *Service) EscalateNow(ctx context.Context, id int64, a Actor) (*Incident, error) {
	a = a.orDefault()
	inc, err := s.change(ctx, id, func(tx *sql.Tx, inc *Incident, now time.Time) error {
		if inc.Status == StatusResolved {
			return fmt.Errorf("incident %d is resolved: %w", id, ErrConflict)
		}
		if inc.EscalationPolicy == "" {
			return fmt.Errorf("incident %d has no escalation policy: %w", id, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'triggered' WHERE id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE escalations SET due_at = ? WHERE incident_id = ?`, ms(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if err := s.startEscalation(ctx, tx, id, inc.EscalationPolicy, now); err != nil {
				return err
			}
		}
		return addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventEscalated, Source: a.Source, Actor: a.By,
			Text: "Escalated by " + a.By})
	})
	if err == nil {
		s.nudge()
	}
	return inc, err
}

// page is one notification an escalation step sends.
type page struct {
	incident *Incident
	user     *User  // set for people
	channel  string // set for channels
	step     int
	round    int
	reason   string
}

// claimDue takes the earliest due escalation step, queues its pages in the
// delivery queue (pager.go), advances the escalation past it and records
// the step in the timeline, all in one transaction. The pages are queued
// under the step's identity before the claim commits: a crash in between
// leaves the step due, and claiming it again queues nothing twice. It
// returns the next deadline when nothing is due.
func (s *Service) claimDue(ctx context.Context) (time.Time, error) {
	var next time.Time
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		var e Escalation
		var due int64
		err := tx.QueryRowContext(ctx, `SELECT incident_id, policy_id, step, round, due_at FROM escalations ORDER BY due_at, incident_id LIMIT 1`).
			Scan(&e.IncidentID, &e.Policy, &e.Step, &e.Round, &due)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read escalations: %w", err)
		}
		if due > ms(now) {
			next = fromMS(due)
			return nil
		}
		inc, err := getIncident(ctx, tx, e.IncidentID)
		if err != nil {
			return err
		}
		pol, err := getPolicy(ctx, tx, e.Policy)
		if err != nil || inc.Status != StatusTriggered || e.Step >= len(pol.Steps) {
			// Policy gone, incident no longer triggered, or policy shortened:
			// this escalation is over.
			next = now
			return stopEscalation(ctx, tx, e.IncidentID)
		}
		st := pol.Steps[e.Step]
		pages, err := s.resolveTargets(ctx, tx, inc, st, now)
		if err != nil {
			return err
		}
		for i := range pages {
			pages[i].step, pages[i].round = e.Step, e.Round
			if err := s.queuePage(ctx, pages[i], due); err != nil {
				return err
			}
		}
		step, round := e.Step+1, e.Round
		if step == len(pol.Steps) {
			step, round = 0, round+1
		}
		if round > pol.Repeat {
			// Wait after the last step is over: nothing more to do.
			if err := stopEscalation(ctx, tx, e.IncidentID); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `UPDATE escalations SET step = ?, round = ?, due_at = ? WHERE incident_id = ?`,
			step, round, ms(now.Add(st.Wait())), e.IncidentID); err != nil {
			return err
		}
		var who []string
		for _, p := range pages {
			who = append(who, p.describe())
		}
		if len(who) == 0 {
			who = append(who, "nobody (no one on call)")
		}
		next = now
		return addEvent(ctx, tx, Event{IncidentID: inc.ID, At: now, Kind: EventPaging, Source: "escalation",
			Text: fmt.Sprintf("Escalation %s step %d/%d (round %d of %d): paging %s", pol.ID, e.Step+1, len(pol.Steps),
				e.Round+1, pol.Repeat+1, strings.Join(who, ", "))})
	})
	return next, err
}

func (p page) describe() string {
	how := "log"
	if p.channel != "" {
		return "#" + p.channel + " (Slack channel)"
	}
	if p.user.SlackID != "" || p.user.Email != "" {
		how = "Slack DM"
	}
	return p.user.ID + " (" + p.reason + ", " + how + ")"
}

// resolveTargets turns a step's targets into pages: a schedule's on-call
// people at now (overrides and swaps honoured), a user, a channel.
func (s *Service) resolveTargets(ctx context.Context, q querier, inc *Incident, st Step, now time.Time) ([]page, error) {
	var out []page
	seen := map[string]bool{}
	addUser := func(id, reason string) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		u, err := getUser(ctx, q, id)
		if err != nil {
			u = &User{ID: id, Name: id}
		}
		out = append(out, page{incident: inc, user: u, reason: reason})
		return nil
	}
	for _, t := range st.Targets {
		switch t.Type {
		case TargetUser:
			if err := addUser(t.ID, "named in the policy"); err != nil {
				return nil, err
			}
		case TargetChannel:
			out = append(out, page{incident: inc, channel: t.ID})
		case TargetSchedule:
			sc, err := loadSchedule(ctx, q, t.ID)
			if err != nil {
				s.logger.Warn("escalation: schedule not found", "schedule", t.ID, "incident", inc.ID, "err", err)
				continue
			}
			for _, u := range sc.OnCallAt(now) {
				if err := addUser(u, "on call for "+t.ID); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// ErrRunning is returned by Run when the Service already runs: its loop
// runs once.
var ErrRunning = errors.New("incidents: already running")

// Run runs escalation steps as they fall due, and queues notices for
// people coming on call, until ctx is cancelled. A step that fell due while
// the process was down runs once, at start; so does the handoff notice of a
// shift that began at most 15 minutes ago. Pages and notices go out through
// the delivery queue (DeliverThrough), which must be set. Run runs once:
// a second call returns ErrRunning.
func (s *Service) Run(ctx context.Context) error {
	if s.pageQueue() == nil {
		return errors.New("incidents: no delivery queue: DeliverThrough must be called before Run")
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	if err := s.moveLegacyPages(ctx); err != nil {
		return err
	}
	for {
		next, err := s.runDue(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Error("escalation", "err", err)
			next = s.now().Add(5 * time.Second)
		}
		handoff, err := s.runHandoffs(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Error("handoff notifications", "err", err)
			handoff = s.now().Add(5 * time.Second)
		}
		if !handoff.IsZero() && (next.IsZero() || handoff.Before(next)) {
			next = handoff
		}
		next = s.withAckTimeouts(ctx, next)
		if s.sendsEvents() {
			// Timeline events go to the webhooks; a few are written
			// without a nudge (deliveries), so look again every second.
			if err := s.forwardEvents(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("incident webhooks", "err", err)
			}
			if poll := s.now().Add(time.Second); next.IsZero() || poll.Before(next) {
				next = poll
			}
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(s.now()), 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-s.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// runDue claims every due step (queueing its pages) and returns the next
// deadline (zero: none).
func (s *Service) runDue(ctx context.Context) (time.Time, error) {
	for {
		next, err := s.claimDue(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if next.IsZero() || next.After(s.now()) {
			return next, nil
		}
	}
}
