package incidents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/incidents"
)

// clock is a pinned, movable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type env struct {
	svc   *incidents.Service
	srv   *httptest.Server
	clock *clock
	reg   *prometheus.Registry
	path  string
}

func newEnv(t testing.TB, mut func(*incidents.Options)) *env {
	t.Helper()
	c := &clock{t: t0}
	reg := prometheus.NewRegistry()
	path := filepath.Join(t.TempDir(), "incidents.db")
	opts := incidents.Options{Path: path, Now: c.Now, Registerer: reg,
		Config: incidents.Config{ExternalURL: "http://burnrate.example"}}
	if mut != nil {
		mut(&opts)
	}
	svc, err := incidents.Open(context.Background(), opts)
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, svc.Close())
	})
	return &env{svc: svc, srv: srv, clock: c, reg: reg, path: path}
}

// call sends a JSON request and decodes a JSON answer into out (if set).
func (e *env) call(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
	return resp.StatusCode
}

type apiError struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Field     string `json:"field"`
}

func pageNotification(id int64, group, status string) *alerting.Notification {
	labels := map[string]string{"alertname": "SLOBurnRate", "severity": "page", "slo": "api-availability", "service": "api", "window": "1h"}
	return &alerting.Notification{
		ID: id, Receiver: incidents.ReceiverName, Status: status, GroupKey: group,
		CommonLabels: map[string]string{"alertname": "SLOBurnRate", "severity": "page", "slo": "api-availability"},
		Alerts: []alerting.NotifiedAlert{{
			Status: status, Labels: labels,
			Annotations: map[string]string{
				"summary":       "api-availability is burning its budget 14.4x too fast",
				"dashboard_url": "http://burnrate.example/api/v1/slos/api-availability",
				"runbook_url":   "https://runbooks.example/api",
				"trace_ids":     "4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7",
			},
			StartsAt: t0.Add(-4 * time.Minute),
		}},
	}
}
