package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/internal/testutil"
)

// fakeSlack is slacktest's server with chat.postMessage, chat.update and
// conversations.history handlers that record what they get and can fail.
type fakeSlack struct {
	*slacktest.Server
	mu      sync.Mutex
	posts   []url.Values
	updates []url.Values
	// failures are answered, in order, before posts succeed: a status code,
	// optionally with a Retry-After.
	failures []failure
	// hang makes the next post be recorded but never answered, as if the
	// process died after Slack took the message.
	hang     bool
	recorded chan struct{}
	ts       int
}

type failure struct {
	code       int
	retryAfter string
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{recorded: make(chan struct{}, 10)}
	f.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.post)
		c.Handle("/chat.update", f.update)
		c.Handle("/conversations.history", f.history)
	})
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

func (f *fakeSlack) post(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		f.mu.Unlock()
		if fl.retryAfter != "" {
			w.Header().Set("Retry-After", fl.retryAfter)
		}
		w.WriteHeader(fl.code)
		return
	}
	f.ts++
	ts := fmt.Sprintf("1772445600.%06d", f.ts)
	v := r.PostForm
	v.Set("ts", ts)
	f.posts = append(f.posts, v)
	hang := f.hang
	f.hang = false
	f.mu.Unlock()
	f.recorded <- struct{}{}
	if hang {
		<-r.Context().Done()
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": v.Get("channel"), "ts": ts})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	f.updates = append(f.updates, r.PostForm)
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": r.PostForm.Get("ts")})
}

func (f *fakeSlack) history(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	var msgs []map[string]any
	for _, p := range f.posts {
		m := map[string]any{"type": "message", "ts": p.Get("ts"), "text": p.Get("text")}
		if md := p.Get("metadata"); md != "" {
			var v any
			_ = json.Unmarshal([]byte(md), &v)
			m["metadata"] = v
		}
		msgs = append(msgs, m)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs})
}

func (f *fakeSlack) snapshot() (posts, updates []url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.posts...), append([]url.Values(nil), f.updates...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	dir   string
	slack *fakeSlack
	clock *clock
	store *alerting.Store
	m     *alerting.Manager
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir(), slack: newFakeSlack(t), clock: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}}
	e.open()
	return e
}

func (e *env) open() {
	store, err := alerting.OpenStore(context.Background(), filepath.Join(e.dir, "alerting.db"))
	require.NoError(e.t, err)
	cfg := alerting.DefaultConfig()
	cfg.Slack = alerting.SlackConfig{Token: "xoxb-test", Channel: "C0ALERTS", APIURL: e.slack.GetAPIURL()}
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}}} // pages inherit every timer
	m, err := alerting.New(context.Background(), alerting.Options{
		Config: cfg, Store: store, Now: e.clock.Now, Logger: testutil.Logger(e.t), Registerer: prometheus.NewRegistry(),
		Receivers: map[string]alerting.Receiver{alerting.ReceiverSlack: slack.New(cfg.Slack, store.ReceiverState("slack"), nil)},
	})
	require.NoError(e.t, err)
	e.store, e.m = store, m
	e.t.Cleanup(func() { _ = store.Close() })
}

func (e *env) restart() {
	require.NoError(e.t, e.store.Close())
	e.open()
}

func (e *env) put(labels map[string]string, ann map[string]string, endsAt time.Time) {
	a := &alerting.Alert{StartsAt: time.Date(2026, 3, 2, 9, 59, 0, 0, time.UTC), EndsAt: endsAt, UpdatedAt: e.clock.Now()}
	a.Labels, a.Annotations = toLS(labels), toLS(ann)
	require.NoError(e.t, e.m.Put(context.Background(), a))
}

func (e *env) step(d time.Duration) {
	e.clock.Advance(d)
	_, err := e.m.Tick(context.Background())
	require.NoError(e.t, err)
	for {
		n, err := e.m.Deliver(context.Background())
		require.NoError(e.t, err)
		if n == 0 {
			return
		}
	}
}

var pageLabels = map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "service": "api",
	"severity": "page", "tier": "page-fast", "window": "1h/5m"}

var pageAnnotations = map[string]string{
	"summary":          "SLO api-availability (99.9% of 30d) is burning its error budget 15.0x too fast (page, 1h/5m)",
	"burn_rate_1h":     "15.00x",
	"burn_rate_5m":     "16.20x",
	"budget_remaining": "97.1%",
	"objective":        "99.9%",
	"runbook_url":      "https://runbooks.example/api",
	"dashboard_url":    "http://127.0.0.1:8080/d/api",
	"trace_ids":        "4bf92f3577b34da6a3ce929d0e0e4736",
}

func TestSlackMessageShowsTheBurnAndUpdatesOnResolve(t *testing.T) {
	e := newEnv(t)
	far := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	e.put(pageLabels, pageAnnotations, far)
	e.step(30 * time.Second)
	posts, _ := e.slack.snapshot()
	require.Len(t, posts, 1)
	p := posts[0]
	require.Equal(t, "C0ALERTS", p.Get("channel"))
	require.Equal(t, "[FIRING] PAGE: SLO api-availability", p.Get("text"))
	var blocks slackapi.Blocks
	require.NoError(t, json.Unmarshal([]byte(p.Get("blocks")), &blocks))
	raw := p.Get("blocks")
	for _, want := range []string{
		"FIRING · PAGE · SLO api-availability", "*Severity*\\npage", "*SLO*\\napi-availability",
		"*Burn rate*\\n1h 15.00x · 5m 16.20x", "*Budget remaining*\\n97.1%", "`1h/5m`",
		"4bf92f3577b34da6a3ce929d0e0e4736", `"action_id":"burnrate_acknowledge"`, `"action_id":"burnrate_resolve"`,
		`"url":"https://runbooks.example/api"`, `"url":"http://127.0.0.1:8080/d/api"`,
	} {
		require.Contains(t, raw, want)
	}
	require.Len(t, blocks.BlockSet, 5, "header, facts, alerts, traces, actions")
	require.Contains(t, p.Get("metadata"), "burnrate_alert_notification")

	// Resolve: the same message is updated and the thread gets a reply.
	e.put(pageLabels, pageAnnotations, e.clock.Now())
	e.step(5 * time.Minute)
	posts, updates := e.slack.snapshot()
	require.Len(t, updates, 1)
	require.Equal(t, p.Get("ts"), updates[0].Get("ts"), "chat.update targets the original message")
	require.Contains(t, updates[0].Get("blocks"), "RESOLVED · PAGE · SLO api-availability")
	require.NotContains(t, updates[0].Get("blocks"), "burnrate_acknowledge", "no buttons once resolved")
	require.Len(t, posts, 2)
	require.Equal(t, p.Get("ts"), posts[1].Get("thread_ts"), "the change is replied in the message's thread")
	require.Contains(t, posts[1].Get("text"), "Resolved")
}

func TestSlackRetriesOn500And429WithoutDuplicates(t *testing.T) {
	e := newEnv(t)
	e.slack.failures = []failure{{code: 500}, {code: 429, retryAfter: "20"}}
	e.put(pageLabels, pageAnnotations, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	e.step(30 * time.Second) // 500
	posts, _ := e.slack.snapshot()
	require.Empty(t, posts)
	e.step(2 * time.Second) // backoff (<= 0.75s) passed: 429, Retry-After 20s
	e.step(19 * time.Second)
	posts, _ = e.slack.snapshot()
	require.Empty(t, posts, "Retry-After is honoured")
	e.step(time.Second)
	posts, _ = e.slack.snapshot()
	require.Len(t, posts, 1, "delivered after the 500 and the 429")
	e.step(time.Hour)
	posts, _ = e.slack.snapshot()
	require.Len(t, posts, 1, "and only once")
}

func TestSlackRestartMidSendDoesNotDuplicate(t *testing.T) {
	e := newEnv(t)
	e.slack.hang = true
	e.put(pageLabels, pageAnnotations, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	e.clock.Advance(30 * time.Second)
	_, err := e.m.Tick(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-e.slack.recorded // Slack has the message; the answer never comes
		cancel()
	}()
	_, err = e.m.Deliver(ctx)
	require.NoError(t, err)
	counts, err := e.store.OutboxCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sending": 1}, counts, "the interrupted delivery is still owed")

	e.restart()
	e.step(time.Second)
	posts, _ := e.slack.snapshot()
	require.Len(t, posts, 1, "the message found in the channel is not posted again")
	counts, err = e.store.OutboxCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sent": 1}, counts)

	// Its later resolution updates that message.
	e.put(pageLabels, pageAnnotations, e.clock.Now())
	e.step(5 * time.Minute)
	_, updates := e.slack.snapshot()
	require.Len(t, updates, 1)
	require.Equal(t, posts[0].Get("ts"), updates[0].Get("ts"))
}

func toLS(m map[string]string) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// TestBlocksGolden pins the whole Block Kit message of a firing page and of
// its resolution; rewrite with `go test ./alerting/slack -update`.
func TestBlocksGolden(t *testing.T) {
	n := &alerting.Notification{
		ID: 1, Receiver: "slack", Status: alerting.StatusFiring, GroupKey: `0.0:{alertname="SLOErrorBudgetBurn",severity="page",slo="api-availability"}`,
		CommonLabels: map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "severity": "page", "service": "api"},
	}
	for _, tier := range []struct{ name, window, long, short, r1, r2 string }{
		{"page-fast", "1h/5m", "1h", "5m", "15.00x", "16.20x"},
		{"page-slow", "6h/30m", "6h", "30m", "7.10x", "9.80x"},
	} {
		labels := map[string]string{}
		for k, v := range pageLabels {
			labels[k] = v
		}
		labels["tier"], labels["window"] = tier.name, tier.window
		ann := map[string]string{}
		for k, v := range pageAnnotations {
			ann[k] = v
		}
		delete(ann, "burn_rate_1h")
		delete(ann, "burn_rate_5m")
		ann["burn_rate_"+tier.long], ann["burn_rate_"+tier.short] = tier.r1, tier.r2
		ann["summary"] = fmt.Sprintf("SLO api-availability (99.9%% of 30d) is burning its error budget %s too fast (page, %s)", tier.r1, tier.window)
		n.Alerts = append(n.Alerts, alerting.NotifiedAlert{Status: alerting.StatusFiring, Labels: labels, Annotations: ann,
			StartsAt: time.Date(2026, 3, 2, 9, 59, 0, 0, time.UTC), Fingerprint: "0123456789abcdef"})
	}
	firing, err := json.MarshalIndent(slack.Blocks(n), "", "  ")
	require.NoError(t, err)
	testutil.Golden(t, "blocks_firing.golden.json", append(firing, '\n'))

	n.Status = alerting.StatusResolved
	for i := range n.Alerts {
		n.Alerts[i].Status = alerting.StatusResolved
	}
	resolved, err := json.MarshalIndent(slack.Blocks(n), "", "  ")
	require.NoError(t, err)
	testutil.Golden(t, "blocks_resolved.golden.json", append(resolved, '\n'))
}
