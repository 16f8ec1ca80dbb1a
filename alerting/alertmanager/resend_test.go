package alertmanager_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/alertmanager"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestAForwardedAlertStaysActiveLongerThanTheTargetsResolveTimeout routes a
// firing page through a running Manager to a real Alertmanager whose
// resolve_timeout is 10s, and watches it for 16s: it must stay active all
// along, although Burnrate's own group and repeat intervals notify it once.
func TestAForwardedAlertStaysActiveLongerThanTheTargetsResolveTimeout(t *testing.T) {
	url := startAlertmanager(t, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	cfg := alerting.DefaultConfig()
	cfg.Alertmanager.URLs = []string{url}
	cfg.Route.Receiver = alerting.ReceiverAlertmanager
	cfg.Route.GroupWait = 100 * time.Millisecond
	fwd, err := alertmanager.New(alertmanager.Options{
		URLs: []string{url}, ResendDelay: 2 * time.Second, EvaluationInterval: time.Second,
		State: store.ReceiverState(alerting.ReceiverAlertmanager), Logger: testutil.Logger(t),
	})
	require.NoError(t, err)
	m, err := alerting.New(ctx, alerting.Options{
		Config: cfg, Store: store, Logger: testutil.Logger(t), Registerer: prometheus.NewRegistry(),
		Receivers: map[string]alerting.Receiver{alerting.ReceiverAlertmanager: fwd},
	})
	require.NoError(t, err)
	done := make(chan struct{})
	fwdDone := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	go func() { defer close(fwdDone); _ = fwd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; <-fwdDone })

	// As the SLO rules put a firing alert: an end time a few minutes ahead.
	now := time.Now()
	require.NoError(t, m.Put(ctx, &alerting.Alert{
		Labels:   model.LabelSet{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "severity": "page"},
		StartsAt: now.Add(-time.Minute), EndsAt: now.Add(4 * time.Minute), UpdatedAt: now,
	}))
	require.Eventually(t, func() bool { return len(amAlerts(t, url)) == 1 }, 10*time.Second, 100*time.Millisecond,
		"the page reaches Alertmanager")

	deadline := time.Now().Add(16 * time.Second)
	for time.Now().Before(deadline) {
		got := amAlerts(t, url)
		require.Len(t, got, 1, "the alert is still listed past resolve_timeout")
		require.Equal(t, "active", got[0]["status"].(map[string]any)["state"])
		ends, err := time.Parse(time.RFC3339, got[0]["endsAt"].(string))
		require.NoError(t, err)
		require.True(t, ends.After(time.Now()), "its end time keeps moving ahead")
		time.Sleep(500 * time.Millisecond)
	}
}

// TestResendsFollowTheGroupsLastNotificationAndSurviveARestart checks the
// re-sends on a pinned clock against a recording target: end times
// 4 × resend_delay ahead, resolved alerts no longer re-sent, the firing
// set kept across a restart, and a group no longer notified forgotten.
func TestResendsFollowTheGroupsLastNotificationAndSurviveARestart(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got [][]map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	last := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return got[len(got)-1]
	}
	store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	open := func() *alertmanager.Forwarder {
		f, err := alertmanager.New(alertmanager.Options{URLs: []string{srv.URL}, ForgetAfter: 8 * time.Hour,
			State: store.ReceiverState(alerting.ReceiverAlertmanager), Now: func() time.Time { return now }})
		require.NoError(t, err)
		return f
	}
	fwd := open()
	page := alerting.NotifiedAlert{Status: alerting.StatusFiring, Labels: map[string]string{"alertname": "A"}, StartsAt: now}
	ticket := alerting.NotifiedAlert{Status: alerting.StatusFiring, Labels: map[string]string{"alertname": "B"}, StartsAt: now}
	require.NoError(t, fwd.Notify(ctx, &alerting.Notification{GroupKey: "a", Status: alerting.StatusFiring, Alerts: []alerting.NotifiedAlert{page}}))
	require.Equal(t, now.Add(4*time.Minute).Format(time.RFC3339), last()[0]["endsAt"], "4 × the 1m resend delay")
	require.NoError(t, fwd.Notify(ctx, &alerting.Notification{GroupKey: "b", Status: alerting.StatusFiring, Alerts: []alerting.NotifiedAlert{ticket}}))

	now = now.Add(time.Minute)
	n, err := fwd.Resend(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, now.Add(4*time.Minute).Format(time.RFC3339), last()[0]["endsAt"])

	// b resolves: it is sent with its end time once, then no more.
	resolved := ticket
	resolved.Status, resolved.EndsAt = alerting.StatusResolved, now
	require.NoError(t, fwd.Notify(ctx, &alerting.Notification{GroupKey: "b", Status: alerting.StatusResolved, Alerts: []alerting.NotifiedAlert{resolved}}))
	require.Equal(t, now.Format(time.RFC3339), last()[0]["endsAt"])

	// A restart keeps re-sending a.
	fwd = open()
	n, err = fwd.Resend(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "A", last()[0]["labels"].(map[string]any)["alertname"])

	// A group not notified for longer than forget_after is dropped.
	now = now.Add(9 * time.Hour)
	n, err = fwd.Resend(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
