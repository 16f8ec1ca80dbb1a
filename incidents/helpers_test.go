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

// runService runs svc's escalation loop with an alerting outbox beside it
// as its one delivery queue, wired as internal/app wires them, until stop
// is called; stop leaves svc open. The outbox's database is
// alerting.db next to the incidents database at path, so that a restart
// on the same path finds what was queued. The outbox is driven by a
// delivery round whenever something is queued and every 10 seconds (for
// retries), rather than by Manager.Run, whose 100 ms flush ticker would
// make a day of a synctest bubble's time take minutes.
func runService(t *testing.T, svc *incidents.Service, path string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := alerting.OpenStore(ctx, filepath.Join(filepath.Dir(path), "alerting.db"))
	require.NoError(t, err)
	cfg := alerting.DefaultConfig()
	cfg.Outbox.MaxInterval = 30 * time.Second
	m, err := alerting.New(ctx, alerting.Options{Config: cfg, Store: store,
		Receivers: map[string]alerting.Receiver{incidents.PagerReceiverName: svc.Pager()}})
	require.NoError(t, err)
	q := &wakingQueue{m: m, wake: make(chan struct{}, 1)}
	svc.DeliverThrough(q)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, _ = m.Deliver(ctx)
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			case <-time.After(10 * time.Second):
			}
		}
	})
	wg.Go(func() { _ = svc.Run(ctx) })
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		wg.Wait()
		require.NoError(t, store.Close())
	}
	t.Cleanup(stop)
	return stop
}

// wakingQueue is the outbox, telling the test's delivery loop when
// something was queued.
type wakingQueue struct {
	m    *alerting.Manager
	wake chan struct{}
}

func (q *wakingQueue) Enqueue(ctx context.Context, receiver string, ev alerting.Event) error {
	err := q.m.Enqueue(ctx, receiver, ev)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return err
}
