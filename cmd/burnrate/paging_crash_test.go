package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// The pager's promise tested on the built binary, killed with SIGKILL at
// the worst instants, against slack-go's slacktest behind a front that
// can fail (503), hang, or fail only users.lookupByEmail.

// Modes of the faulty front.
const (
	slackUp   int32 = iota
	slackDown       // every call answered 503
	slackHang       // chat.postMessage hangs until the caller gives up
)

type faultySlack struct {
	api   *slackAPI
	front *httptest.Server
	mode  atomic.Int32
	// lookupDown makes users.lookupByEmail answer 503.
	lookupDown atomic.Bool
	// hung receives a value when a post starts hanging.
	hung chan struct{}
	// emails maps the members' emails to their Slack IDs.
	emails map[string]string

	mu sync.Mutex
	// posts are the chat.postMessage calls Slack took, in order.
	posts   []url.Values
	failed  int
	lookups int
}

func newFaultySlack(t *testing.T, emails map[string]string) *faultySlack {
	f := &faultySlack{api: newSlackAPI(t), hung: make(chan struct{}, 16), emails: emails}
	f.front = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.front.Close)
	return f
}

func (f *faultySlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	method := strings.TrimPrefix(r.URL.Path, "/")
	fail := func() {
		f.mu.Lock()
		f.failed++
		f.mu.Unlock()
		http.Error(w, "slack is having a bad day", http.StatusServiceUnavailable)
	}
	switch {
	case f.mode.Load() == slackDown:
		fail()
		return
	case method == "users.lookupByEmail":
		f.mu.Lock()
		f.lookups++
		f.mu.Unlock()
		if f.lookupDown.Load() {
			fail()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if id, ok := f.emails[form.Get("email")]; ok {
			fmt.Fprintf(w, `{"ok":true,"user":{"id":%q}}`, id)
			return
		}
		fmt.Fprint(w, `{"ok":false,"error":"users_not_found"}`)
		return
	case method == "chat.postMessage" && f.mode.Load() == slackHang:
		f.hung <- struct{}{}
		<-r.Context().Done() // until the caller gives up (or dies)
		return
	}
	if _, ok := relay(w, r, f.api.GetAPIURL()+method, body); ok && method == "chat.postMessage" {
		f.mu.Lock()
		f.posts = append(f.posts, form)
		f.mu.Unlock()
	}
}

// relay passes a call on to the Slack API at apiURL (slacktest) and its
// answer back, and returns the answer's body; ok is false when the call
// could not be passed on.
func relay(w http.ResponseWriter, r *http.Request, apiURL string, body []byte) (out []byte, ok bool) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, apiURL, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil, false
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil, false
	}
	defer resp.Body.Close()
	out, _ = io.ReadAll(resp.Body)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
	return out, true
}

// sent lists the channels of the posts Slack took, in order.
func (f *faultySlack) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.posts {
		out = append(out, p.Get("channel"))
	}
	return out
}

func (f *faultySlack) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// pagerStack is `burnrate serve` with Slack at the faulty front, its data
// directory kept across restarts.
type pagerStack struct {
	t    *testing.T
	args []string
	p    *proc
	base string
}

func newPagerStack(t *testing.T, slack *faultySlack) *pagerStack {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
alerting:
  slack:
    token: xoxb-test
    channel: CALERTS
    api_url: %s/
  outbox:
    poll_interval: 100ms
    initial_interval: 200ms
    max_interval: 2s
`, slack.front.URL)), 0o600))
	s := &pagerStack{t: t, args: []string{"serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", ""}}
	s.start()
	return s
}

func (s *pagerStack) start() {
	s.t.Helper()
	s.p = startBinary(s.t, s.args...)
	s.base = s.p.url(s.t)
	testutil.WaitReady(s.t, s.base, 60*time.Second)
}

// kill ends the process with SIGKILL: no shutdown, no flush.
func (s *pagerStack) kill() {
	s.t.Helper()
	require.NoError(s.t, s.p.cmd.Process.Signal(syscall.SIGKILL))
	<-s.p.done
}

// declare sets up the people and a policy paging them one after the
// other, waitMinutes apart, and declares an incident under it.
func (s *pagerStack) declare(people []map[string]string, waitMinutes float64) {
	s.t.Helper()
	var steps []map[string]any
	for _, u := range people {
		postJSON(s.t, s.base+"/api/v1/users", u)
		steps = append(steps, map[string]any{"targets": []map[string]string{{"type": "user", "id": u["id"]}}, "wait_minutes": waitMinutes})
	}
	postJSON(s.t, s.base+"/api/v1/escalation-policies", map[string]any{"id": "p", "steps": steps})
	postJSON(s.t, s.base+"/api/v1/incidents", map[string]string{"title": "api down", "severity": "SEV1", "escalation_policy": "p"})
}

type timelineEvent struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// timeline returns incident 1's events of the given kinds, in order.
func (s *pagerStack) timeline(kinds ...string) []timelineEvent {
	s.t.Helper()
	var inc struct {
		Timeline []timelineEvent `json:"timeline"`
	}
	code, body := testutil.HTTPGet(s.t, s.base+"/api/v1/incidents/1")
	require.Equal(s.t, http.StatusOK, code, body)
	require.NoError(s.t, json.Unmarshal([]byte(body), &inc))
	var out []timelineEvent
	for _, e := range inc.Timeline {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e)
			}
		}
	}
	return out
}

// metric returns the value of one sample of the process's /metrics.
func (s *pagerStack) metric(series string) float64 {
	s.t.Helper()
	code, body := testutil.HTTPGet(s.t, s.base+"/metrics")
	require.Equal(s.t, http.StatusOK, code)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(s.t, err)
	return v
}

// drained waits until the outbox holds nothing undelivered and n pages
// are recorded as delivered: from then on nothing more can be sent.
func (s *pagerStack) drained(n int) {
	s.t.Helper()
	s.p.waitForWithin(s.t, "every page delivered and the outbox empty", 60*time.Second, func() bool {
		return len(s.timeline("notified")) == n &&
			s.metric(`burnrate_alerting_outbox_notifications{state="pending"}`) == 0 &&
			s.metric(`burnrate_alerting_outbox_notifications{state="sending"}`) == 0
	})
}

var trio = []map[string]string{
	{"id": "ann", "name": "Ann", "slack_id": "UANN"},
	{"id": "ben", "name": "Ben", "slack_id": "UBEN"},
	{"id": "cat", "name": "Cat", "slack_id": "UCAT"},
}

// (a) Three pages held up by a Slack outage when the process is killed:
// after the restart each is posted exactly once, in the order of the
// steps. They used to be posted twice: the escalation loop ran twice.
func TestThreePagesHeldByASlackOutageAcrossSIGKILLArriveOnceInOrder(t *testing.T) {
	t.Parallel()
	slack := newFaultySlack(t, nil)
	s := newPagerStack(t, slack)
	slack.mode.Store(slackDown)
	s.declare(trio, 0.05) // a step every 3 s
	s.p.waitForWithin(t, "all three steps ran during the outage", 60*time.Second, func() bool {
		return len(s.timeline("paging")) == 3 && slack.failures() >= 2
	})
	require.Empty(t, slack.sent(), "nothing reached Slack during the outage")
	require.Empty(t, s.timeline("notified"), "nobody is recorded as notified while Slack is down")
	failed := s.timeline("delivery_failed")
	require.NotEmpty(t, failed)
	require.Contains(t, failed[0].Text, "Page to ann (step 1, round 1) failed, retrying")

	s.kill()
	slack.mode.Store(slackUp)
	s.start()
	s.drained(3)
	require.Equal(t, []string{"UANN", "UBEN", "UCAT"}, slack.sent(), "each held page once, in the order of the steps")
}

// (b) Slack hangs on the page's post and the process is killed mid-send:
// the page arrives after the restart. It used to be lost: it left the
// queue before the attempt.
func TestAPageCutShortBySIGKILLWhileSlackHangsArrivesAfterTheRestart(t *testing.T) {
	t.Parallel()
	slack := newFaultySlack(t, nil)
	s := newPagerStack(t, slack)
	slack.mode.Store(slackHang)
	s.declare(trio[:1], 30)
	select {
	case <-slack.hung:
	case <-time.After(60 * time.Second):
		t.Fatalf("the page was never sent\n%s", s.p.log())
	}
	s.kill() // while Slack holds the post

	slack.mode.Store(slackUp)
	s.start()
	s.drained(1)
	require.Equal(t, []string{"UANN"}, slack.sent(), "the page arrives, once")
	require.Equal(t, 1.0, s.metric(`burnrate_alerting_notifications_resent_after_interruption_total{receiver="incidents-pager"}`),
		"the re-send of a cut-short delivery is counted as a possible duplicate")
	require.Contains(t, s.p.log(), "it may arrive twice")
}

// (c) users.lookupByEmail fails for a minute, across a SIGKILL: the page
// to the person mapped by email arrives once Slack answers, and the
// timeline says it failed and was retried. It used to go to the log, with
// "Slack DM" in the timeline.
func TestAPageToAPersonMappedByEmailArrivesAfterAMinuteOfFailedLookups(t *testing.T) {
	t.Parallel()
	slack := newFaultySlack(t, map[string]string{"ben@example.com": "UBEN"})
	s := newPagerStack(t, slack)
	slack.lookupDown.Store(true)
	outage := time.Now()
	s.declare([]map[string]string{{"id": "ben", "name": "Ben", "email": "ben@example.com"}}, 30)
	s.p.waitForWithin(t, "the failed lookup recorded", 30*time.Second, func() bool { return len(s.timeline("delivery_failed")) == 1 })
	s.kill()
	s.start()
	s.p.waitForWithin(t, "lookups retried after the restart", 30*time.Second, func() bool {
		slack.mu.Lock()
		defer slack.mu.Unlock()
		return slack.lookups >= 4
	})
	require.Empty(t, slack.sent())
	require.Empty(t, s.timeline("notified"), "ben is not recorded as notified while the lookup fails")
	time.Sleep(time.Until(outage.Add(time.Minute)))
	slack.lookupDown.Store(false)

	s.drained(1)
	require.Equal(t, []string{"UBEN"}, slack.sent(), "the page arrives once the lookup works")
	failed := s.timeline("delivery_failed")
	require.Len(t, failed, 1, "the failure is recorded once, not at every retry: %+v", failed)
	require.Contains(t, failed[0].Text, "Page to ben (step 1, round 1) failed, retrying: users.lookupByEmail")
	require.Regexp(t, `^Notified ben \(Slack DM\) for escalation step 1, round 1, after \d+ attempts$`, s.timeline("notified")[0].Text)
}
