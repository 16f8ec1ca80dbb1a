package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/webhook"
)

func notification() *alerting.Notification {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	return &alerting.Notification{
		ID: 7, Receiver: "webhook", Status: "firing", GroupKey: `0:{alertname="A"}`,
		GroupLabels: map[string]string{"alertname": "A"}, CommonLabels: map[string]string{"alertname": "A"},
		CommonAnnotations: map[string]string{}, ExternalURL: "http://127.0.0.1:8080",
		Alerts: []alerting.NotifiedAlert{{Status: "firing", Labels: map[string]string{"alertname": "A"},
			Annotations: map[string]string{"summary": "s"}, StartsAt: at, Fingerprint: "0123456789abcdef"}},
	}
}

func TestWebhookSendsAlertmanagersVersion4Payload(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		require.NoError(t, json.Unmarshal(b, &got))
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}))
	defer srv.Close()
	require.NoError(t, webhook.New([]string{srv.URL}, nil).Notify(context.Background(), notification()))
	for _, k := range []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
		"commonLabels", "commonAnnotations", "externalURL", "alerts"} {
		require.Contains(t, got, k)
	}
	require.Equal(t, "4", got["version"])
	a := got["alerts"].([]any)[0].(map[string]any)
	for _, k := range []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"} {
		require.Contains(t, a, k)
	}
	require.Equal(t, "0001-01-01T00:00:00Z", a["endsAt"], "a firing alert has Alertmanager's zero end time")
}

func TestWebhookClassifiesFailures(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		header    string
		permanent bool
		after     time.Duration
	}{
		{"a 500 is retried", 500, "", false, 0},
		{"a 429 with Retry-After is retried after it", 429, "12", false, 12 * time.Second},
		{"a 400 is permanent", 400, "", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			err := webhook.New([]string{srv.URL}, nil).Notify(context.Background(), notification())
			require.Error(t, err)
			require.Equal(t, tc.permanent, errors.Is(err, alerting.ErrPermanent))
			var ra *alerting.RetryAfterError
			if tc.after > 0 {
				require.ErrorAs(t, err, &ra)
				require.Equal(t, tc.after, ra.After)
			}
		})
	}
}

func TestEachURLIsAnIntegrationNamedIndependentlyOfItsPosition(t *testing.T) {
	a, b := "http://127.0.0.1:1/hook?token=secret", "http://127.0.0.1:2/hook"
	names := func(urls ...string) map[string]string {
		out := map[string]string{}
		for i, in := range webhook.New(urls, nil).Integrations() {
			out[urls[i]] = in.Name
		}
		return out
	}
	first, swapped := names(a, b), names(b, a)
	require.Len(t, first, 2)
	require.NotEqual(t, first[a], first[b])
	require.Equal(t, first, swapped, "reordering the URLs keeps each one's name, and with it its notification log")
	require.NotContains(t, first[a], "secret")
}

func TestAFailingURLIsReportedWithoutItsQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	ins := webhook.New([]string{srv.URL + "/hook?token=secret"}, nil).Integrations()
	require.Len(t, ins, 1)
	err := ins[0].Receiver.Notify(context.Background(), notification())
	require.Error(t, err)
	require.Contains(t, err.Error(), srv.URL+"/hook")
	require.NotContains(t, err.Error(), "secret")
}
