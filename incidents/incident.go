package incidents

import (
	"fmt"
	"strings"
	"time"
)

// Severity is SEV1 (worst) to SEV4.
type Severity string

// Severities, worst first.
const (
	SEV1 Severity = "SEV1"
	SEV2 Severity = "SEV2"
	SEV3 Severity = "SEV3"
	SEV4 Severity = "SEV4"
)

// Severities lists every severity, worst first.
var Severities = []Severity{SEV1, SEV2, SEV3, SEV4}

// ParseSeverity accepts SEV1..SEV4 in any case.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToUpper(strings.TrimSpace(s)))
	for _, k := range Severities {
		if v == k {
			return v, nil
		}
	}
	return "", fmt.Errorf("%q is not one of SEV1, SEV2, SEV3, SEV4", s)
}

// Status is where an incident is in its lifecycle.
type Status string

// Statuses: triggered -> acknowledged -> resolved; a resolved incident can
// be re-opened (back to triggered).
const (
	StatusTriggered    Status = "triggered"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
)

// Roles of incident participants (Dispatch's).
const (
	RoleCommander = "commander"
	RoleScribe    = "scribe"
	RoleLiaison   = "liaison"
	RoleResponder = "responder"
)

func validRole(r string) bool {
	switch r {
	case RoleCommander, RoleScribe, RoleLiaison, RoleResponder:
		return true
	}
	return false
}

// Incident is one incident. Times are UTC; nil means "not yet".
type Incident struct {
	ID       int64    `json:"id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	Service  string   `json:"service,omitempty"`
	SLO      string   `json:"slo,omitempty"`
	// GroupKey is the alert group the incident was opened for; while the
	// incident is open, further notifications of that group attach to it.
	GroupKey  string        `json:"group_key,omitempty"`
	Commander string        `json:"commander,omitempty"`
	People    []Participant `json:"participants,omitempty"`
	Links     Links         `json:"links"`
	// ImpactStartedAt is when users started to be hurt (the SLO's first
	// burn, the alert's start); TriggeredAt is when the incident opened.
	ImpactStartedAt *time.Time `json:"impact_started_at,omitempty"`
	TriggeredAt     time.Time  `json:"triggered_at"`
	AcknowledgedAt  *time.Time `json:"acknowledged_at,omitempty"`
	AcknowledgedBy  string     `json:"acknowledged_by,omitempty"`
	ResolvedAt      *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy      string     `json:"resolved_by,omitempty"`
	// AlertResolvedAt is set when the alert resolved while the incident
	// waits for a human to resolve it.
	AlertResolvedAt  *time.Time `json:"alert_resolved_at,omitempty"`
	EscalationPolicy string     `json:"escalation_policy,omitempty"`
	UpdatedAt        time.Time  `json:"updated_at"`
	// Metrics derived from the times above, in seconds: detection (impact
	// start to trigger), time to acknowledge and to resolve (from the
	// trigger), and the impact's duration (impact start to resolution).
	DetectionSeconds      *float64 `json:"detection_seconds,omitempty"`
	MTTASeconds           *float64 `json:"mtta_seconds,omitempty"`
	MTTRSeconds           *float64 `json:"mttr_seconds,omitempty"`
	ImpactDurationSeconds *float64 `json:"impact_duration_seconds,omitempty"`
}

// Participant is a person working the incident.
type Participant struct {
	User    string    `json:"user"`
	Role    string    `json:"role"`
	AddedAt time.Time `json:"added_at"`
}

// Links point at what the alert carried.
type Links struct {
	SLO       string   `json:"slo,omitempty"`
	Dashboard string   `json:"dashboard,omitempty"`
	Runbook   string   `json:"runbook,omitempty"`
	TraceIDs  []string `json:"trace_ids,omitempty"`
}

// Event is one line of an incident's timeline.
type Event struct {
	ID         int64     `json:"id"`
	IncidentID int64     `json:"incident_id"`
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	// Source is where the event came from: alert, api, slack, cli,
	// escalation, demo, deploy.
	Source string `json:"source"`
	Actor  string `json:"actor,omitempty"`
	Text   string `json:"text"`
}

// Timeline event kinds.
const (
	EventTriggered     = "triggered"
	EventAlertFired    = "alert_fired"
	EventAlertResolved = "alert_resolved"
	// EventPaging records an escalation step and whom it pages; the
	// pages are then delivered through the queue.
	EventPaging = "paging"
	// EventNotified records a page Slack (or the log) took.
	EventNotified = "notified"
	// EventDeliveryFailed records a page that failed: retried, or given up.
	EventDeliveryFailed = "delivery_failed"
	EventEscalated      = "escalated"
	EventAcknowledged   = "acknowledged"
	EventResolved       = "resolved"
	EventReopened       = "reopened"
	EventNote           = "note"
	EventAssigned       = "assigned"
	EventFault          = "fault"
	EventDeploy         = "deploy"
)

// TTA is the time to acknowledge: first acknowledge minus trigger.
func (i *Incident) TTA() (time.Duration, bool) {
	if i.AcknowledgedAt == nil {
		return 0, false
	}
	return i.AcknowledgedAt.Sub(i.TriggeredAt), true
}

// TTR is the time to resolve: resolve minus trigger.
func (i *Incident) TTR() (time.Duration, bool) {
	if i.ResolvedAt == nil {
		return 0, false
	}
	return i.ResolvedAt.Sub(i.TriggeredAt), true
}

// Detection is how long the impact lasted before the incident triggered.
func (i *Incident) Detection() (time.Duration, bool) {
	if i.ImpactStartedAt == nil {
		return 0, false
	}
	return i.TriggeredAt.Sub(*i.ImpactStartedAt), true
}

// ImpactDuration is how long users were hurt: resolve minus impact start,
// i.e. detection plus time to resolve.
func (i *Incident) ImpactDuration() (time.Duration, bool) {
	if i.ImpactStartedAt == nil || i.ResolvedAt == nil {
		return 0, false
	}
	return i.ResolvedAt.Sub(*i.ImpactStartedAt), true
}

// derive fills the seconds fields from the times.
func (i *Incident) derive() {
	sec := func(d time.Duration, ok bool) *float64 {
		if !ok {
			return nil
		}
		v := d.Seconds()
		return &v
	}
	i.DetectionSeconds = sec(i.Detection())
	i.MTTASeconds = sec(i.TTA())
	i.MTTRSeconds = sec(i.TTR())
	i.ImpactDurationSeconds = sec(i.ImpactDuration())
}
