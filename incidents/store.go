package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func optMS(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}

// NewIncident is what a person declaring an incident gives.
type NewIncident struct {
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Service  string `json:"service"`
	SLO      string `json:"slo"`
	// ImpactStartedAt defaults to the trigger time.
	ImpactStartedAt *time.Time `json:"impact_started_at"`
	Commander       string     `json:"commander"`
	// EscalationPolicy to follow (empty: none).
	EscalationPolicy string `json:"escalation_policy"`
	By               string `json:"by"`

	groupKey string
	links    Links
	source   string
	text     string
}

func (n *NewIncident) validate() (Severity, error) {
	if strings.TrimSpace(n.Title) == "" {
		return "", invalid("title", "must not be empty")
	}
	sev, err := ParseSeverity(n.Severity)
	if err != nil {
		return "", invalid("severity", "%v", err)
	}
	return sev, nil
}

const incidentColumns = `id, title, severity, status, service, slo, group_key, commander, links,
	impact_started_at, triggered_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
	alert_resolved_at, escalation_policy, updated_at`

type scanner interface{ Scan(...any) error }

func scanIncident(r scanner) (*Incident, error) {
	var (
		inc                          Incident
		links                        string
		impact, trig, ack, res, ares int64
		upd                          int64
	)
	if err := r.Scan(&inc.ID, &inc.Title, &inc.Severity, &inc.Status, &inc.Service, &inc.SLO, &inc.GroupKey,
		&inc.Commander, &links, &impact, &trig, &ack, &inc.AcknowledgedBy, &res, &inc.ResolvedBy,
		&ares, &inc.EscalationPolicy, &upd); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(links), &inc.Links); err != nil {
		return nil, fmt.Errorf("incident %d links: %w", inc.ID, err)
	}
	inc.ImpactStartedAt = optMS(impact)
	inc.TriggeredAt = fromMS(trig)
	inc.AcknowledgedAt = optMS(ack)
	inc.ResolvedAt = optMS(res)
	inc.AlertResolvedAt = optMS(ares)
	inc.UpdatedAt = fromMS(upd)
	inc.derive()
	return &inc, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getIncident(ctx context.Context, q querier, id int64) (*Incident, error) {
	inc, err := scanIncident(q.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read incident %d: %w", id, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT user_id, role, added_at FROM participants WHERE incident_id = ? ORDER BY added_at, user_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read participants of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Participant
		var at int64
		if err := rows.Scan(&p.User, &p.Role, &at); err != nil {
			return nil, err
		}
		p.AddedAt = fromMS(at)
		inc.People = append(inc.People, p)
	}
	return inc, rows.Err()
}

func openIncidentByGroup(ctx context.Context, q querier, key string) (*Incident, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM incidents WHERE group_key = ? AND status != 'resolved'`, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find incident of group: %w", err)
	}
	return getIncident(ctx, q, id)
}

func addEvent(ctx context.Context, q querier, e Event) error {
	_, err := q.ExecContext(ctx, `INSERT INTO timeline(incident_id, at, kind, source, actor, text) VALUES (?, ?, ?, ?, ?, ?)`,
		e.IncidentID, ms(e.At), e.Kind, e.Source, e.Actor, e.Text)
	if err != nil {
		return fmt.Errorf("add timeline event: %w", err)
	}
	return nil
}

func addParticipant(ctx context.Context, q querier, id int64, user, role string, at time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO participants(incident_id, user_id, role, added_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(incident_id, user_id) DO UPDATE SET role = excluded.role`, id, user, role, ms(at))
	if err != nil {
		return fmt.Errorf("add participant: %w", err)
	}
	return nil
}

// create inserts an incident and its first timeline event.
func (s *Service) create(ctx context.Context, tx *sql.Tx, n NewIncident, sev Severity, now time.Time) (int64, error) {
	links, _ := json.Marshal(n.links)
	impact := now
	if n.ImpactStartedAt != nil && !n.ImpactStartedAt.IsZero() && n.ImpactStartedAt.Before(now) {
		impact = *n.ImpactStartedAt
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO incidents(title, severity, status, service, slo, group_key, commander, links,
		impact_started_at, triggered_at, escalation_policy, updated_at) VALUES (?, ?, 'triggered', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.Title, sev, n.Service, n.SLO, n.groupKey, n.Commander, string(links), ms(impact), ms(now), n.EscalationPolicy, ms(now))
	if err != nil {
		return 0, fmt.Errorf("insert incident: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	text := n.text
	if text == "" {
		text = fmt.Sprintf("Incident declared: %s (%s)", n.Title, sev)
	}
	if err := addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventTriggered, Source: n.source, Actor: n.By, Text: text}); err != nil {
		return 0, err
	}
	if n.Commander != "" {
		if err := addParticipant(ctx, tx, id, n.Commander, RoleCommander, now); err != nil {
			return 0, err
		}
	}
	if n.EscalationPolicy != "" {
		if err := s.startEscalation(ctx, tx, id, n.EscalationPolicy, now); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// Declare opens an incident by hand.
func (s *Service) Declare(ctx context.Context, n NewIncident) (*Incident, error) {
	sev, err := n.validate()
	if err != nil {
		return nil, err
	}
	if n.EscalationPolicy != "" {
		if _, err := s.GetPolicy(ctx, n.EscalationPolicy); err != nil {
			return nil, &FieldError{Field: "escalation_policy", Msg: err.Error()}
		}
	}
	if n.source == "" {
		n.source = "api"
	}
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = s.create(ctx, tx, n, sev, s.now().UTC())
		return err
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.metrics.opened(sev)
	return s.Get(ctx, id)
}

// Get returns one incident.
func (s *Service) Get(ctx context.Context, id int64) (*Incident, error) {
	return getIncident(ctx, s.db, id)
}

// ByGroup returns the open incident of an alert group (ErrNotFound if
// none), whichever route the group key came through.
func (s *Service) ByGroup(ctx context.Context, key string) (*Incident, error) {
	inc, err := openIncidentByGroup(ctx, s.db, DedupKey(key))
	if err != nil {
		return nil, err
	}
	if inc == nil {
		return nil, fmt.Errorf("open incident of group %q: %w", key, ErrNotFound)
	}
	return inc, nil
}

// Filter selects incidents for List.
type Filter struct {
	// Status is empty (all), "open" (not resolved) or one status.
	Status   string
	Severity string
	Service  string
	Limit    int
	// Before, when set, lists only incidents with a lower ID: the page
	// after the one that ended with incident Before.
	Before int64
}

// List returns incidents, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*Incident, error) {
	var where []string
	var args []any
	switch f.Status {
	case "":
	case "open":
		where = append(where, "status != 'resolved'")
	case string(StatusTriggered), string(StatusAcknowledged), string(StatusResolved):
		where = append(where, "status = ?")
		args = append(args, f.Status)
	default:
		return nil, invalid("status", "%q is not one of open, triggered, acknowledged, resolved", f.Status)
	}
	if f.Severity != "" {
		sev, err := ParseSeverity(f.Severity)
		if err != nil {
			return nil, invalid("severity", "%v", err)
		}
		where = append(where, "severity = ?")
		args = append(args, sev)
	}
	if f.Service != "" {
		where = append(where, "service = ?")
		args = append(args, f.Service)
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	q := `SELECT id FROM incidents`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]*Incident, 0, len(ids))
	for _, id := range ids {
		inc, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	return out, nil
}

// Timeline returns an incident's events in time order.
func (s *Service) Timeline(ctx context.Context, id int64) ([]Event, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, incident_id, at, kind, source, actor, text FROM timeline WHERE incident_id = ? ORDER BY at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("read timeline of %d: %w", id, err)
	}
	return scanEvents(rows)
}

// scanEvents reads timeline rows (id, incident_id, at, kind, source,
// actor, text) and closes them.
func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &e.IncidentID, &at, &e.Kind, &e.Source, &e.Actor, &e.Text); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Actor is who changes an incident and through what (api, cli, slack).
type Actor struct {
	By     string
	Source string
}

func (a Actor) orDefault() Actor {
	if a.Source == "" {
		a.Source = "api"
	}
	if a.By == "" {
		a.By = a.Source
	}
	return a
}

// change runs fn on an incident inside one transaction: the read, the
// status check and the write cannot interleave with another change.
func (s *Service) change(ctx context.Context, id int64, fn func(tx *sql.Tx, inc *Incident, now time.Time) error) (*Incident, error) {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		inc, err := getIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if err := fn(tx, inc, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE incidents SET updated_at = ? WHERE id = ?`, ms(now), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.nudge() // a timeline event for the webhooks
	return s.Get(ctx, id)
}

// Acknowledge moves a triggered incident to acknowledged, which stops its
// escalation. Acknowledging an acknowledged or resolved incident is a
// conflict naming who did it.
func (s *Service) Acknowledge(ctx context.Context, id int64, a Actor) (*Incident, error) {
	a = a.orDefault()
	first := false
	inc, err := s.change(ctx, id, func(tx *sql.Tx, inc *Incident, now time.Time) error {
		first = inc.AcknowledgedAt == nil
		switch inc.Status {
		case StatusAcknowledged:
			return fmt.Errorf("incident %d is already acknowledged by %s: %w", id, inc.AcknowledgedBy, ErrConflict)
		case StatusResolved:
			return fmt.Errorf("incident %d is resolved; re-open it first: %w", id, ErrConflict)
		}
		ackAt := ms(now)
		if inc.AcknowledgedAt != nil {
			ackAt = ms(*inc.AcknowledgedAt) // MTTA counts the first acknowledgement
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? WHERE id = ?`,
			ackAt, a.By, id); err != nil {
			return fmt.Errorf("acknowledge %d: %w", id, err)
		}
		if err := addParticipant(ctx, tx, id, a.By, RoleResponder, now); err != nil {
			return err
		}
		if err := armAckTimeout(ctx, tx, inc, now); err != nil {
			return err
		}
		// The escalation's next step stays recorded but does not run while
		// the incident is acknowledged (claimDue drops it when due), so
		// Escalate can still reach the next level.
		return addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventAcknowledged, Source: a.Source, Actor: a.By,
			Text: "Acknowledged by " + a.By})
	})
	if err == nil && first {
		s.metrics.acknowledged(inc)
	}
	return inc, err
}

// Resolve resolves an open incident and stops its escalation.
func (s *Service) Resolve(ctx context.Context, id int64, a Actor, text string) (*Incident, error) {
	a = a.orDefault()
	inc, err := s.change(ctx, id, func(tx *sql.Tx, inc *Incident, now time.Time) error {
		if inc.Status == StatusResolved {
			return fmt.Errorf("incident %d is already resolved by %s: %w", id, inc.ResolvedBy, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'resolved', resolved_at = ?, resolved_by = ? WHERE id = ?`,
			ms(now), a.By, id); err != nil {
			return fmt.Errorf("resolve %d: %w", id, err)
		}
		if err := stopEscalation(ctx, tx, id); err != nil {
			return err
		}
		if err := disarmAckTimeout(ctx, tx, id); err != nil {
			return err
		}
		msg := "Resolved by " + a.By
		if text != "" {
			msg += ": " + text
		}
		return addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventResolved, Source: a.Source, Actor: a.By, Text: msg})
	})
	if err == nil {
		s.metrics.resolved(inc)
	}
	return inc, err
}

// Reopen moves a resolved incident back to triggered and restarts its
// escalation. Only a resolved incident can be re-opened: anything else is
// a conflict naming its status (an acknowledged incident is being worked
// on; paging again would wake people for nothing). It is also a conflict
// while another incident of the same alert group is open.
func (s *Service) Reopen(ctx context.Context, id int64, a Actor, text string) (*Incident, error) {
	a = a.orDefault()
	inc, err := s.change(ctx, id, func(tx *sql.Tx, inc *Incident, now time.Time) error {
		if inc.Status != StatusResolved {
			return fmt.Errorf("incident %d is %s, only a resolved incident can be reopened: %w", id, inc.Status, ErrConflict)
		}
		return s.retrigger(ctx, tx, inc, now, a, EventReopened, "Re-opened by "+a.By+withText(text))
	})
	if err == nil {
		s.nudge()
		s.metrics.opened(inc.Severity)
	}
	return inc, err
}

func withText(t string) string {
	if t == "" {
		return ""
	}
	return ": " + t
}

// retrigger puts a resolved incident back to triggered (or an acknowledged
// one whose alert fires again) and restarts its escalation from step one.
func (s *Service) retrigger(ctx context.Context, tx *sql.Tx, inc *Incident, now time.Time, a Actor, kind, text string) error {
	if inc.Status == StatusTriggered {
		return fmt.Errorf("incident %d is not resolved: %w", inc.ID, ErrConflict)
	}
	if inc.Status == StatusResolved && inc.GroupKey != "" {
		other, err := openIncidentByGroup(ctx, tx, inc.GroupKey)
		if err != nil {
			return err
		}
		if other != nil {
			return fmt.Errorf("incident %d of the same alert group is open: %w", other.ID, ErrConflict)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'triggered', resolved_at = 0, resolved_by = '', alert_resolved_at = 0 WHERE id = ?`,
		inc.ID); err != nil {
		return fmt.Errorf("re-open %d: %w", inc.ID, err)
	}
	if inc.EscalationPolicy != "" {
		if err := s.startEscalation(ctx, tx, inc.ID, inc.EscalationPolicy, now); err != nil {
			return err
		}
	}
	return addEvent(ctx, tx, Event{IncidentID: inc.ID, At: now, Kind: kind, Source: a.Source, Actor: a.By, Text: text})
}

// AddNote adds a note to the timeline.
func (s *Service) AddNote(ctx context.Context, id int64, a Actor, text string) (*Incident, error) {
	a = a.orDefault()
	if strings.TrimSpace(text) == "" {
		return nil, invalid("text", "must not be empty")
	}
	return s.change(ctx, id, func(tx *sql.Tx, _ *Incident, now time.Time) error {
		return addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventNote, Source: a.Source, Actor: a.By, Text: text})
	})
}

// Assign gives a person a role; the commander role moves (one commander).
func (s *Service) Assign(ctx context.Context, id int64, a Actor, user, role string) (*Incident, error) {
	a = a.orDefault()
	if strings.TrimSpace(user) == "" {
		return nil, invalid("user", "must not be empty")
	}
	if role == "" {
		role = RoleResponder
	}
	if !validRole(role) {
		return nil, invalid("role", "%q is not one of commander, scribe, liaison, responder", role)
	}
	return s.change(ctx, id, func(tx *sql.Tx, inc *Incident, now time.Time) error {
		if role == RoleCommander {
			if inc.Commander != "" && inc.Commander != user {
				if _, err := tx.ExecContext(ctx, `UPDATE participants SET role = 'responder' WHERE incident_id = ? AND user_id = ?`, id, inc.Commander); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET commander = ? WHERE id = ?`, user, id); err != nil {
				return err
			}
		}
		if err := addParticipant(ctx, tx, id, user, role, now); err != nil {
			return err
		}
		return addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: EventAssigned, Source: a.Source, Actor: a.By,
			Text: fmt.Sprintf("%s is %s (set by %s)", user, role, a.By)})
	})
}

// Record adds an event from elsewhere (a demo fault, a deploy) to the
// timelines of the open incidents of a service.
func (s *Service) Record(ctx context.Context, service, kind, source, text string) error {
	if service == "" || text == "" {
		return invalid("service", "service and text are required")
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM incidents WHERE service = ? AND status != 'resolved'`, service)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		now := s.now().UTC()
		for _, id := range ids {
			if err := addEvent(ctx, tx, Event{IncidentID: id, At: now, Kind: kind, Source: source, Text: text}); err != nil {
				return err
			}
		}
		s.nudge() // timeline events for the webhooks, sent after this commits (one connection)
		return nil
	})
}
