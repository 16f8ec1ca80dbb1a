package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
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
