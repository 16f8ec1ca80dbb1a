package incidents_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

// Only a resolved incident re-opens. Re-opening an acknowledged one used to
// put it back to triggered and page everyone again from step one.
func TestReopeningAnAcknowledgedIncidentIsAConflictNamingItsStatus(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	seedEscalation(t, e.svc, 0)
	inc, err := e.svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
	require.NoError(t, err)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "ann"}, nil))
	before := e.get(t, inc.ID)
	escBefore, err := e.svc.PendingEscalation(ctx, inc.ID)
	require.NoError(t, err)

	var body apiError
	require.Equal(t, 409, e.call(t, "POST", "/api/v1/incidents/1/reopen", map[string]string{"by": "ben"}, &body))
	require.Equal(t, "conflict", body.ErrorType)
	require.Equal(t, "incident 1 is acknowledged, only a resolved incident can be reopened: conflict", body.Error)

	require.Equal(t, before, e.get(t, inc.ID), "status and timeline unchanged")
	escAfter, err := e.svc.PendingEscalation(ctx, inc.ID)
	require.NoError(t, err)
	require.Equal(t, escBefore, escAfter, "the escalation did not restart")

	// Resolved, it re-opens.
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/resolve", map[string]string{"by": "ann"}, nil))
	var got incidents.Incident
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/reopen", map[string]string{"by": "ben"}, &got))
	require.Equal(t, incidents.StatusTriggered, got.Status)
}
