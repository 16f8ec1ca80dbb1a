package incidents_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/incidents"
)

type incidentJSON struct {
	incidents.Incident
	Timeline []incidents.Event `json:"timeline"`
}

func (e *env) get(t *testing.T, id int64) incidentJSON {
	t.Helper()
	var inc incidentJSON
	require.Equal(t, http.StatusOK, e.call(t, "GET", fmt.Sprintf("/api/v1/incidents/%d", id), nil, &inc))
	return inc
}

func (e *env) list(t *testing.T, query string) []incidents.Incident {
	t.Helper()
	var out struct {
		Incidents []incidents.Incident `json:"incidents"`
	}
	require.Equal(t, http.StatusOK, e.call(t, "GET", "/api/v1/incidents"+query, nil, &out))
	return out.Incidents
}

func kinds(tl []incidents.Event) []string {
	var out []string
	for _, e := range tl {
		out = append(out, e.Kind)
	}
	return out
}

// An alert of the rules `burnrate slo rules` exports, evaluated by
// Prometheus and sent back, names its SLO and service with Sloth's labels
// only; the incident is still the SLO's (budget, gate freeze by service).
func TestAnExportedRulesPageNamesItsSLOAndServiceBySlothLabels(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	n := pageNotification(1, "g1", alerting.StatusFiring)
	n.CommonLabels = map[string]string{"alertname": "DemoEdgeAvailability", "severity": "page"}
	n.Alerts[0].Labels = map[string]string{"alertname": "DemoEdgeAvailability", "severity": "page", "sloth_severity": "page",
		"sloth_id": "demo-edge-availability", "sloth_service": "demo-edge", "sloth_slo": "availability"}
	require.NoError(t, e.svc.Notify(ctx, n))
	all := e.list(t, "")
	require.Len(t, all, 1)
	require.Equal(t, "demo-edge-availability", all[0].SLO)
	require.Equal(t, "demo-edge", all[0].Service)
}

func TestAPageOpensOneIncidentPerAlertGroupAndRepeatsAttach(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	require.NoError(t, e.svc.Notify(ctx, pageNotification(1, "g1", alerting.StatusFiring)))
	e.clock.Advance(time.Minute)
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusFiring)))
	// The outbox re-delivers notification 2 after a crash: nothing changes.
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusFiring)))
	require.NoError(t, e.svc.Notify(ctx, pageNotification(3, "g2", alerting.StatusFiring)))

	all := e.list(t, "")
	require.Len(t, all, 2, "one incident per alert group")
	inc := e.get(t, all[1].ID)
	require.Equal(t, "g1", inc.GroupKey)
	require.Equal(t, incidents.SEV2, inc.Severity)
	require.Equal(t, incidents.StatusTriggered, inc.Status)
	require.Equal(t, "api", inc.Service)
	require.Equal(t, "api-availability", inc.SLO)
	require.Equal(t, "api-availability is burning its budget 14.4x too fast", inc.Title)
	require.Equal(t, "http://burnrate.example/api/v1/slos/api-availability", inc.Links.SLO)
	require.Equal(t, "https://runbooks.example/api", inc.Links.Runbook)
	require.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"}, inc.Links.TraceIDs)
	require.Equal(t, t0, inc.TriggeredAt)
	require.Equal(t, t0.Add(-4*time.Minute), *inc.ImpactStartedAt, "impact starts when the alert started, before the trigger")
	require.InDelta(t, 240, *inc.DetectionSeconds, 0.001)
	require.Equal(t, []string{incidents.EventTriggered, incidents.EventAlertFired}, kinds(inc.Timeline))
}

func TestAnAlertThatResolvesWaitsForAHumanByDefault(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	require.NoError(t, e.svc.Notify(ctx, pageNotification(1, "g1", alerting.StatusFiring)))
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusResolved)))
	inc := e.get(t, 1)
	require.Equal(t, incidents.StatusTriggered, inc.Status)
	require.NotNil(t, inc.AlertResolvedAt)
	require.Equal(t, []string{incidents.EventTriggered, incidents.EventAlertResolved}, kinds(inc.Timeline))

	// Acknowledged, then the alert fires again: the incident re-triggers.
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "alice"}, nil))
	require.NoError(t, e.svc.Notify(ctx, pageNotification(3, "g1", alerting.StatusFiring)))
	inc = e.get(t, 1)
	require.Equal(t, incidents.StatusTriggered, inc.Status)
	require.Nil(t, inc.AlertResolvedAt)
	require.Len(t, e.list(t, ""), 1)
}

func TestAnAlertThatResolvesResolvesTheIncidentWhenConfigured(t *testing.T) {
	e := newEnv(t, func(o *incidents.Options) { o.Config.OnAlertResolved = incidents.AlertResolvedResolve })
	ctx := context.Background()
	require.NoError(t, e.svc.Notify(ctx, pageNotification(1, "g1", alerting.StatusFiring)))
	e.clock.Advance(7 * time.Minute)
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusResolved)))
	inc := e.get(t, 1)
	require.Equal(t, incidents.StatusResolved, inc.Status)
	require.InDelta(t, 420, *inc.MTTRSeconds, 0.001)

	// The group fires again: a new incident, the old one stays resolved.
	require.NoError(t, e.svc.Notify(ctx, pageNotification(3, "g1", alerting.StatusFiring)))
	require.Len(t, e.list(t, "?status=open"), 1)
	require.Len(t, e.list(t, ""), 2)
}

func TestTicketAlertsOpenNothingOrLowUrgencyIncidents(t *testing.T) {
	ticket := func(id int64) *alerting.Notification {
		n := pageNotification(id, "t1", alerting.StatusFiring)
		n.CommonLabels["severity"] = "ticket"
		n.Alerts[0].Labels["severity"] = "ticket"
		return n
	}
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Notify(context.Background(), ticket(1)))
	require.Empty(t, e.list(t, ""), "tickets open nothing by default")

	e = newEnv(t, func(o *incidents.Options) { o.Config.Tickets = incidents.TicketsOpen })
	require.NoError(t, e.svc.Notify(context.Background(), ticket(1)))
	list := e.list(t, "")
	require.Len(t, list, 1)
	require.Equal(t, incidents.SEV4, list[0].Severity)
}

func TestLifecycleAndMTTAAndMTTRAreMeasuredFromTheTrigger(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, "g1", alerting.StatusFiring)))
	e.clock.Advance(2 * time.Minute)
	var inc incidents.Incident
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "alice"}, &inc))
	require.Equal(t, incidents.StatusAcknowledged, inc.Status)
	require.Equal(t, "alice", inc.AcknowledgedBy)
	require.InDelta(t, 120, *inc.MTTASeconds, 0.001)
	e.clock.Advance(8 * time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/note", map[string]string{"by": "alice", "text": "rolled back v2.3"}, nil))
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/assign", map[string]string{"by": "alice", "user": "bob", "role": "commander"}, nil))
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/resolve", map[string]string{"by": "bob"}, &inc))
	require.Equal(t, incidents.StatusResolved, inc.Status)
	require.InDelta(t, 600, *inc.MTTRSeconds, 0.001)
	require.Equal(t, "bob", inc.Commander)

	// Re-open, acknowledge again: MTTA keeps the first acknowledgement.
	e.clock.Advance(time.Hour)
	inc = incidents.Incident{}
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/reopen", map[string]string{"by": "carol"}, &inc))
	require.Equal(t, incidents.StatusTriggered, inc.Status)
	require.Nil(t, inc.ResolvedAt)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "carol"}, &inc))
	require.InDelta(t, 120, *inc.MTTASeconds, 0.001)

	require.Equal(t, uint64(1), histCount(t, e, "burnrate_incidents_time_to_acknowledge_seconds"), "one first acknowledgement")
	require.Equal(t, uint64(1), histCount(t, e, "burnrate_incidents_time_to_resolve_seconds"))
	got := e.get(t, 1)
	require.Equal(t, []string{"triggered", "acknowledged", "note", "assigned", "resolved", "reopened", "acknowledged"}, kinds(got.Timeline))
}

func TestBadRequestsNameTheFieldAndLeaveTheStoreUnchanged(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, "g1", alerting.StatusFiring)))
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(2, "g2", alerting.StatusFiring)))
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/2/resolve", nil, nil))
	// Incident 3 takes group g2 while 2 is resolved.
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(3, "g2", alerting.StatusFiring)))

	cases := []struct {
		name          string
		method, path  string
		body          any
		code          int
		field, errMsg string
	}{
		{"an unknown incident is 404", "POST", "/api/v1/incidents/99/ack", nil, 404, "", "incident 99: not found"},
		{"an ID that is not a number is 400 naming id", "GET", "/api/v1/incidents/abc", nil, 400, "id", ""},
		{"resolving a resolved incident is 409", "POST", "/api/v1/incidents/2/resolve", nil, 409, "", "already resolved"},
		{"acknowledging a resolved incident is 409", "POST", "/api/v1/incidents/2/ack", nil, 409, "", "re-open it first"},
		{"re-opening while the group has another open incident is 409", "POST", "/api/v1/incidents/2/reopen", nil, 409, "", "incident 3 of the same alert group is open"},
		{"re-opening an open incident is 409 naming its status", "POST", "/api/v1/incidents/1/reopen", nil, 409, "", "incident 1 is triggered, only a resolved incident can be reopened"},
		{"an empty note is 400 naming text", "POST", "/api/v1/incidents/1/note", map[string]string{"text": " "}, 400, "text", ""},
		{"an unknown role is 400 naming role", "POST", "/api/v1/incidents/1/assign", map[string]string{"user": "bob", "role": "chef"}, 400, "role", ""},
		{"an unknown body field is 400 naming it", "POST", "/api/v1/incidents/1/ack", map[string]string{"who": "bob"}, 400, "who", ""},
		{"a body of the wrong type is 400", "POST", "/api/v1/incidents/1/ack", `{"by": 3}`, 400, "by", ""},
		{"malformed JSON is 400 naming body", "POST", "/api/v1/incidents/1/note", `{"text":`, 400, "body", ""},
		{"an unknown action is 404", "POST", "/api/v1/incidents/1/explode", nil, 404, "", "explode"},
		{"a bad severity is 400 naming severity", "POST", "/api/v1/incidents", map[string]string{"title": "x", "severity": "SEV9"}, 400, "severity", ""},
		{"a declared incident needs a title", "POST", "/api/v1/incidents", map[string]string{"severity": "SEV1"}, 400, "title", ""},
		{"a bad status filter is 400 naming status", "GET", "/api/v1/incidents?status=sleeping", nil, 400, "status", ""},
		{"an unknown escalation policy is 400 naming it", "POST", "/api/v1/incidents", map[string]string{"title": "x", "severity": "SEV1", "escalation_policy": "nope"}, 400, "escalation_policy", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := []incidentJSON{e.get(t, 1), e.get(t, 2), e.get(t, 3)}
			var body apiError
			require.Equal(t, tc.code, e.call(t, tc.method, tc.path, tc.body, &body))
			require.Equal(t, "error", body.Status)
			require.Equal(t, tc.field, body.Field, body.Error)
			require.Contains(t, body.Error, tc.errMsg)
			after := []incidentJSON{e.get(t, 1), e.get(t, 2), e.get(t, 3)}
			require.Equal(t, before, after, "the store is unchanged")
			require.Len(t, e.list(t, ""), 3)
		})
	}
}

func TestRecordedFaultsAndDeploysJoinTheServicesOpenIncidents(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, "g1", alerting.StatusFiring)))
	require.Equal(t, 204, e.call(t, "POST", "/api/v1/incidents/events", map[string]string{"service": "api", "kind": "deploy", "text": "api v2.4 deployed"}, nil))
	require.Equal(t, 204, e.call(t, "POST", "/api/v1/incidents/events", map[string]string{"service": "cache", "kind": "fault", "text": "cache latency"}, nil))
	var bad apiError
	require.Equal(t, 400, e.call(t, "POST", "/api/v1/incidents/events", map[string]string{"service": "api", "kind": "party", "text": "x"}, &bad))
	require.Equal(t, "kind", bad.Field)
	require.Equal(t, []string{"triggered", "deploy"}, kinds(e.get(t, 1).Timeline))
}

func TestOpenIncidentsBySeverityAreReadFromTheStore(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, "g1", alerting.StatusFiring)))
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/incidents", map[string]string{"title": "db down", "severity": "sev1"}, nil))
	n, err := testutil.GatherAndCount(e.reg, "burnrate_incidents_open")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.NoError(t, testutil.GatherAndCompare(e.reg, stringsReader(`
# HELP burnrate_incidents_open Incidents not resolved, by severity (read from the store at scrape time).
# TYPE burnrate_incidents_open gauge
burnrate_incidents_open{severity="SEV1"} 1
burnrate_incidents_open{severity="SEV2"} 1
burnrate_incidents_open{severity="SEV3"} 0
burnrate_incidents_open{severity="SEV4"} 0
`), "burnrate_incidents_open"))
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func histCount(t *testing.T, e *env, name string) uint64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
