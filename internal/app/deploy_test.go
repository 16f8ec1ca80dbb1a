package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestTheGateFreezesOnAnOpenSEV2AndDeploysReachIncidentTimelines runs the
// gate with the incident tracker: an open SEV2 incident of the service
// fails the gate, and a recorded deploy shows in the incident's timeline.
func TestTheGateFreezesOnAnOpenSEV2AndDeploysReachIncidentTimelines(t *testing.T) {
	opts := shopOptions(t)
	opts.SLO.Interval = time.Second
	r := apptest.StartApp(t, opts)

	gate := func() map[string]any {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/gate?service=shop")
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &d), body)
		return d
	}
	reasons := func(d map[string]any) string {
		b, _ := json.Marshal(d["reasons"])
		return string(b)
	}
	require.Eventually(t, func() bool { return !strings.Contains(reasons(gate()), "not been evaluated") },
		30*time.Second, 200*time.Millisecond)
	require.NotContains(t, reasons(gate()), "incident")

	code, body := post(t, r.URL+"/api/v1/incidents", "", `{"title":"Orders fail","severity":"SEV2","service":"shop","by":"test"}`)
	require.Equal(t, http.StatusCreated, code, body)
	// The gate's index of open incidents is rebuilt at most once a second.
	require.Eventually(t, func() bool {
		d := gate()
		return d["decision"] == "fail" && strings.Contains(reasons(d), "SEV2 incident 1 is open: Orders fail")
	}, 10*time.Second, 200*time.Millisecond)

	code, body = post(t, r.URL+"/api/v1/deploys", "", `{"service":"shop","version":"v9","commit":"abc123","author":"ana"}`)
	require.Equal(t, http.StatusCreated, code, body)
	_, body = testutil.HTTPGet(t, r.URL+"/api/v1/incidents/1")
	require.Contains(t, body, "deploy v9 of shop recorded by ana (abc123)")
}
