package incidents_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

// flakySlack is Slack's chat.postMessage and users.lookupByEmail in
// memory (no sockets, so it runs inside a synctest bubble): it answers 500
// until up is set, or, with lookupsOnly, fails only the lookups (503)
// while posts work.
type flakySlack struct {
	mu          sync.Mutex
	up          bool
	lookupsOnly bool
	failed      int
	lookups     int
	posts       []string // "channel text"
}

func (f *flakySlack) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	defer f.mu.Unlock()
	answer := func(code int, s string) (*http.Response, error) {
		return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(s)), Request: r}, nil
	}
	if strings.HasSuffix(r.URL.Path, "/users.lookupByEmail") {
		f.lookups++
		if !f.up {
			f.failed++
			return answer(http.StatusServiceUnavailable, "down")
		}
		return answer(http.StatusOK, `{"ok":true,"user":{"id":"UBEN","name":"ben"}}`)
	}
	if !f.up && !f.lookupsOnly {
		f.failed++
		return answer(http.StatusInternalServerError, "down")
	}
	f.posts = append(f.posts, form.Get("channel")+" "+form.Get("text"))
	return answer(http.StatusOK, fmt.Sprintf(`{"ok":true,"channel":%q,"ts":"1.%d"}`, form.Get("channel"), len(f.posts)))
}

func (f *flakySlack) set(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = up
}

func (f *flakySlack) lookedUp() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func (f *flakySlack) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posts...)
}

// startWithSlack opens the service on the database at path with fake as
// Slack and runs its escalation loop; stop ends both.
func startWithSlack(t *testing.T, path string, fake *flakySlack) (svc *incidents.Service, stop func()) {
	t.Helper()
	svc, err := incidents.Open(context.Background(), incidents.Options{Path: path,
		Slack: incidents.SlackOptions{Token: "xoxb-test", APIURL: "http://slack.invalid/api/", HTTPClient: &http.Client{Transport: fake}}})
	require.NoError(t, err)
	halt := runService(t, svc, path)
	return svc, func() { halt(); require.NoError(t, svc.Close()) }
}

// declareDuringOutage declares an incident paging ann, then ben five
// minutes later, and lets both steps fall due while Slack is down.
func declareDuringOutage(t *testing.T, svc *incidents.Service, fake *flakySlack) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: "ann", Name: "Ann", SlackID: "UANN"}))
	require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: "ben", Name: "Ben", SlackID: "UBEN"}))
	require.NoError(t, svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Steps: []incidents.Step{
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ann"}}, WaitMinutes: 5},
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ben"}}, WaitMinutes: 5},
	}}))
	_, err := svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
	require.NoError(t, err)
	time.Sleep(10 * time.Minute) // both steps fall due during the outage
	synctest.Wait()
	require.Empty(t, fake.sent())
	require.Greater(t, fake.failed, 2, "the pages are retried while Slack is down")
}

// requireBothPagesOnceInOrder checks, a minute after Slack is back, that
// both pages arrived once each in the order of the steps, and that nothing
// follows.
func requireBothPagesOnceInOrder(t *testing.T, fake *flakySlack) {
	t.Helper()
	time.Sleep(time.Minute)
	synctest.Wait()
	sent := fake.sent()
	require.Len(t, sent, 2, "each page arrives once: %q", sent)
	require.True(t, strings.HasPrefix(sent[0], "UANN Paged (escalation step 1"), sent[0])
	require.True(t, strings.HasPrefix(sent[1], "UBEN Paged (escalation step 2"), sent[1])
	time.Sleep(time.Hour)
	synctest.Wait()
	require.Len(t, fake.sent(), 2, "nothing is sent twice")
}

// Slack is down when the first step runs and when the second falls due;
// once it is back both pages arrive, once each and in the order of the
// steps. They used to be lost: a failed post was only written in the
// timeline.
func TestEscalationPagesHeldUpByASlackOutageArriveOnceInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &flakySlack{}
		svc, stop := startWithSlack(t, filepath.Join(t.TempDir(), "incidents.db"), fake)
		defer stop()
		declareDuringOutage(t, svc, fake)
		fake.set(true)
		requireBothPagesOnceInOrder(t, fake)
	})
}

// The process stops while Slack is down with both pages waiting, and
// starts again on the same database once Slack is back: both pages
// arrive, once each and in order. They used to be lost with the process,
// held only in memory.
func TestEscalationPagesWaitingForSlackSurviveARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &flakySlack{}
		path := filepath.Join(t.TempDir(), "incidents.db")
		svc, stop := startWithSlack(t, path, fake)
		declareDuringOutage(t, svc, fake)
		stop()
		fake.set(true)
		_, stop = startWithSlack(t, path, fake)
		defer stop()
		requireBothPagesOnceInOrder(t, fake)
	})
}
