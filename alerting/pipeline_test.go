package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/webhook"
	"github.com/burnrate/burnrate/internal/testutil"
)

// sloConfig groups as the default configuration does (one group per SLO
// and severity) with the default inhibition (a page mutes the tickets of
// its SLO), but gives pages the root's timers.
func sloConfig() alerting.Config {
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "slo", "severity"}
	return cfg
}

const (
	ticketAlert = `{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api","severity":"ticket"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-03T00:00:00Z"}`
	pageAlert   = `{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api","severity":"page"},"startsAt":"2026-03-02T10:01:00Z","endsAt":"2026-03-03T00:00:00Z"}`
)

// groupsOf returns, per notification, its status and the severity of its
// group, and fails on a notification without alerts.
func groupsOf(t *testing.T, ns []*alerting.Notification) []string {
	t.Helper()
	var out []string
	for _, n := range ns {
		require.NotEmpty(t, n.Alerts, "a notification without alerts reached the receiver: %+v", n)
		out = append(out, n.Status+":"+n.GroupLabels["severity"])
	}
	return out
}

func TestAPageInhibitingAnAnnouncedTicketSendsNothingForTheTicket(t *testing.T) {
	f := newFixture(t, sloConfig())
	f.post(`[` + ticketAlert + `]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:ticket"}, groupsOf(t, f.rcv.all()))

	// The burn speeds up: a page for the same SLO fires and mutes the ticket.
	f.step(30 * time.Second)
	f.post(`[` + pageAlert + `]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:ticket", "firing:page"}, groupsOf(t, f.rcv.all()))

	// The ticket group's next flushes find only muted alerts: nothing is
	// sent, not even an empty "resolved".
	for range 3 {
		f.step(5 * time.Minute)
	}
	require.Equal(t, []string{"firing:ticket", "firing:page"}, groupsOf(t, f.rcv.all()))

	// The page resolves; the ticket, still firing, was already announced
	// and is not paged again.
	f.post(`[{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api","severity":"page"},"startsAt":"2026-03-02T10:01:00Z","endsAt":"2026-03-02T10:16:00Z"}]`)
	for range 3 {
		f.step(5 * time.Minute)
	}
	require.Equal(t, []string{"firing:ticket", "firing:page", "resolved:page"}, groupsOf(t, f.rcv.all()))

	// A restart changes nothing.
	f.restart()
	f.step(30 * time.Second)
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:ticket", "firing:page", "resolved:page"}, groupsOf(t, f.rcv.all()))
}

func TestLiftingASilenceOnAnAnnouncedAlertDoesNotPageAgain(t *testing.T) {
	f := newFixture(t, testConfig())
	f.post(`[{"labels":{"alertname":"Disk"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:Disk"}, names(f.rcv.all()))

	srv := f.serve()
	code, body := do(t, "POST", srv.URL+"/api/v2/silences",
		`{"matchers":[{"name":"alertname","value":"Disk","isRegex":false,"isEqual":true}],
		  "startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:20:00Z","createdBy":"oncall","comment":"working on it"}`)
	require.Equal(t, 200, code, body)
	for range 6 { // through the silence and two intervals past its end
		f.step(5 * time.Minute)
	}
	require.Equal(t, []string{"firing:Disk"}, names(f.rcv.all()),
		"a silenced group sends nothing, and the alert it had announced is not news once the silence ends")
}

// panicker is a receiver with a rendering bug.
type panicker struct{ calls int }

func (p *panicker) Notify(context.Context, *alerting.Notification) error {
	p.calls++
	var none []int
	_ = none[p.calls-1] // index out of range, as a renderer indexing an empty list
	return nil
}

func TestAReceiverThatPanicsFailsItsNotificationNotTheProcess(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`team="buggy"`}, Receiver: "buggy"}}
	buggy := &panicker{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{"buggy": buggy}}
	f.open()
	f.post(`[{"labels":{"alertname":"A","team":"buggy"},"endsAt":"2026-03-03T00:00:00Z"},
	         {"labels":{"alertname":"B"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, 1, buggy.calls)
	require.Equal(t, []string{"firing:B"}, names(f.rcv.all()), "other receivers are served")
	counts, err := f.store.OutboxCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sent": 1, "failed": 1}, counts, "the notification that panicked is failed, not left sending")

	// A restart does not try the failed row again (no crash loop).
	f.restart()
	f.step(time.Second)
	require.Equal(t, 1, buggy.calls)
}

// rejecting is a receiver that rejects its first notifications for good,
// as Slack does with invalid_blocks, then accepts.
type rejecting struct {
	recorder
	rejects int
}

func (r *rejecting) Notify(ctx context.Context, n *alerting.Notification) error {
	r.mu.Lock()
	if r.rejects > 0 {
		r.rejects--
		r.mu.Unlock()
		return fmt.Errorf("%w: slack: invalid_blocks", alerting.ErrPermanent)
	}
	r.mu.Unlock()
	return r.recorder.Notify(ctx, n)
}

func TestAPermanentlyRejectedNotificationIsBuiltAgainAtTheNextInterval(t *testing.T) {
	rcv := &rejecting{rejects: 1}
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), extra: map[string]alerting.Receiver{"log": rcv}, rcv: &recorder{}}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Empty(t, rcv.all(), "the first notification was rejected")
	require.InDelta(t, 1, testutil.MetricValue(t, f.reg, "burnrate_alerting_notifications_rejected_total", map[string]string{"receiver": "log"}), 0)

	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:A"}, names(rcv.all()), "a rejected notification is not taken as sent: the next flush builds it again")
	f.step(5 * time.Minute)
	require.Len(t, rcv.all(), 1, "once delivered, it is logged and not repeated")
}

func TestAResolutionIsForgottenOnlyOnceItWasDelivered(t *testing.T) {
	rcv := &rejecting{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), extra: map[string]alerting.Receiver{"log": rcv}, rcv: &recorder{}}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:A"}, names(rcv.all()))

	f.post(`[{"labels":{"alertname":"A"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:01:00Z"}]`)
	rcv.mu.Lock()
	rcv.rejects = 1
	rcv.mu.Unlock()
	f.step(5 * time.Minute)
	require.Len(t, rcv.all(), 1, "the resolution was rejected")

	// A restart between the rejection and the next interval forgets nothing.
	f.restart()
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:A", "resolved:A(resolved)"}, names(rcv.all()),
		"the resolved alert stayed in its group until its resolution was delivered")
	f.step(5 * time.Minute)
	require.Len(t, rcv.all(), 2)
}

func TestAGroupIsNotNotifiedTwiceWhileItsNotificationIsOnItsWay(t *testing.T) {
	flaky := &recorder{fail: errors.New("slack: connection refused")}
	f := &fixture{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: flaky}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	for range 3 { // an outage longer than group_interval
		f.step(5 * time.Minute)
	}
	counts, err := f.store.OutboxCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"pending": 1}, counts, "one notification waits; flushes during the outage do not queue copies")

	flaky.mu.Lock()
	flaky.fail = nil
	flaky.mu.Unlock()
	f.restart()
	f.step(time.Minute)
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:A"}, names(flaky.all()), "delivered once after the outage, and logged")
}

func TestInsertingASiblingRouteKeepsGroupKeys(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}}}
	f := newFixture(t, cfg)
	f.post(`[{"labels":{"alertname":"Down","severity":"page"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	got := f.rcv.all()
	require.Len(t, got, 1)
	require.Equal(t, `{}/{severity="page"}:{alertname="Down"}`, got[0].GroupKey, "the key is the route's matcher path, as Alertmanager's")

	// A new route is inserted before the page route, and Burnrate restarted.
	f.cfg.Route.Routes = append([]alerting.RouteConfig{{Matchers: []string{`team="db"`}}}, f.cfg.Route.Routes...)
	f.restart()
	f.step(30 * time.Second)
	f.step(5 * time.Minute)
	require.Len(t, f.rcv.all(), 1, "the page's group keeps its key, so its log entry: nobody is paged again")

	f.post(`[{"labels":{"alertname":"Down","severity":"page"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:05:00Z"}]`)
	f.step(5 * time.Minute)
	got = f.rcv.all()
	require.Equal(t, []string{"firing:Down", "resolved:Down(resolved)"}, names(got))
	require.Equal(t, got[0].GroupKey, got[1].GroupKey, "the resolution updates the same group (the same Slack message)")
}

func TestSiblingRoutesWithTheSameMatchersKeepTheirOwnGroups(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{
		{Matchers: []string{`severity="page"`}, Receiver: "a", Continue: true},
		{Matchers: []string{`severity="page"`}, Receiver: "b"},
	}
	a, b := &recorder{}, &recorder{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{"a": a, "b": b}}
	f.open()
	f.post(`[{"labels":{"alertname":"Down","severity":"page"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Len(t, a.all(), 1)
	require.Len(t, b.all(), 1)
	require.NotEqual(t, a.all()[0].GroupKey, b.all()[0].GroupKey)
}

func TestAlertsMatchingBothSidesOfAnInhibitRuleDoNotMuteEachOther(t *testing.T) {
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "job"}
	cfg.InhibitRules = []alerting.InhibitRuleConfig{{
		SourceMatchers: []string{`alertname="NodeDown"`},
		TargetMatchers: []string{`alertname=~"NodeDown|DiskSlow"`},
		Equal:          []string{"instance"},
	}}
	f := newFixture(t, cfg)
	f.post(`[{"labels":{"alertname":"NodeDown","instance":"db1","job":"node"},"endsAt":"2026-03-03T00:00:00Z"},
	         {"labels":{"alertname":"NodeDown","instance":"db1","job":"postgres"},"endsAt":"2026-03-03T00:00:00Z"},
	         {"labels":{"alertname":"DiskSlow","instance":"db1","job":"node"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	var jobs []string
	for _, n := range f.rcv.all() {
		jobs = append(jobs, n.GroupLabels["alertname"]+"/"+n.GroupLabels["job"])
	}
	require.ElementsMatch(t, []string{"NodeDown/node", "NodeDown/postgres"}, jobs,
		"both NodeDown alerts notify (as in Alertmanager); DiskSlow, a target only, is muted")
}

func TestEachWebhookURLIsItsOwnDelivery(t *testing.T) {
	var good, bad atomic.Int32
	goodSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { good.Add(1) }))
	t.Cleanup(goodSrv.Close)
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if bad.Add(1) <= 3 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(badSrv.Close)
	cfg := testConfig()
	cfg.Route.Receiver = alerting.ReceiverWebhook
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{alerting.ReceiverWebhook: webhook.New([]string{goodSrv.URL, badSrv.URL}, nil)}}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	for range 10 { // past the failing URL's retries
		f.step(5 * time.Second)
	}
	require.Equal(t, int32(4), bad.Load(), "the failing URL was retried until it took the notification")
	require.Equal(t, int32(1), good.Load(), "the healthy URL got it once")

	// Each URL has its own log entry: a restart pages neither again.
	f.restart()
	f.step(30 * time.Second)
	f.step(5 * time.Minute)
	require.Equal(t, int32(4), bad.Load())
	require.Equal(t, int32(1), good.Load())
}

func TestANewGroupWhoseAlertIsOlderThanGroupWaitFlushesAtOnce(t *testing.T) {
	f := newFixture(t, testConfig())
	f.post(`[{"labels":{"alertname":"Late"},"startsAt":"2026-03-02T09:50:00Z","endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(0)
	require.Equal(t, []string{"firing:Late"}, names(f.rcv.all()), "an alert that started 10 minutes ago has waited long enough")
	f.post(`[{"labels":{"alertname":"Fresh"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(29 * time.Second)
	require.Len(t, f.rcv.all(), 1, "a fresh alert still waits group_wait")
}

func TestAHangingWebhookDoesNotDelayOtherReceivers(t *testing.T) {
	started := make(chan struct{}, 16)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`team="hooks"`}, Receiver: alerting.ReceiverWebhook}}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{alerting.ReceiverWebhook: webhook.New([]string{hang.URL}, &http.Client{})}}
	f.open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	f.post(`[{"labels":{"alertname":"Hook","team":"hooks"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.clock.Advance(30 * time.Second)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the webhook was never called")
	}
	// The webhook now hangs (no client timeout). A page fires.
	f.post(`[{"labels":{"alertname":"Page","severity":"page"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.clock.Advance(30 * time.Second)
	require.Eventually(t, func() bool { return len(f.rcv.all()) == 1 }, 30*time.Second, 10*time.Millisecond,
		"the page is delivered while the webhook still hangs")
	require.Equal(t, []string{"firing:Page"}, names(f.rcv.all()))
}

// throttled answers its first call with a Retry-After, then records.
type throttled struct {
	recorder
	calls int
	after time.Duration
}

func (r *throttled) Notify(ctx context.Context, n *alerting.Notification) error {
	r.mu.Lock()
	r.calls++
	first := r.calls == 1
	r.mu.Unlock()
	if first {
		return &alerting.RetryAfterError{After: r.after, Err: errors.New("slack: ratelimited")}
	}
	return r.recorder.Notify(ctx, n)
}

func TestRetryAfterPausesOnlyTheReceiverThatSentIt(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`team="hooks"`}, Receiver: "hook"}}
	slack, hook := &throttled{after: time.Minute}, &recorder{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{"log": slack, "hook": hook}}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second) // A is rate limited for a minute
	f.post(`[{"labels":{"alertname":"B"},"endsAt":"2026-03-03T00:00:00Z"},
	         {"labels":{"alertname":"C","team":"hooks"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, 1, slack.calls, "B is not sent into Slack's rate limit")
	require.Equal(t, []string{"firing:C"}, names(hook.all()), "another receiver is not held back")
	f.step(30 * time.Second)
	require.ElementsMatch(t, []string{"firing:A", "firing:B"}, names(slack.all()), "both go once the Retry-After has passed")
}
