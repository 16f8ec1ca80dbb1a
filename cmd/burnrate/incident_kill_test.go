package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// slackPosts is a fake Slack Web API that records chat.postMessage calls.
type slackPosts struct {
	mu    sync.Mutex
	posts []slackPost
}

type slackPost struct {
	channel string
	at      time.Time
}

func (s *slackPosts) to(channel string) []slackPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []slackPost
	for _, p := range s.posts {
		if p.channel == channel {
			out = append(out, p)
		}
	}
	return out
}

func postJSON(t *testing.T, url string, body any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(raw))
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s: %s", url, msg)
}

func TestEscalationSurvivesSIGKILLBetweenStepsWithoutSendingAStepTwice(t *testing.T) {
	fake := &slackPosts{}
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chat.postMessage" {
			fake.mu.Lock()
			fake.posts = append(fake.posts, slackPost{channel: r.Form.Get("channel"), at: time.Now()})
			fake.mu.Unlock()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.000100"}`, r.Form.Get("channel"))
			return
		}
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	}))
	defer slack.Close()

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
alerting:
  slack:
    token: xoxb-test
    channel: CALERTS
    api_url: %s
`, slack.URL)), 0o600))
	args := []string{"serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", ""}

	p := startBinary(t, args...)
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	postJSON(t, base+"/api/v1/users", map[string]string{"id": "ann", "name": "Ann", "slack_id": "UANN"})
	postJSON(t, base+"/api/v1/users", map[string]string{"id": "ben", "name": "Ben", "slack_id": "UBEN"})
	const wait = 12 * time.Second // 0.2 minutes
	postJSON(t, base+"/api/v1/escalation-policies", map[string]any{"id": "api", "steps": []map[string]any{
		{"targets": []map[string]string{{"type": "user", "id": "ann"}}, "wait_minutes": 0.2},
		{"targets": []map[string]string{{"type": "user", "id": "ben"}}, "wait_minutes": 0.2},
	}})
	postJSON(t, base+"/api/v1/incidents", map[string]string{"title": "api down", "severity": "SEV1", "escalation_policy": "api"})

	require.Eventually(t, func() bool { return len(fake.to("UANN")) == 1 }, 10*time.Second, 5*time.Millisecond)
	// Step 1's page is confirmed: the outbox holds nothing in flight. (A
	// kill in the instant between Slack taking it and this confirmation
	// sends it again after the restart: the one duplicate at-least-once
	// allows, tested in paging_crash_test.go.)
	require.Eventually(t, func() bool {
		_, body := testutil.HTTPGet(t, base+"/metrics")
		return strings.Contains(body, `burnrate_alerting_outbox_notifications{state="pending"} 0`) &&
			strings.Contains(body, `burnrate_alerting_outbox_notifications{state="sending"} 0`)
	}, 10*time.Second, 5*time.Millisecond)
	// Killed between step 1 and step 2: no shutdown, no flush.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done

	p = startBinary(t, args...)
	base = p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	up := time.Now()
	require.Eventually(t, func() bool { return len(fake.to("UBEN")) == 1 }, 60*time.Second, 5*time.Millisecond, "step 2 after the restart\n%s", p.log())

	var inc struct {
		Timeline []struct {
			At   time.Time `json:"at"`
			Kind string    `json:"kind"`
		} `json:"timeline"`
	}
	code, body := testutil.HTTPGet(t, base+"/api/v1/incidents/1")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal([]byte(body), &inc))
	var steps []time.Time
	for _, e := range inc.Timeline {
		if e.Kind == "paging" {
			steps = append(steps, e.At)
		}
	}
	require.Len(t, steps, 2, "each step ran once: %s", body)
	due := steps[0].Add(wait)
	require.False(t, steps[1].Before(due), "step 2 not before its deadline %s: ran %s", due, steps[1])
	require.WithinDuration(t, laterOf(due, up), steps[1], 5*time.Second, "step 2 runs once its deadline passed and the process is up")
	require.Len(t, fake.to("UANN"), 1, "step 1 was not sent again after the restart")
	require.Len(t, fake.to("UBEN"), 1)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
