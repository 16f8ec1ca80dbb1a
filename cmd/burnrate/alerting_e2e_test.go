package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// slackAPI is a fake Slack Web API on loopback that records the messages
// Burnrate posts and updates.
type slackAPI struct {
	*slacktest.Server
	mu      sync.Mutex
	posts   []url.Values
	updates []url.Values
}

func newSlackAPI(t *testing.T) *slackAPI {
	s := &slackAPI{}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			s.mu.Lock()
			ts := fmt.Sprintf("1772445600.%06d", len(s.posts)+1)
			s.posts = append(s.posts, r.PostForm)
			s.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": ts})
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			s.mu.Lock()
			s.updates = append(s.updates, r.PostForm)
			s.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": r.PostForm.Get("ts")})
		})
		c.Handle("/conversations.history", func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": []any{}})
		})
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// texts returns the fallback text of every message posted to the channel
// (thread replies left out) and the number of updates.
func (s *slackAPI) texts() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.posts {
		if p.Get("thread_ts") == "" {
			out = append(out, p.Get("text"))
		}
	}
	return out, len(s.updates)
}

// flushes reads burnrate_alerting_group_flushes_total{outcome} from /metrics.
func flushes(t *testing.T, base, outcome string) int {
	t.Helper()
	_, body := testutil.HTTPGet(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^burnrate_alerting_group_flushes_total\{outcome="` + outcome + `"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return int(v)
}

func postAlerts(t *testing.T, base string, body string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// waitFor polls cond until it holds, failing at once if the process exits.
func (p *proc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	p.waitForWithin(t, what, 30*time.Second, cond)
}

// waitForWithin is waitFor with a deadline of its own.
func (p *proc) waitForWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for !cond() {
		select {
		case err := <-p.done:
			t.Fatalf("burnrate exited while waiting for %s: %v\n%s", what, err, p.log())
		case <-deadline:
			t.Fatalf("timed out waiting for %s\n%s", what, p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "burnrate must exit 0 after SIGTERM\n%s", p.log())
	case <-time.After(10 * time.Second):
		t.Fatalf("burnrate did not exit within 10s of SIGTERM\n%s", p.log())
	}
}

// A slow burn's ticket reaches Slack, then a fast burn's page for the same
// SLO fires and the default inhibit rule mutes the ticket. The ticket
// group's next flush must send nothing (it used to send an empty
// notification that crashed the process, and every restart after it), and
// a restart must page nobody again.
func TestAPageInhibitingAnAnnouncedTicketNeitherCrashesNorRepages(t *testing.T) {
	fake := newSlackAPI(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`listen: 127.0.0.1:0
alerting:
  slack:
    channel: C0ALERTS
    api_url: `+fake.GetAPIURL()+`
  route:
    group_wait: 1s
    group_interval: 2s
  outbox:
    poll_interval: 100ms
`), 0o600))
	t.Setenv("BURNRATE_ALERTING_SLACK_TOKEN", "xoxb-e2e")
	args := []string{"serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", ""}

	now := time.Now().UTC()
	alert := func(severity string, startsAt time.Time) string {
		return fmt.Sprintf(`{"labels":{"alertname":"SLOErrorBudgetBurn","slo":"checkout-availability","severity":%q},"annotations":{"summary":"checkout burns its budget"},"startsAt":%q,"endsAt":%q}`,
			severity, startsAt.Format(time.RFC3339Nano), now.Add(time.Hour).Format(time.RFC3339Nano))
	}
	ticket, page := alert("ticket", now), alert("page", now.Add(time.Second))

	p := startBinary(t, args...)
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	postAlerts(t, base, "["+ticket+"]")
	p.waitFor(t, "the ticket in Slack", func() bool { texts, _ := fake.texts(); return len(texts) == 1 })
	postAlerts(t, base, "["+page+"]")
	p.waitFor(t, "the page in Slack", func() bool { texts, _ := fake.texts(); return len(texts) == 2 })
	p.waitFor(t, "a flush of the muted ticket group", func() bool { return flushes(t, base, "muted") >= 2 })
	texts, updates := fake.texts()
	require.Len(t, texts, 2)
	require.Contains(t, texts[0], "TICKET")
	require.Contains(t, texts[1], "PAGE")
	require.Zero(t, updates, "the muted ticket's message is not touched")

	// Restart after the flushes; Prometheus keeps re-sending both alerts.
	p.stop(t)
	p = startBinary(t, args...)
	base = p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	postAlerts(t, base, "["+ticket+","+page+"]")
	p.waitFor(t, "flushes of both groups after the restart", func() bool {
		return flushes(t, base, "muted") >= 2 && flushes(t, base, "unchanged") >= 2
	})
	texts, updates = fake.texts()
	require.Len(t, texts, 2, "nobody is paged again after the restart: %q", texts)
	require.Zero(t, updates)
	require.NotContains(t, p.log(), "panic")
	p.stop(t)
}
