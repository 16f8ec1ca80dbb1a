package alertmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/alertmanager"
	"github.com/burnrate/burnrate/internal/testutil"
)

// startAlertmanager runs the real Alertmanager on a free loopback port with
// the given resolve_timeout, and returns its URL.
func startAlertmanager(t *testing.T, resolveTimeout time.Duration) string {
	t.Helper()
	return testutil.StartAlertmanager(t, fmt.Sprintf("global:\n  resolve_timeout: %s\nroute:\n  receiver: blackhole\nreceivers:\n- name: blackhole\n", resolveTimeout)).URL
}

func amAlerts(t *testing.T, url string) []map[string]any {
	resp, err := http.Get(url + "/api/v2/alerts")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func TestForwardingReachesARealAlertmanager(t *testing.T) {
	url := startAlertmanager(t, 5*time.Minute)
	fwd, err := alertmanager.New(alertmanager.Options{URLs: []string{url}})
	require.NoError(t, err)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	n := &alerting.Notification{Receiver: "alertmanager", Status: "firing", Alerts: []alerting.NotifiedAlert{{
		Status: "firing", Labels: map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "severity": "page"},
		Annotations: map[string]string{"summary": "burning"}, StartsAt: start, GeneratorURL: "http://127.0.0.1:8080/slo/api-availability",
	}}}
	require.NoError(t, fwd.Notify(context.Background(), n))
	got := amAlerts(t, url)
	require.Len(t, got, 1)
	require.Equal(t, "api-availability", got[0]["labels"].(map[string]any)["slo"])
	require.Equal(t, "burning", got[0]["annotations"].(map[string]any)["summary"])
	require.Equal(t, start.Format("2006-01-02T15:04:05.000Z"), got[0]["startsAt"])

	// Resolving forwards the end time; Alertmanager stops listing it.
	n.Status, n.Alerts[0].Status, n.Alerts[0].EndsAt = "resolved", "resolved", time.Now().Add(-time.Second).UTC()
	require.NoError(t, fwd.Notify(context.Background(), n))
	require.Empty(t, amAlerts(t, url))

	// Alertmanager's own validation errors come back as permanent failures.
	bad := &alerting.Notification{Alerts: []alerting.NotifiedAlert{{Status: "firing", Labels: map[string]string{}, StartsAt: start}}}
	err = fwd.Notify(context.Background(), bad)
	require.ErrorIs(t, err, alerting.ErrPermanent)
	require.Contains(t, err.Error(), fmt.Sprint(400))
}
