package alerting_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/testutil"
)

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

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

// recorder is a receiver that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	got  []*alerting.Notification
	fail error
}

func (r *recorder) Notify(_ context.Context, n *alerting.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, n)
	return nil
}

func (r *recorder) all() []*alerting.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*alerting.Notification(nil), r.got...)
}

type fixture struct {
	t     testing.TB
	dir   string
	cfg   alerting.Config
	clock *clock
	rcv   *recorder
	burns alerting.BurnSource
	extra map[string]alerting.Receiver
	store *alerting.Store
	m     *alerting.Manager
	reg   *prometheus.Registry
}

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// newFixture builds a Manager on a fresh SQLite file with every route
// delivering to one recording receiver called "log".
func newFixture(t testing.TB, cfg alerting.Config) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}}
	f.open()
	return f
}

func (f *fixture) open() { f.openWith(f.clock.Now) }

func (f *fixture) openWith(now func() time.Time) {
	t := f.t
	store, err := alerting.OpenStore(context.Background(), filepath.Join(f.dir, "alerting.db"))
	require.NoError(t, err)
	f.reg = prometheus.NewRegistry()
	m, err := alerting.New(context.Background(), alerting.Options{
		Config:     f.cfg,
		Store:      store,
		Receivers:  f.receivers(),
		Burns:      f.burns,
		Logger:     testutil.Logger(t),
		Registerer: f.reg,
		Now:        now,
	})
	require.NoError(t, err)
	f.store, f.m = store, m
	t.Cleanup(func() { _ = store.Close() })
}

// restart closes the store and builds a new Manager on the same file, as a
// process restart does.
func (f *fixture) restart() {
	require.NoError(f.t, f.store.Close())
	f.open()
}

// step advances the clock by d and flushes and delivers what is due.
func (f *fixture) step(d time.Duration) {
	f.t.Helper()
	f.clock.Advance(d)
	ctx := context.Background()
	_, err := f.m.Tick(ctx)
	require.NoError(f.t, err)
	for {
		n, err := f.m.Deliver(ctx)
		require.NoError(f.t, err)
		if n == 0 {
			break
		}
	}
}

// serve starts the API on a loopback httptest server.
func (f *fixture) serve() *httptest.Server {
	srv := httptest.NewServer(f.m.Handler())
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fixture) receivers() map[string]alerting.Receiver {
	m := map[string]alerting.Receiver{alerting.ReceiverLog: f.rcv}
	for k, v := range f.extra {
		m[k] = v
	}
	return m
}

// post puts alerts through the API handler with the fixture's clock.
func (f *fixture) post(body string) {
	f.t.Helper()
	req := httptest.NewRequest("POST", "/api/v2/alerts", strings.NewReader(body))
	w := httptest.NewRecorder()
	f.m.Handler().ServeHTTP(w, req)
	require.Equal(f.t, 200, w.Code, w.Body.String())
}

// names returns, per notification, its status and alert names.
func names(ns []*alerting.Notification) []string {
	var out []string
	for _, n := range ns {
		s := n.Status + ":"
		for i, a := range n.Alerts {
			if i > 0 {
				s += ","
			}
			s += a.Labels["alertname"]
			if a.Status == alerting.StatusResolved {
				s += "(resolved)"
			}
		}
		out = append(out, s)
	}
	return out
}
