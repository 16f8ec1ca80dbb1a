package incidents_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/webhook"
	"github.com/burnrate/burnrate/incidents"
)

// hookServer is a webhook receiver that answers 503 while down.
type hookServer struct {
	mu   sync.Mutex
	down bool
	got  []incidents.WebhookEvent
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var ev incidents.WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.got = append(h.got, ev)
}

func (h *hookServer) received() []incidents.WebhookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]incidents.WebhookEvent(nil), h.got...)
}

// webhookProcess is the part of a Burnrate process that sends incident
// webhooks: the incidents service, forwarding its timeline, and alerting's
// outbox with the webhook receiver, on SQLite files in dir.
type webhookProcess struct {
	svc    *incidents.Service
	store  *alerting.Store
	m      *alerting.Manager
	cancel context.CancelFunc
	done   chan struct{}
}

// forward false leaves the service's loop stopped, as a process killed
// right after committing changes and before handing them to the outbox.
func startWebhookProcess(t *testing.T, dir, url string, c *clock, forward bool) *webhookProcess {
	t.Helper()
	ctx := context.Background()
	cfg := incidents.Config{WebhookURLs: []string{url}}
	svc, err := incidents.Open(ctx, incidents.Options{Path: filepath.Join(dir, "incidents.db"), Now: c.Now, Config: cfg})
	require.NoError(t, err)
	store, err := alerting.OpenStore(ctx, filepath.Join(dir, "alerting.db"))
	require.NoError(t, err)
	m, err := alerting.New(ctx, alerting.Options{Store: store, Now: c.Now,
		Receivers: map[string]alerting.Receiver{incidents.WebhookReceiverName: webhook.New(cfg.WebhookURLs, nil),
			incidents.PagerReceiverName: svc.Pager()}})
	require.NoError(t, err)
	svc.DeliverThrough(m)
	require.NoError(t, svc.SendEvents(ctx, m, incidents.WebhookReceiverName))
	runCtx, cancel := context.WithCancel(ctx)
	p := &webhookProcess{svc: svc, store: store, m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if forward {
			_ = svc.Run(runCtx)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *webhookProcess) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	_ = p.svc.Close()
	_ = p.store.Close()
	p.cancel = nil
}

// queued waits until n incident events are in the outbox.
func (p *webhookProcess) queued(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		counts, err := p.store.OutboxCounts(context.Background())
		require.NoError(t, err)
		total := 0
		for _, c := range counts {
			total += c
		}
		return total == n
	}, 10*time.Second, 5*time.Millisecond)
}

func TestWebhookReceiverThatIsDownGetsEveryIncidentChangeInOrderAfterARestart(t *testing.T) {
	hook := &hookServer{down: true}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	c := &clock{t: t0}
	ctx := context.Background()
	actor := incidents.Actor{By: "ana", Source: "api"}

	p := startWebhookProcess(t, dir, srv.URL, c, true)
	require.NoError(t, p.svc.PutUser(ctx, &incidents.User{ID: "ana", Name: "Ana"}))
	require.NoError(t, p.svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Steps: []incidents.Step{
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ana"}}, WaitMinutes: 5}}}))
	inc, err := p.svc.Declare(ctx, incidents.NewIncident{Title: "Checkout errors", Severity: "SEV2",
		Service: "checkout", SLO: "checkout-availability", EscalationPolicy: "p"})
	require.NoError(t, err)
	c.Advance(time.Minute)
	_, err = p.svc.Acknowledge(ctx, inc.ID, actor)
	require.NoError(t, err)
	_, err = p.svc.EscalateNow(ctx, inc.ID, actor)
	require.NoError(t, err)
	_, err = p.svc.AddNote(ctx, inc.ID, actor, "rolling back")
	require.NoError(t, err)
	_, err = p.m.Deliver(ctx) // the receiver is down: every attempt fails
	require.NoError(t, err)
	require.Empty(t, hook.received())
	p.stop()

	// The process restarts; more happens while the receiver is still down,
	// and the process dies before handing it to the outbox.
	p = startWebhookProcess(t, dir, srv.URL, c, false)
	c.Advance(time.Minute)
	_, err = p.svc.Resolve(ctx, inc.ID, actor, "rolled back")
	require.NoError(t, err)
	_, err = p.svc.Reopen(ctx, inc.ID, actor, "errors are back")
	require.NoError(t, err)
	p.stop()
	p = startWebhookProcess(t, dir, srv.URL, c, true)

	hook.mu.Lock()
	hook.down = false
	hook.mu.Unlock()
	// The receiver gets the whole timeline, in order, each event once;
	// escalation notifications interleave as the escalation runs.
	ids := func(evs []incidents.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	var want, sent []int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		c.Advance(3 * time.Minute) // past any backoff
		_, err := p.m.Deliver(ctx)
		require.NoError(t, err)
		timeline, err := p.svc.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		want, sent = ids(timeline), nil
		for _, ev := range hook.received() {
			sent = append(sent, ev.Event.ID)
		}
		counts, err := p.store.OutboxCounts(ctx)
		require.NoError(t, err)
		if len(sent) >= len(want) && counts["pending"]+counts["sending"] == 0 {
			break // every event and every page delivered: nothing more can come
		}
		time.Sleep(20 * time.Millisecond) // the forwarder hands events over on its own goroutine, each second
	}
	require.Equal(t, want, sent, "every change, in order, each once")
	// Escalation's own events (steps, deliveries, pages no longer needed)
	// interleave as it runs.
	var kinds []string
	paging := 0
	for _, ev := range hook.received() {
		switch {
		case ev.Event.Kind == incidents.EventPaging:
			paging++
		case ev.Event.Source == "escalation":
		default:
			kinds = append(kinds, ev.Event.Kind)
		}
	}
	require.Equal(t, []string{"triggered", "acknowledged", "escalated", "note", "resolved", "reopened"}, kinds)
	got := hook.received()
	for _, ev := range got {
		require.Equal(t, inc.ID, ev.Incident.ID)
		require.Equal(t, "Checkout errors", ev.Incident.Title)
		require.Equal(t, "checkout", ev.Incident.Service)
		require.Equal(t, "checkout-availability", ev.Incident.SLO)
		require.Equal(t, t0, ev.Incident.TriggeredAt)
	}
	p.queued(t, len(want)+paging) // each step paged one person, through the same outbox
}

func TestIncidentWebhookURLsMustBeHTTP(t *testing.T) {
	cases := []struct {
		name string
		urls []string
		want string
	}{
		{"a URL without a scheme is named by its index", []string{"http://ok.example/hook", "hooks.example/in"}, `incidents.webhook_urls[1]: "hooks.example/in" is not an http:// or https:// URL`},
		{"another scheme is refused", []string{"ftp://hooks.example/in"}, `incidents.webhook_urls[0]: "ftp://hooks.example/in"`},
		{"an empty URL is refused", []string{""}, `incidents.webhook_urls[0]: ""`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := incidents.Open(context.Background(), incidents.Options{Path: filepath.Join(t.TempDir(), "i.db"),
				Config: incidents.Config{WebhookURLs: c.urls}})
			require.ErrorContains(t, err, c.want)
		})
	}
}
