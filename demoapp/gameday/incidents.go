package gameday

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// IncidentTimes are the instants the incident tracker recorded for the
// drill's incident (GET /api/v1/incidents).
type IncidentTimes struct {
	ID             int64      `json:"id"`
	Title          string     `json:"title"`
	Service        string     `json:"service"`
	SLO            string     `json:"slo"`
	TriggeredAt    time.Time  `json:"triggered_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
}

// errNoTracker is the answer of a Burnrate without the incident tracker.
var errNoTracker = errors.New("the incident tracker is not running")

// incidents reads GET /api/v1/incidents (newest first).
func (a *api) incidents(ctx context.Context) ([]IncidentTimes, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/api/v1/incidents?limit=500", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/incidents: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNoTracker
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/incidents: %s", resp.Status)
	}
	var out struct {
		Incidents []IncidentTimes `json:"incidents"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /api/v1/incidents: %w", err)
	}
	return out.Incidents, nil
}

// incidentName is the SLO (or alert or service) whose incident answers an
// expectation: its page, else its workbook's SLO; empty when it has none.
func (e Expectation) incidentName() string {
	if e.Page != "" {
		return e.Page
	}
	if e.Workbook != nil {
		return e.Workbook.SLO
	}
	return ""
}

// wantsIncident reports whether the report looks for the expectation's
// incident: a page, or response times to measure.
func (e Expectation) wantsIncident() bool {
	return !e.Never && (e.Page != "" || e.AcknowledgeWithin > 0 || e.ResolveWithin > 0)
}

// drillIncident is the first incident of name (its SLO or service)
// triggered from the step (a second of clock skew allowed) to the end of
// the drill.
func drillIncident(list []IncidentTimes, name string, from, to time.Time) *IncidentTimes {
	var found *IncidentTimes
	for i := range list {
		inc := &list[i]
		if inc.SLO != name && inc.Service != name {
			continue
		}
		if inc.TriggeredAt.Before(from.Add(-time.Second)) || inc.TriggeredAt.After(to) {
			continue
		}
		if found == nil || inc.TriggeredAt.Before(found.TriggeredAt) {
			found = inc
		}
	}
	return found
}

// attachIncidents finds each expectation's incident at the end of the
// drill, or says why there is none.
func attachIncidents(ctx context.Context, a *api, results []Result, ended time.Time) {
	var list []IncidentTimes
	var listErr error
	read := false
	for i := range results {
		r := &results[i]
		e := r.Expect
		if !e.wantsIncident() {
			continue
		}
		name := e.incidentName()
		if name == "" {
			r.IncidentWhy = "no page or workbook SLO to find the incident by"
			continue
		}
		if !read {
			list, listErr = a.incidents(ctx)
			read = true
		}
		if listErr != nil {
			r.IncidentWhy = listErr.Error()
			continue
		}
		if r.Incident = drillIncident(list, name, r.StepAt, ended); r.Incident == nil {
			r.IncidentWhy = "no incident for " + name + " during the drill"
		}
	}
}

// responseCells renders the acknowledged and resolved columns.
func responseCells(x Result) (ack, res string) {
	e := x.Expect
	cell := func(at *time.Time, within time.Duration, missing string) string {
		expected := ""
		if within > 0 {
			expected = " (expected " + within.String() + ")"
		}
		switch {
		case x.Incident == nil && x.IncidentWhy == "" && within == 0:
			return "-"
		case x.Incident == nil:
			why := x.IncidentWhy
			if why == "" {
				why = "no incident looked up"
			}
			return "not measured: " + why + expected
		case at == nil:
			return fmt.Sprintf("#%d %s by the end%s", x.Incident.ID, missing, expected)
		}
		d := at.Sub(x.Incident.TriggeredAt)
		s := fmt.Sprintf("#%d %s%s", x.Incident.ID, roundDur(d), expected)
		if within > 0 && d > within {
			s += " **late**"
		}
		return s
	}
	var ackAt, resAt *time.Time
	if x.Incident != nil {
		ackAt, resAt = x.Incident.AcknowledgedAt, x.Incident.ResolvedAt
	}
	return cell(ackAt, e.AcknowledgeWithin, "not acknowledged"), cell(resAt, e.ResolveWithin, "not resolved")
}
