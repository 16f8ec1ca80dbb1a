package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/burnrate/burnrate/alerting"
)

// ReceiverName is the name of the incidents receiver in alerting routes.
const ReceiverName = "incidents"

var _ alerting.Receiver = (*Service)(nil)

// Notify implements alerting.Receiver: a firing page opens an incident for
// its alert group, or attaches to the group's open incident; a resolved
// notification resolves it or records "alert resolved" (Config.
// OnAlertResolved). A notification already applied (same outbox ID) changes
// nothing, so the outbox may deliver twice.
func (s *Service) Notify(ctx context.Context, n *alerting.Notification) error {
	sev, escalate, ok := s.classify(n)
	if !ok {
		return nil
	}
	var opened, resolved *int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if n.ID != 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM notifications_seen WHERE id = ?`, n.ID).Scan(&one)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read notifications_seen: %w", err)
			}
		}
		now := s.now().UTC()
		inc, err := openIncidentByGroup(ctx, tx, DedupKey(n.GroupKey))
		if err != nil {
			return err
		}
		alertActor := Actor{By: "alertmanager", Source: "alert"}
		switch {
		case n.Status == alerting.StatusFiring && inc == nil:
			ni := s.fromNotification(n, sev)
			if escalate {
				ni.EscalationPolicy = s.policyFor(ctx, tx, n)
			}
			id, err := s.create(ctx, tx, ni, sev, now)
			if err != nil {
				return err
			}
			opened = &id
		case n.Status == alerting.StatusFiring && inc.AlertResolvedAt != nil && inc.Status == StatusAcknowledged:
			// The alert came back while a human had not yet resolved the
			// incident: page again.
			if err := s.retrigger(ctx, tx, inc, now, alertActor, EventAlertFired,
				fmt.Sprintf("Alert fired again (%d firing): re-triggered", len(n.Firing()))); err != nil {
				return err
			}
			opened = &inc.ID
		case n.Status == alerting.StatusFiring:
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET alert_resolved_at = 0, updated_at = ? WHERE id = ?`, ms(now), inc.ID); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, Event{IncidentID: inc.ID, At: now, Kind: EventAlertFired, Source: "alert",
				Text: fmt.Sprintf("Alert update: %d firing, %d resolved", len(n.Firing()), len(n.Alerts)-len(n.Firing()))}); err != nil {
				return err
			}
		case inc == nil:
			// Resolved with no open incident: nothing to do.
		case s.cfg.OnAlertResolved == AlertResolvedResolve:
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET status = 'resolved', resolved_at = ?, resolved_by = ?, alert_resolved_at = ?, updated_at = ? WHERE id = ?`,
				ms(now), "alert", ms(now), ms(now), inc.ID); err != nil {
				return err
			}
			if err := stopEscalation(ctx, tx, inc.ID); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, Event{IncidentID: inc.ID, At: now, Kind: EventResolved, Source: "alert",
				Actor: "alert", Text: "Resolved: the alert resolved"}); err != nil {
				return err
			}
			resolved = &inc.ID
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET alert_resolved_at = ?, updated_at = ? WHERE id = ?`, ms(now), ms(now), inc.ID); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, Event{IncidentID: inc.ID, At: now, Kind: EventAlertResolved, Source: "alert",
				Text: "Alert resolved; waiting for a person to resolve the incident"}); err != nil {
				return err
			}
		}
		if n.ID != 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notifications_seen(id, seen_at) VALUES (?, ?)`, n.ID, ms(now)); err != nil {
				return fmt.Errorf("record notification: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	if opened != nil {
		s.nudge()
		s.metrics.opened(sev)
	}
	if resolved != nil {
		if inc, err := s.Get(ctx, *resolved); err == nil {
			s.metrics.resolved(inc)
		}
	}
	return nil
}

// DedupKey is the part of an alert group key that identifies the problem:
// the group's labels without the route in front ("0.1:{slo=...}" becomes
// "{slo=...}"). The same alert group reaches incidents and Slack through
// different routes, and a Slack button must find the incident its group
// opened.
func DedupKey(groupKey string) string {
	if i := strings.Index(groupKey, ":{"); i >= 0 {
		return groupKey[i+1:]
	}
	return groupKey
}

// classify decides whether a notification concerns incidents: pages do,
// tickets when Config.Tickets is "open". Only pages escalate.
func (s *Service) classify(n *alerting.Notification) (Severity, bool, bool) {
	label := func(k string) string {
		if v := n.CommonLabels[k]; v != "" {
			return v
		}
		for _, a := range n.Alerts {
			if v := a.Labels[k]; v != "" {
				return v
			}
		}
		return ""
	}
	var sev Severity
	escalate := false
	switch label("severity") {
	case "page":
		sev, escalate = Severity(s.cfg.PageSeverity), true
	case "ticket":
		if s.cfg.Tickets != TicketsOpen {
			return "", false, false
		}
		sev = Severity(s.cfg.TicketSeverity)
	default:
		return "", false, false
	}
	if v, err := ParseSeverity(label("incident_severity")); err == nil {
		sev = v
	}
	return sev, escalate, true
}

func (s *Service) fromNotification(n *alerting.Notification, sev Severity) NewIncident {
	alerts := n.Firing()
	if len(alerts) == 0 {
		alerts = n.Alerts
	}
	var first alerting.NotifiedAlert
	if len(alerts) > 0 {
		first = alerts[0]
	}
	get := func(k string) string {
		if v := n.CommonLabels[k]; v != "" {
			return v
		}
		return first.Labels[k]
	}
	// Rules exported for Prometheus (and Sloth's own) name the SLO and its
	// service with Sloth's labels only.
	orSloth := func(k, sloth string) string {
		if v := get(k); v != "" {
			return v
		}
		return get(sloth)
	}
	ni := NewIncident{Service: orSloth("service", "sloth_service"), SLO: orSloth("slo", "sloth_id"),
		groupKey: DedupKey(n.GroupKey), source: "alert", By: "alertmanager"}
	ni.Title = first.Annotations["summary"]
	if ni.Title == "" {
		ni.Title = n.CommonAnnotations["summary"]
	}
	if ni.Title == "" && ni.SLO != "" {
		ni.Title = "SLO " + ni.SLO + " is burning its error budget"
	}
	if ni.Title == "" {
		ni.Title = get("alertname")
	}
	if ni.Title == "" {
		ni.Title = n.GroupKey
	}
	// The impact started when the SLO began to burn: the earliest
	// impact_started_at the alerts carry (alerting's burn-rate rules set it
	// to the start of the burn that led to the page), else the earliest
	// alert start.
	var impact time.Time
	for _, a := range alerts {
		v := a.Annotations[alerting.AnnotationImpactStarted]
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.logger.Warn("alert annotation impact_started_at is not an RFC 3339 time; ignored", "value", v, "group", n.GroupKey, "err", err)
			continue
		}
		if impact.IsZero() || t.Before(impact) {
			impact = t
		}
	}
	if impact.IsZero() {
		for _, a := range alerts {
			if !a.StartsAt.IsZero() && (impact.IsZero() || a.StartsAt.Before(impact)) {
				impact = a.StartsAt
			}
		}
	}
	if !impact.IsZero() {
		impact = impact.UTC()
		ni.ImpactStartedAt = &impact
	}
	ni.links = Links{Dashboard: first.Annotations["dashboard_url"], Runbook: first.Annotations["runbook_url"]}
	if ids := first.Annotations["trace_ids"]; ids != "" {
		ni.links.TraceIDs = strings.Split(ids, ",")
	}
	if ni.SLO != "" && s.cfg.ExternalURL != "" {
		ni.links.SLO = s.cfg.ExternalURL + "/api/v1/slos/" + ni.SLO
	}
	names := make([]string, 0, len(alerts))
	for _, a := range alerts {
		name := a.Labels["alertname"]
		if w := a.Labels["window"]; w != "" {
			name += " (" + w + ")"
		}
		names = append(names, name)
	}
	ni.text = fmt.Sprintf("Alert fired (%s): %s", sev, strings.Join(names, ", "))
	return ni
}

// policyFor picks the escalation policy: the alert's escalation_policy
// label, else the configured default; one that does not exist is skipped
// (and logged) rather than losing the incident.
func (s *Service) policyFor(ctx context.Context, q querier, n *alerting.Notification) string {
	id := n.CommonLabels["escalation_policy"]
	if id == "" {
		id = s.cfg.EscalationPolicy
	}
	if id == "" {
		return ""
	}
	if _, err := getPolicy(ctx, q, id); err != nil {
		s.logger.Warn("escalation policy of alert not found; incident opens without escalation", "policy", id, "group", n.GroupKey, "err", err)
		return ""
	}
	return id
}
