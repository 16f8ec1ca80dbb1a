package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

func TestAPageAlertPostedToBurnrateOpensAnIncident(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "t0ken"
	r := apptest.StartApp(t, opts)
	require.FileExists(t, r.DataDir+"/incidents.db")

	alert := `[{"labels":{"alertname":"APIDown","severity":"page","service":"api","slo":"api-availability"},
		"annotations":{"summary":"api is down"}}]`
	code, body := post(t, r.URL+"/api/v2/alerts", "t0ken", alert)
	require.Equal(t, http.StatusOK, code, body)
	// Posted twice (Prometheus re-sends every evaluation): still one incident.
	code, body = post(t, r.URL+"/api/v2/alerts", "t0ken", alert)
	require.Equal(t, http.StatusOK, code, body)

	var list struct {
		Incidents []struct {
			ID       int64  `json:"id"`
			Title    string `json:"title"`
			Severity string `json:"severity"`
			Service  string `json:"service"`
			GroupKey string `json:"group_key"`
		} `json:"incidents"`
	}
	require.Eventually(t, func() bool {
		code, body := testutil.HTTPGet(t, r.URL+"/api/v1/incidents")
		return code == 200 && json.Unmarshal([]byte(body), &list) == nil && len(list.Incidents) > 0
	}, 15*time.Second, 50*time.Millisecond)
	require.Len(t, list.Incidents, 1)
	require.Equal(t, "api is down", list.Incidents[0].Title)
	require.Equal(t, "SEV2", list.Incidents[0].Severity)
	require.Equal(t, "{alertname=\"APIDown\",severity=\"page\",slo=\"api-availability\"}", list.Incidents[0].GroupKey)

	code, body = post(t, r.URL+"/api/v1/incidents/1/ack", "", `{"by":"ann"}`)
	require.Equal(t, http.StatusUnauthorized, code, "acknowledging needs the API token: %s", body)
	code, body = post(t, r.URL+"/api/v1/incidents/1/ack", "t0ken", `{"by":"ann"}`)
	require.Equal(t, http.StatusOK, code, body)

	// Slack's endpoints are reached without the token and refuse what is
	// not signed by Slack (no signing secret is configured here).
	code, body = post(t, r.URL+"/api/v1/slack/interactions", "", `payload=%7B%7D`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "slack signature")
	code, _ = testutil.HTTPGet(t, r.URL+"/metrics")
	require.Equal(t, 200, code)
	_, metrics := testutil.HTTPGet(t, r.URL+"/metrics")
	require.Contains(t, metrics, `burnrate_incidents_open{severity="SEV2"} 1`)
}
