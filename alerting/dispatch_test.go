package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

// testConfig is the default configuration without the fast page route, so
// that the Alertmanager timers under test apply to every alert.
func testConfig() alerting.Config {
	cfg := alerting.DefaultConfig()
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}}} // pages inherit every timer
	cfg.Route.GroupBy = []string{"alertname"}
	return cfg
}

func TestGroupingFollowsGroupWaitIntervalAndRepeat(t *testing.T) {
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"service"}
	f := newFixture(t, cfg)
	f.post(`[{"labels":{"alertname":"A","service":"api"},"endsAt":"2026-03-03T10:00:00Z"}]`)

	f.step(29 * time.Second)
	require.Empty(t, f.rcv.all(), "nothing before group_wait (30s)")
	f.step(time.Second)
	require.Equal(t, []string{"firing:A"}, names(f.rcv.all()), "the group is sent at group_wait")

	f.step(10 * time.Second)
	f.post(`[{"labels":{"alertname":"B","service":"api"},"endsAt":"2026-03-03T10:00:00Z"}]`)
	f.step(4*time.Minute + 49*time.Second)
	require.Len(t, f.rcv.all(), 1, "a new alert in a sent group waits for group_interval (5m)")
	f.step(time.Second)
	require.Equal(t, []string{"firing:A", "firing:A,B"}, names(f.rcv.all()), "the group is re-sent with both at group_interval")

	for range 47 { // 3h55m of intervals without news
		f.step(5 * time.Minute)
	}
	require.Len(t, f.rcv.all(), 2, "nothing new before repeat_interval (4h)")
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:A", "firing:A,B", "firing:A,B"}, names(f.rcv.all()), "repeated after repeat_interval")

	// Resolving one alert is news at the next interval.
	f.post(`[{"labels":{"alertname":"A","service":"api"},"endsAt":"2026-03-02T14:06:00Z"}]`)
	f.step(5 * time.Minute)
	got := f.rcv.all()
	require.Equal(t, "firing:B,A(resolved)", names(got)[len(got)-1])
	require.Equal(t, map[string]string{"service": "api"}, got[len(got)-1].GroupLabels)
}

func TestRoutingTreeMatchesWithContinue(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alerting.RouteConfig{
		{Matchers: []string{`team="db"`}, Receiver: "db", Continue: true},
		{Matchers: []string{`severity="page"`}, Receiver: "pager", GroupWait: time.Second},
		{Matchers: []string{`severity=~"page|ticket"`}, Receiver: "tickets"},
	}
	db, pager, tickets := &recorder{}, &recorder{}, &recorder{}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{},
		extra: map[string]alerting.Receiver{"db": db, "pager": pager, "tickets": tickets}}
	f.open()
	f.post(`[{"labels":{"alertname":"DBDown","team":"db","severity":"page"}},
	         {"labels":{"alertname":"Slow","severity":"ticket"}},
	         {"labels":{"alertname":"Other"}}]`)
	f.step(time.Second)
	require.Equal(t, []string{"firing:DBDown"}, names(pager.all()), "the page route has its own 1s group_wait")
	require.Empty(t, db.all())
	f.step(29 * time.Second)
	require.Equal(t, []string{"firing:DBDown"}, names(db.all()), "continue lets the db route and the page route both match")
	require.Equal(t, []string{"firing:Slow"}, names(tickets.all()), "the first matching sibling without continue ends matching")
	require.Equal(t, []string{"firing:Other"}, names(f.rcv.all()), "unmatched alerts go to the root receiver")
}

func TestInhibitionMutesTheTicketOfAPagedSLO(t *testing.T) {
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "slo", "severity"}
	f := newFixture(t, cfg)
	f.post(`[{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api-availability","severity":"page"}},
	         {"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api-availability","severity":"ticket"},"endsAt":"2026-03-03T00:00:00Z"},
	         {"labels":{"alertname":"SLOErrorBudgetBurn","slo":"store-latency","severity":"ticket"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	got := f.rcv.all()
	require.Len(t, got, 2)
	sent := map[string]bool{}
	for _, n := range got {
		sent[n.GroupLabels["slo"]+"/"+n.GroupLabels["severity"]] = true
	}
	require.Equal(t, map[string]bool{"api-availability/page": true, "store-latency/ticket": true}, sent,
		"the ticket of the paged SLO is muted; another SLO's ticket is not")

	// The API reports the inhibition.
	srv := f.serve()
	code, body := do(t, "GET", srv.URL+"/api/v2/alerts?filter=slo%3D%22api-availability%22&filter=severity%3D%22ticket%22", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"state":"suppressed"`)
	require.Regexp(t, `"inhibitedBy":\["[0-9a-f]{16}"\]`, body)

	// When the page resolves, the ticket is news.
	f.post(`[{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"api-availability","severity":"page"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:00:31Z"}]`)
	f.step(5 * time.Minute)
	var tail []string
	for _, n := range f.rcv.all()[2:] {
		tail = append(tail, n.Status+":"+n.GroupLabels["slo"]+"/"+n.GroupLabels["severity"])
	}
	require.ElementsMatch(t, []string{"resolved:api-availability/page", "firing:api-availability/ticket"}, tail)
}

func TestSilencesMuteUntilTheyExpire(t *testing.T) {
	f := newFixture(t, testConfig())
	srv := f.serve()
	code, body := do(t, "POST", srv.URL+"/api/v2/silences",
		`{"matchers":[{"name":"alertname","value":"Noisy","isRegex":false,"isEqual":true}],
		  "startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:10:00Z","createdBy":"oncall","comment":"maintenance"}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"silenceID"`)
	f.post(`[{"labels":{"alertname":"Noisy"},"endsAt":"2026-03-03T00:00:00Z"},{"labels":{"alertname":"Real"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:Real"}, names(f.rcv.all()), "the silenced alert is not sent")
	f.step(5 * time.Minute)
	require.Len(t, f.rcv.all(), 1, "still silenced at 10:05:30")
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:Real", "firing:Noisy"}, names(f.rcv.all()), "sent at the first interval after the silence ends")

	// Silences survive a restart.
	f.restart()
	srv = f.serve()
	code, body = do(t, "GET", srv.URL+"/api/v2/silences", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"state":"expired"`)
	require.Contains(t, body, `"comment":"maintenance"`)
}

func TestMuteTimeIntervalsFollowTheirZone(t *testing.T) {
	cfg := testConfig()
	cfg.TimeIntervals = []alerting.TimeIntervalConfig{{
		Name: "berlin-nights",
		TimeIntervals: []alerting.TimeIntervalPeriod{{
			Times:    []alerting.TimeRangeConfig{{StartTime: "00:00", EndTime: "08:00"}},
			Weekdays: []string{"monday:friday"},
			Location: "Europe/Berlin",
		}},
	}}
	cfg.Route.MuteTimeIntervals = []string{"berlin-nights"}
	f := newFixture(t, cfg)
	// 2026-03-02 06:30 UTC is 07:30 in Berlin (CET, UTC+1): muted.
	f.clock = newClock(time.Date(2026, 3, 2, 6, 30, 0, 0, time.UTC))
	f.restart()
	f.post(`[{"labels":{"alertname":"Night"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Empty(t, f.rcv.all(), "muted at 07:30:30 Berlin time")
	f.step(29 * time.Minute)
	require.Empty(t, f.rcv.all(), "muted at 07:59:30 Berlin time")
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:Night"}, names(f.rcv.all()), "sent at the first flush after 08:00 Berlin time")
}

func TestRestartNeitherRepagesNorForgets(t *testing.T) {
	f := newFixture(t, testConfig())
	f.post(`[{"labels":{"alertname":"Paged"},"endsAt":"2026-03-02T12:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:Paged"}, names(f.rcv.all()))

	f.restart()
	f.step(30 * time.Second)
	f.step(5 * time.Minute)
	require.Len(t, f.rcv.all(), 1, "an alert paged before the restart is not paged again")

	// The alert was not forgotten: it is listed and its resolution is sent.
	srv := f.serve()
	code, body := do(t, "GET", srv.URL+"/api/v2/alerts", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"alertname":"Paged"`)
	f.post(`[{"labels":{"alertname":"Paged"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T10:06:00Z"}]`)
	f.step(5 * time.Minute)
	require.Equal(t, []string{"firing:Paged", "resolved:Paged(resolved)"}, names(f.rcv.all()))
}

func TestOutboxRetriesWithBackoffAndHonoursRetryAfter(t *testing.T) {
	cfg := testConfig()
	flaky := &recorder{fail: &alerting.RetryAfterError{After: 7 * time.Second, Err: context.DeadlineExceeded}}
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, clock: newClock(t0), rcv: flaky}
	f.open()
	f.post(`[{"labels":{"alertname":"A"},"endsAt":"2026-03-03T00:00:00Z"}]`)
	f.step(30 * time.Second)
	require.Empty(t, flaky.all())
	f.step(6 * time.Second)
	flaky.mu.Lock()
	flaky.fail = nil
	flaky.mu.Unlock()
	f.step(0)
	require.Empty(t, flaky.all(), "not retried before Retry-After")
	f.step(time.Second)
	require.Equal(t, []string{"firing:A"}, names(flaky.all()), "delivered once Retry-After has passed")

	// A restart does not send it again: it is marked sent.
	f.restart()
	f.step(time.Minute)
	require.Len(t, flaky.all(), 1)
	counts, err := f.store.OutboxCounts(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sent": 1}, counts)
}

func TestAnAlertThatResolvedDuringARestartIsStillToldResolved(t *testing.T) {
	f := newFixture(t, testConfig())
	f.post(`[{"labels":{"alertname":"Brief"},"endsAt":"2026-03-02T10:02:00Z"}]`)
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:Brief"}, names(f.rcv.all()))
	require.NoError(t, f.store.Close())
	f.clock.Advance(10 * time.Minute) // down while the alert's end time passes
	f.open()
	f.step(30 * time.Second)
	require.Equal(t, []string{"firing:Brief", "resolved:Brief(resolved)"}, names(f.rcv.all()))
}
