//go:build e2e

// The end-to-end suite (`make e2e`): the built binary, driven as a user
// drives it, against a fake Slack Web API on loopback. It is behind the
// e2e build tag so that `go test ./...` does not run it a second time: it
// takes minutes of real time, because burn-rate windows fill and cool in
// real time.

package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	alertslack "github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/internal/testutil"
)

// e2eSigningSecret is the Slack app's signing secret in the test config.
const e2eSigningSecret = "e2e-signing-secret"

// e2eFactor is the burn rate of the suite's one page tier: both 5m windows
// above 30x the budget (3% of edge requests failing). One shard of four
// down fails about 10% of the edge's requests on a fresh install.
const e2eFactor = 30

// escalationWait is each escalation step's wait (0.25 minutes).
const escalationWait = 15 * time.Second

// steadyFor is how long step 1 watches steady load before the fault.
const steadyFor = time.Minute

// slackCall is one call Burnrate made to the Slack Web API, in arrival order.
type slackCall struct {
	At       time.Time
	Method   string
	Channel  string
	TS       string // the message's timestamp (assigned by Slack for a post)
	ThreadTS string
	Text     string
	Blocks   string
	Failed   bool // answered with an outage error, not passed on
}

// fakeSlack is the alerting tests' slacktest server (newSlackAPI) behind a
// front that logs every call in order and can play a Slack outage.
type fakeSlack struct {
	*slackAPI
	front *httptest.Server
	down  atomic.Bool
	// failures counts the calls answered during the outage.
	failures atomic.Int64
	mu       sync.Mutex
	calls    []slackCall
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{slackAPI: newSlackAPI(t)}
	f.front = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.front.Close)
	return f
}

// URL is the API URL Burnrate is configured with.
func (f *fakeSlack) URL() string { return f.front.URL + "/" }

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	c := slackCall{At: time.Now(), Method: strings.TrimPrefix(r.URL.Path, "/"), Channel: form.Get("channel"),
		TS: form.Get("ts"), ThreadTS: form.Get("thread_ts"), Text: form.Get("text"), Blocks: form.Get("blocks")}
	if f.down.Load() {
		c.Failed = true
		f.record(c)
		// Every other call hangs past the clients' 10 s timeout.
		if f.failures.Add(1)%2 == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(11 * time.Second):
			}
		}
		http.Error(w, "slack is having a bad day", http.StatusInternalServerError)
		return
	}
	out, ok := relay(w, r, f.GetAPIURL()+c.Method, body)
	if !ok {
		return
	}
	if c.Method == "chat.postMessage" {
		var ans struct {
			TS string `json:"ts"`
		}
		_ = json.Unmarshal(out, &ans)
		c.TS = ans.TS
	}
	f.record(c)
}

func (f *fakeSlack) record(c slackCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

// delivered returns the calls of a method that reached Slack, filtered.
func (f *fakeSlack) delivered(method string, keep func(slackCall) bool) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if !c.Failed && c.Method == method && (keep == nil || keep(c)) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Failed {
			n++
		}
	}
	return n
}

// e2eStack is one `burnrate up` with the suite's configuration, its data
// directory kept across restarts.
type e2eStack struct {
	t     *testing.T
	slack *fakeSlack
	args  []string
	p     *proc
	base  string
	// backend is the remote metrics backend, if any.
	backend string
	// timings are printed at the end, in the order measured.
	timings []string
}

// e2eOptions vary the stack for the interop variants.
type e2eOptions struct {
	// remoteWrite, when set, is collector.remote_write.url.
	remoteWrite string
	// keepRecordedHome drops Burnrate's own recorded series (slo:*, ALERTS)
	// from remote write.
	keepRecordedHome bool
	// backend, when set, is metrics.url with metrics.backend prometheus.
	backend string
	// edge, when set, is demo.edge_listen.
	edge string
	// noOwnEdgePage disables Burnrate's own page rule for the edge: pages
	// then come from Prometheus.
	noOwnEdgePage bool
}

func newE2EStack(t *testing.T) *e2eStack { return newE2EStackWith(t, e2eOptions{}) }

func newE2EStackWith(t *testing.T, o e2eOptions) *e2eStack {
	s := &e2eStack{t: t, slack: newFakeSlack(t), backend: o.backend}
	collectorExtra, metrics, edgeRules := "", "", ""
	if o.remoteWrite != "" {
		collectorExtra = "\n  remote_write: {url: " + o.remoteWrite + "}"
		if o.keepRecordedHome {
			// The receiver evaluates the exported rules and records these
			// series itself (docs/collector.md, remote write).
			collectorExtra = "\n  remote_write:\n    url: " + o.remoteWrite +
				"\n    write_relabel_configs:\n      - {source_labels: [__name__], regex: 'slo:.*|ALERTS|ALERTS_FOR_STATE', action: drop}"
		}
	}
	if o.backend != "" {
		metrics = "metrics: {backend: prometheus, url: " + o.backend + "}\n"
	}
	edge := "127.0.0.1:0"
	if o.edge != "" {
		edge = o.edge
	}
	if o.noOwnEdgePage {
		edgeRules = "\n      demo-edge-availability: {disable: [page-e2e]}"
	}
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies.yml")
	require.NoError(t, os.WriteFile(policies, []byte(fmt.Sprintf(`policies:
  - service: demo-edge
    max_burn_rate: {5m: %d}
`, e2eFactor)), 0o600))
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
collector:
  otlp_listen: ""%s
%sdemo:
  edge_listen: %s
  load: {rate: 40, shape: constant, clients: 10}
alerting:
  slack:
    token: xoxb-e2e
    signing_secret: %s
    channel: C0ALERTS
    api_url: %s
  route:
    group_wait: 1s
    group_interval: 3s
  outbox:
    poll_interval: 100ms
    max_interval: 2s
  rules:
    budget_exhausted: false
    tiers:
      - {name: page-e2e, severity: page, long_window: 5m, short_window: 5m, factor: %d}
    slos:
      demo-api-availability: {disable: [page-e2e]}
      demo-edge-latency: {disable: [page-e2e]}%s
incidents:
  on_alert_resolved: resolve
  escalation_policy: e2e
deploy:
  policies: [%s]
`, collectorExtra, metrics, edge, e2eSigningSecret, s.slack.URL(), e2eFactor, edgeRules, policies)), 0o600))
	s.args = []string{"up", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data")}
	return s
}

func (s *e2eStack) start() {
	s.t.Helper()
	s.p = startBinary(s.t, s.args...)
	s.base = s.p.url(s.t)
	testutil.WaitReady(s.t, s.base, 60*time.Second)
}

// step prints a step of the scenario and, with a timing, keeps it for the
// summary.
func (s *e2eStack) step(name string, timing ...any) {
	s.t.Helper()
	if len(timing) == 0 {
		s.t.Logf("step: %s", name)
		return
	}
	line := fmt.Sprintf("%s: %s", name, fmt.Sprint(timing...))
	s.timings = append(s.timings, line)
	s.t.Logf("step: %s", line)
}

func (s *e2eStack) summary() {
	s.t.Helper()
	s.t.Logf("timings of %s:\n  %s", s.t.Name(), strings.Join(s.timings, "\n  "))
}

func (s *e2eStack) within(what string, d time.Duration, cond func() bool) {
	s.t.Helper()
	s.p.waitForWithin(s.t, what, d, cond)
}

func (s *e2eStack) getJSON(path string, into any) {
	s.t.Helper()
	code, body := testutil.HTTPGet(s.t, s.base+path)
	require.Equal(s.t, http.StatusOK, code, "%s: %s", path, body)
	require.NoError(s.t, json.Unmarshal([]byte(body), into), "%s: %s", path, body)
}

// cli runs a burnrate command against the stack.
func (s *e2eStack) cli(args ...string) (int, string) {
	s.t.Helper()
	code, stdout, stderr := runBinary(s.t, nil, append(args, "--url", s.base)...)
	return code, stdout + stderr
}

// sloStatus is the part of GET /api/v1/slos the suite reads.
type sloStatus struct {
	ID      string `json:"id"`
	Windows []struct {
		Window   string   `json:"window"`
		BurnRate *float64 `json:"burn_rate"`
	} `json:"windows"`
	BudgetConsumed  *float64 `json:"budget_consumed"`
	BudgetRemaining *float64 `json:"budget_remaining"`
	Tiers           []struct {
		Firing bool `json:"firing"`
	} `json:"tiers"`
	Error string `json:"error"`
}

func (st sloStatus) burn(w string) float64 {
	for _, x := range st.Windows {
		if x.Window == w && x.BurnRate != nil {
			return *x.BurnRate
		}
	}
	return 0
}

func (s *e2eStack) slos() map[string]sloStatus {
	s.t.Helper()
	var body struct {
		Data []sloStatus `json:"data"`
	}
	s.getJSON("/api/v1/slos", &body)
	out := map[string]sloStatus{}
	for _, st := range body.Data {
		out[st.ID] = st
	}
	return out
}

// incident is the part of GET /api/v1/incidents/{id} the suite reads.
type incident struct {
	ID          int64     `json:"id"`
	Status      string    `json:"status"`
	SLO         string    `json:"slo"`
	GroupKey    string    `json:"group_key"`
	TriggeredAt time.Time `json:"triggered_at"`
	// ImpactStartedAt is when the SLO began to burn, from the alert.
	ImpactStartedAt *time.Time `json:"impact_started_at"`
	AcknowledgedBy  string     `json:"acknowledged_by"`
	ResolvedAt      *time.Time `json:"resolved_at"`
	Timeline        []struct {
		At     time.Time `json:"at"`
		Kind   string    `json:"kind"`
		Source string    `json:"source"`
		Text   string    `json:"text"`
	} `json:"timeline"`
}

func (inc incident) events(kind string) int {
	n := 0
	for _, e := range inc.Timeline {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (s *e2eStack) incidents() []incident {
	s.t.Helper()
	var body struct {
		Incidents []incident `json:"incidents"`
	}
	s.getJSON("/api/v1/incidents", &body)
	return body.Incidents
}

func (s *e2eStack) incident(id int64) incident {
	s.t.Helper()
	var inc incident
	s.getJSON(fmt.Sprintf("/api/v1/incidents/%d", id), &inc)
	return inc
}

func (s *e2eStack) postJSON(path string, body any) {
	s.t.Helper()
	postJSON(s.t, s.base+path, body)
}

// setUpOnCall creates the people and the escalation policy named in the
// config: ann has a Slack ID, ben only an email (found with
// users.lookupByEmail); steps of 15 s, repeated once.
func (s *e2eStack) setUpOnCall() {
	s.t.Helper()
	s.postJSON("/api/v1/users", map[string]string{"id": "ann", "name": "Ann", "slack_id": "UANN"})
	s.postJSON("/api/v1/users", map[string]string{"id": "ben", "name": "Ben", "email": "ben@example.com"})
	wait := escalationWait.Minutes()
	s.postJSON("/api/v1/escalation-policies", map[string]any{"id": "e2e", "repeat": 1, "steps": []map[string]any{
		{"targets": []map[string]string{{"type": "user", "id": "ann"}}, "wait_minutes": wait},
		{"targets": []map[string]string{{"type": "user", "id": "ben"}}, "wait_minutes": wait},
	}})
}

// writeHistory remote-writes good edge traffic from 21 to 6 minutes ago, as
// a platform that has been serving leaves it: the period then holds complete
// 5-minute slices (so budgets are known), and the 5m windows, where the
// page tier looks, hold only live traffic.
func (s *e2eStack) writeHistory(rate float64) {
	s.t.Helper()
	now := time.Now()
	var req prompb.WriteRequest
	for _, name := range []string{"http_server_request_duration_seconds_count", "http_server_request_duration_seconds_bucket"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: name}, {Name: "http_response_status_code", Value: "200"},
			{Name: "instance", Value: "e2e-history"}, {Name: "job", Value: "demo-edge"}}}
		if strings.HasSuffix(name, "_bucket") {
			ts.Labels = append(ts.Labels, prompb.Label{Name: "le", Value: "0.25"})
		}
		for at, v := now.Add(-21*time.Minute), 0.0; at.Before(now.Add(-6 * time.Minute)); at, v = at.Add(10*time.Second), v+10*rate {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: v})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	remoteWrite(s.t, s.base, "", &req)
}

// pages returns the alert messages posted to the alert channel.
func (s *e2eStack) pages() []slackCall {
	return s.slack.delivered("chat.postMessage", func(c slackCall) bool { return c.Channel == "C0ALERTS" && c.ThreadTS == "" })
}

// dms returns the escalation pages sent to one person or, with "", to
// anyone but the alert channel.
func (s *e2eStack) dms(to string) []slackCall {
	return s.slack.delivered("chat.postMessage", func(c slackCall) bool {
		return c.Channel != "C0ALERTS" && (to == "" || c.Channel == to)
	})
}

// updates returns the chat.update calls for one message.
func (s *e2eStack) updates(ts string) []slackCall {
	return s.slack.delivered("chat.update", func(c slackCall) bool { return c.TS == ts })
}

// click sends Slack's signed block_actions request for a button of a
// posted message, as Slack does when someone presses it.
func (s *e2eStack) click(msg slackCall, actionID, userID, userName string) {
	s.t.Helper()
	var blocks slack.Blocks
	require.NoError(s.t, json.Unmarshal([]byte(msg.Blocks), &blocks))
	value := ""
	for _, b := range blocks.BlockSet {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, el := range ab.Elements.ElementSet {
				if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.ActionID == actionID {
					value = btn.Value
				}
			}
		}
	}
	require.NotEmpty(s.t, value, "message has no %s button: %s", actionID, msg.Blocks)
	payload, err := json.Marshal(map[string]any{
		"type":         "block_actions",
		"user":         map[string]string{"id": userID, "name": userName},
		"channel":      map[string]string{"id": msg.Channel},
		"container":    map[string]string{"type": "message", "channel_id": msg.Channel, "message_ts": msg.TS},
		"message":      map[string]any{"ts": msg.TS, "blocks": json.RawMessage(msg.Blocks)},
		"response_url": s.slack.front.URL + "/response",
		"actions":      []map[string]string{{"type": "button", "block_id": "burnrate_actions", "action_id": actionID, "value": value}},
	})
	require.NoError(s.t, err)
	body := url.Values{"payload": {string(payload)}}.Encode()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(e2eSigningSecret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, err := http.NewRequest(http.MethodPost, s.base+"/api/v1/slack/interactions", strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	_ = resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode, "Slack's click is answered 200")
}

// edgeIncident returns the incident of the edge availability SLO, if any.
func (s *e2eStack) edgeIncident() (incident, bool) {
	for _, inc := range s.incidents() {
		if inc.SLO == "demo-edge-availability" {
			return inc, true
		}
	}
	return incident{}, false
}

var traceIDs = regexp.MustCompile("Example failing traces: ((?:`[0-9a-f]{32}` ?)+)")

// startSteady starts the stack with its on-call setup and history, and
// runs step 1.
func (s *e2eStack) startSteady() {
	s.t.Helper()
	s.start()
	s.setUpOnCall()
	s.writeHistory(40)
	s.healthy()
}

// healthy is step 1: steady load, every SLO healthy, the gate passes.
func (s *e2eStack) healthy() {
	t := s.t
	s.within("every SLO evaluated with traffic", 60*time.Second, func() bool {
		sts := s.slos()
		if len(sts) != 3 {
			return false
		}
		for _, st := range sts {
			if st.Error != "" || st.burn("5m") == 0 && st.Windows == nil {
				return false
			}
		}
		// The history gives the edge's period complete slices: its budget
		// is known (on the embedded TSDB, where the history is written).
		return s.backend != "" || sts["demo-edge-availability"].BudgetRemaining != nil
	})
	// A minute of steady load warms the cache and fills the 5m windows
	// with good traffic; nothing burns meanwhile.
	for steady := time.Now().Add(steadyFor); time.Now().Before(steady); time.Sleep(5 * time.Second) {
		for id, st := range s.slos() {
			for _, tier := range st.Tiers {
				require.False(t, tier.Firing, "%s fires on steady load: %+v", id, st)
			}
			require.Less(t, st.burn("5m"), 1.0, "%s burns on steady load", id)
		}
	}
	code, out := s.cli("gate", "--service", "demo-edge")
	require.Equal(t, 0, code, "the gate passes on steady load:\n%s", out)
	s.step("1. steady load: every SLO healthy, `burnrate gate --service demo-edge` exits 0")
}

// outage is step 2: inject the shard outage and wait for the page, the
// incident and the first escalation step. It returns the page and the
// instant of the fault.
func (s *e2eStack) outage() (slackCall, time.Time) {
	t := s.t
	code, out := s.cli("fault", "set", "store.shard_down", "1")
	require.Equal(t, 0, code, out)
	fault := time.Now()
	s.within("the page in Slack", 3*time.Minute, func() bool { return len(s.pages()) > 0 })
	page := s.pages()[0]
	// The channel's page and the incident are two deliveries of the same
	// alert, each with its own retries: either may come first.
	s.within("an incident opened for the edge's SLO", 60*time.Second, func() bool { _, ok := s.edgeIncident(); return ok })
	inc, _ := s.edgeIncident()
	s.step("2. shard outage", "detection (fault -> incident triggered) ", inc.TriggeredAt.Sub(fault).Round(10*time.Millisecond),
		", time to page (fault -> Slack) ", page.At.Sub(fault).Round(10*time.Millisecond))
	// The bound: the workbook's time for the tier at 10% errors with full
	// windows (30 x 0.1% / 10% x 5m = 90 s), plus the pipeline's quanta (5 s
	// export, engine and rule cycles, group wait, outbox poll).
	require.Less(t, page.At.Sub(fault), 90*time.Second+30*time.Second, "page within the detection bound")
	// The incident starts where the burn did: the first evaluation whose
	// short window saw the errors (after the 5 s export and an engine
	// cycle), not when the page fired.
	require.NotNil(t, inc.ImpactStartedAt, "the incident knows when the burn began: %+v", inc)
	impact := *inc.ImpactStartedAt
	s.step("2. shard outage", "fault -> impact start ", impact.Sub(fault).Round(10*time.Millisecond),
		", impact start -> trigger (detection time) ", inc.TriggeredAt.Sub(impact).Round(10*time.Millisecond))
	require.False(t, impact.Before(fault.Add(-time.Second)), "the burn began after the fault")
	require.True(t, impact.Before(inc.TriggeredAt), "the impact start precedes the trigger")
	require.Less(t, impact.Sub(fault), 30*time.Second, "the impact start is the first evaluations that saw the errors")

	require.Contains(t, page.Blocks, "demo-edge-availability", "the page names the SLO")
	require.Contains(t, page.Blocks, "Burn rate", "the page gives burn rates")
	require.Regexp(t, `burnrate_dashboard".*"url":"http://127\.0\.0\.1:\d+/`, page.Blocks, "the page links the dashboard")
	m := traceIDs.FindStringSubmatch(page.Blocks)
	require.NotNil(t, m, "the page carries example failing traces: %s", page.Blocks)
	id := strings.Trim(strings.Fields(m[1])[0], "`")
	code, body := testutil.HTTPGet(t, s.base+"/api/v1/traces/"+id)
	require.Equal(t, http.StatusOK, code, "the page's trace %s resolves: %s", id, body)
	require.Contains(t, body, "error", "the trace holds the failing span")
	return page, fault
}

// escalates waits for both escalation steps, each on time.
func (s *e2eStack) escalates(inc incident) {
	t := s.t
	s.within("escalation step 1 to ann", 30*time.Second, func() bool { return len(s.dms("UANN")) > 0 })
	s.within("escalation step 2 to ben", escalationWait+30*time.Second, func() bool {
		return len(s.dms("")) > len(s.dms("UANN"))
	})
	ann := s.dms("UANN")[0]
	var ben slackCall
	for _, c := range s.dms("") {
		if c.Channel != "UANN" {
			ben = c
		}
	}
	require.Contains(t, ben.Text, "escalation step 2", "step 2 pages the next person (found by email)")
	late := ben.At.Sub(ann.At)
	s.step("2. nobody acknowledges", "step 1 -> step 2 ", late.Round(10*time.Millisecond), " (policy wait ", escalationWait, ")")
	require.GreaterOrEqual(t, late, escalationWait-time.Second, "step 2 not before its wait")
	require.Less(t, late, escalationWait+10*time.Second, "step 2 on time")
	_ = inc
}

// acknowledge is step 3: a signed click on the page's Acknowledge button.
func (s *e2eStack) acknowledge(page slackCall) time.Time {
	t := s.t
	clicked := time.Now()
	s.click(page, alertslack.ActionAcknowledge, "UANN", "ann")
	s.within("the page's message updated", 30*time.Second, func() bool { return len(s.updates(page.TS)) > 0 })
	upd := s.updates(page.TS)[0]
	s.step("3. acknowledged from Slack", "ack -> message update ", upd.At.Sub(clicked).Round(time.Millisecond))
	require.Contains(t, upd.Text+upd.Blocks, "acknowledged by")
	inc, _ := s.edgeIncident()
	inc = s.incident(inc.ID)
	require.Equal(t, "acknowledged", inc.Status)
	require.Equal(t, "ann", inc.AcknowledgedBy, "the Slack user maps to ann by Slack ID")

	code, out := s.cli("gate", "--service", "demo-edge")
	require.Equal(t, 1, code, "the gate fails while the edge burns:\n%s", out)
	require.Regexp(t, `5m burn rate is [\d.]+, above the maximum of 30`, out, "the reason names the burn")
	return clicked
}

// recover is steps 4 and 5: clear the fault; the alert and the incident
// resolve, the message is updated, the postmortem is real, the gate passes
// (earlier for a security exception).
func (s *e2eStack) recover(page slackCall, fault, acked time.Time) {
	t := s.t
	code, out := s.cli("fault", "clear")
	require.Equal(t, 0, code, out)
	cleared := time.Now()

	code, out = s.cli("gate", "--service", "demo-edge", "--version", "v2-cve", "--exception", "security", "--reason", "CVE-2026-1234 fix")
	require.Equal(t, 0, code, "a recorded security exception passes while the edge still burns:\n%s", out)
	code, out = s.cli("gate", "--service", "demo-edge", "--version", "v3")
	require.Equal(t, 1, code, "another version is still refused:\n%s", out)
	s.step("5. security exception: gate passes for v2-cve while it refuses v3")

	inc, _ := s.edgeIncident()
	s.within("the incident resolved with its alert", 5*time.Minute, func() bool { return s.incident(inc.ID).ResolvedAt != nil })
	inc = s.incident(inc.ID)
	s.within("the page's message updated to resolved", 30*time.Second, func() bool {
		for _, u := range s.updates(page.TS) {
			if strings.Contains(u.Text+u.Blocks, "RESOLVED") {
				return true
			}
		}
		return false
	})
	var resolvedMsg slackCall
	for _, u := range s.updates(page.TS) {
		if strings.Contains(u.Text+u.Blocks, "RESOLVED") {
			resolvedMsg = u
			break
		}
	}
	s.step("4. fault cleared", "recovery -> incident resolved ", inc.ResolvedAt.Sub(cleared).Round(10*time.Millisecond),
		", recovery -> Slack message resolved ", resolvedMsg.At.Sub(cleared).Round(10*time.Millisecond))
	require.Equal(t, "resolved", inc.Status)
	for _, kind := range []string{"triggered", "acknowledged", "resolved"} {
		require.Equal(t, 1, inc.events(kind), "timeline has one %s: %+v", kind, inc.Timeline)
	}
	require.Equal(t, "alert", inc.Timeline[len(inc.Timeline)-1].Source, "the alert's resolution resolved it (on_alert_resolved: resolve)")
	require.Equal(t, 2, inc.events("paging"), "two escalation steps ran, then the acknowledgement stopped it: %+v", inc.Timeline)
	require.Equal(t, 2, inc.events("notified"), "each step's page was delivered: %+v", inc.Timeline)
	for _, c := range s.dms("") {
		require.True(t, c.At.Before(acked), "no escalation page after the acknowledgement: %+v", c)
	}

	code, pm := s.cli("incident", "postmortem", strconv.FormatInt(inc.ID, 10), "-o", "-")
	require.Equal(t, 0, code, pm)
	require.Contains(t, pm, "Acknowledged by ann", "the postmortem has the real timeline")
	require.Regexp(t, `\| Detection time \| impact start \| trigger \| \d`, pm, "the postmortem has the detection time")
	require.Regexp(t, `Error budget consumed: [\d.]+%`, pm, "the postmortem has the budget consumed")
	s.step("4. postmortem draft: timeline, detection time, budget consumed")

	s.within("the gate passes again", 2*time.Minute, func() bool {
		code, _ := s.cli("gate", "--service", "demo-edge", "--version", "v3")
		return code == 0
	})
	s.step("5. burn subsided", "recovery -> gate passes ", time.Since(cleared).Round(100*time.Millisecond))
	_ = fault
}

// TestE2EFaultPageEscalateAckGateRecoverPostmortem is the main
// scenario, steps 1 to 5.
func TestE2EFaultPageEscalateAckGateRecoverPostmortem(t *testing.T) {
	t.Parallel()
	s := newE2EStack(t)
	s.startSteady()
	page, fault := s.outage()
	inc, _ := s.edgeIncident()
	s.escalates(inc)
	acked := s.acknowledge(page)
	s.recover(page, fault, acked)
	require.Len(t, s.pages(), 1, "one page message for the whole incident")
	s.summary()
	s.stop()
}

// query runs an instant PromQL query at an instant and returns each
// series' value by its labels.
func (s *e2eStack) query(q string, at time.Time) map[string]string {
	s.t.Helper()
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	s.getJSON("/api/v1/query?"+url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}.Encode(), &body)
	out := map[string]string{}
	for _, r := range body.Data.Result {
		k, _ := json.Marshal(r.Metric)
		out[string(k)] = fmt.Sprint(r.Value[1])
	}
	return out
}

// kill ends the process with SIGKILL: no shutdown, no flush.
func (s *e2eStack) kill() {
	s.t.Helper()
	require.NoError(s.t, s.p.cmd.Process.Signal(syscall.SIGKILL))
	<-s.p.done
}

func (s *e2eStack) stop() {
	s.t.Helper()
	require.NoError(s.t, s.p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.p.done:
		require.NoError(s.t, err, "burnrate exits 0 after SIGTERM\n%s", s.p.log())
	case <-time.After(10 * time.Second):
		s.t.Fatalf("burnrate did not stop within 10s of SIGTERM\n%s", s.p.log())
	}
}

// TestE2ECrashBetweenPageAndAckRepeatsAndLosesNothing: SIGKILL after the
// page and the first escalation step, restart on the same data directory.
func TestE2ECrashBetweenPageAndAckRepeatsAndLosesNothing(t *testing.T) {
	t.Parallel()
	s := newE2EStack(t)
	s.startSteady()
	page, _ := s.outage()
	s.within("escalation step 1 to ann", 30*time.Second, func() bool { return len(s.dms("UANN")) > 0 })
	before, _ := s.edgeIncident()
	before = s.incident(before.ID)
	s.within("an engine cycle after the page", 30*time.Second, func() bool {
		return len(s.query(`slo:period_error_budget_consumed:ratio{sloth_id="demo-edge-availability"}`, time.Now())) > 0
	})
	at := time.Now().Add(-time.Second)
	samples := s.query(`count_over_time(http_server_request_duration_seconds_count{job=~"demo-.*"}[30m])`, at)
	sloAt := s.query(`{__name__=~"slo:(sli_error:ratio_rate5m|period_error_budget_consumed:ratio|burn_rate:ratio)",sloth_id="demo-edge-availability"}`, at)
	require.NotEmpty(t, samples)
	require.NotEmpty(t, sloAt)
	budgetBefore := *s.slos()["demo-edge-availability"].BudgetConsumed

	s.kill()
	killed := time.Now()
	s.start()
	restarted := time.Now()
	// The demo platform starts with no fault set: the shard is still down.
	code, out := s.cli("fault", "set", "store.shard_down", "1")
	require.Equal(t, 0, code, out)
	s.step("crash: SIGKILL between page and ack", "restart -> ready ", restarted.Sub(killed).Round(10*time.Millisecond))

	after := s.incident(before.ID)
	require.GreaterOrEqual(t, len(after.Timeline), len(before.Timeline))
	for i, e := range before.Timeline {
		require.Equal(t, e, after.Timeline[i], "the timeline before the kill is intact")
	}
	require.Len(t, s.incidents(), 1, "no second incident")
	for k, v := range samples {
		require.GreaterOrEqual(t, s.query(`count_over_time(http_server_request_duration_seconds_count{job=~"demo-.*"}[30m])`, at)[k], v, "no sample accepted before the kill is missing: %s", k)
	}
	require.Equal(t, sloAt, s.query(`{__name__=~"slo:(sli_error:ratio_rate5m|period_error_budget_consumed:ratio|burn_rate:ratio)",sloth_id="demo-edge-availability"}`, at),
		"the SLO numbers written before the kill are unchanged")
	s.within("the engine's first cycle after the restart", 30*time.Second, func() bool {
		return s.slos()["demo-edge-availability"].BudgetConsumed != nil
	})
	budgetAfter := *s.slos()["demo-edge-availability"].BudgetConsumed
	require.GreaterOrEqual(t, budgetAfter, budgetBefore, "the budget consumed does not go back after the restart")
	require.InDelta(t, budgetBefore, budgetAfter, 0.01, "the budget consumed carries on from where it was (time moving on)")

	s.within("escalation step 2 to ben after the restart", escalationWait+30*time.Second, func() bool {
		return len(s.dms("")) > len(s.dms("UANN"))
	})
	step1, step2 := s.dms("UANN")[0], s.dms("")[1]
	due := step1.At.Add(escalationWait)
	s.step("crash: escalation resumed", "step 2 at ", step2.At.Sub(step1.At).Round(10*time.Millisecond), " after step 1 (due ", escalationWait, ")")
	require.False(t, step2.At.Before(due.Add(-time.Second)), "step 2 not before its deadline")
	require.WithinDuration(t, laterOf(due, restarted), step2.At, 10*time.Second, "step 2 on schedule")

	// A few flushes and rule cycles after the restart: still one page.
	time.Sleep(5 * time.Second)
	require.Len(t, s.pages(), 1, "no second page after the restart")
	require.Len(t, s.dms("UANN"), 1, "step 1 not sent again")
	require.Len(t, s.updates(page.TS), 0, "the page's message is not touched by the restart")

	s.acknowledge(page)
	require.Len(t, s.pages(), 1)
	s.summary()
	s.stop()
}

// TestE2ESlackOutageAcrossPageAndFirstEscalation: Slack answers 500s and
// times out while the page and both escalation steps fall due; once it is
// back every notification arrives, once and in order.
func TestE2ESlackOutageAcrossPageAndFirstEscalation(t *testing.T) {
	t.Parallel()
	s := newE2EStack(t)
	s.startSteady()

	s.slack.down.Store(true)
	code, out := s.cli("fault", "set", "store.shard_down", "1")
	require.Equal(t, 0, code, out)
	fault := time.Now()
	s.within("the incident opened while Slack is down", 3*time.Minute, func() bool { _, ok := s.edgeIncident(); return ok })
	inc, _ := s.edgeIncident()
	s.within("both escalation steps fell due while Slack is down", escalationWait+30*time.Second, func() bool {
		return s.incident(inc.ID).events("paging") >= 2
	})
	time.Sleep(5 * time.Second) // retries keep failing
	require.Empty(t, s.pages(), "nothing reached Slack during the outage")
	require.Positive(t, s.slack.failed(), "Burnrate tried Slack during the outage")
	s.slack.down.Store(false)
	back := time.Now()
	s.step("slack outage", "outage lasted ", back.Sub(fault).Round(100*time.Millisecond), ", ", s.slack.failed(), " calls failed")

	s.within("the page after Slack is back", 30*time.Second, func() bool { return len(s.pages()) > 0 })
	round1 := func() []slackCall {
		var out []slackCall
		for _, c := range s.dms("") {
			if strings.Contains(c.Text, "round 1)") {
				out = append(out, c)
			}
		}
		return out
	}
	s.within("both escalation pages of the outage after Slack is back", 30*time.Second, func() bool { return len(round1()) >= 2 })
	page := s.pages()[0]
	s.step("slack outage", "Slack back -> page ", page.At.Sub(back).Round(10*time.Millisecond),
		", -> both escalation pages ", round1()[1].At.Sub(back).Round(10*time.Millisecond))
	time.Sleep(5 * time.Second) // late duplicates would show now
	require.Len(t, s.pages(), 1, "the page arrives once")
	dms := round1()
	require.Len(t, dms, 2, "each escalation page arrives once: %+v", dms)
	require.Equal(t, "UANN", dms[0].Channel, "step 1 before step 2")
	require.Contains(t, dms[0].Text, "escalation step 1")
	require.Contains(t, dms[1].Text, "escalation step 2")
	seen := map[string]bool{}
	for _, c := range s.dms("") {
		require.False(t, seen[c.Text], "no page twice: %q", c.Text)
		seen[c.Text] = true
	}

	s.acknowledge(page)
	s.summary()
	s.stop()
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startDebianPrometheus runs Debian's prometheus on addr with the config,
// a remote-write receiver and its own storage, until the test ends. It
// skips the test when prometheus is not installed.
func startDebianPrometheus(t *testing.T, addr, config string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("Debian's prometheus is not installed (apt-get install prometheus); .ci/run installs it")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o600))
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
	cmd.Stderr = lockedWriter{&sync.Mutex{}, &stderr}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "prometheus never became ready")
	return base
}

// pagesOf returns the page messages of one SLO in the alert channel.
func (s *e2eStack) pagesOf(slo string) []slackCall {
	var out []slackCall
	for _, c := range s.pages() {
		if strings.Contains(c.Blocks, "PAGE") && strings.Contains(c.Blocks, slo) {
			out = append(out, c)
		}
	}
	return out
}

// TestE2EInteropPrometheusEvaluatesTheExportedRules: the demo's samples
// are remote-written on to Debian's Prometheus, which evaluates the rules
// `burnrate slo rules` exports and sends its alerts to Burnrate's
// Alertmanager API; Burnrate's own edge page rule is off, so the page,
// the incident and the acknowledgement come from Prometheus's alert.
func TestE2EInteropPrometheusEvaluatesTheExportedRules(t *testing.T) {
	t.Parallel()
	paddr := freeAddr(t)
	s := newE2EStackWith(t, e2eOptions{remoteWrite: "http://" + paddr + "/api/v1/write", keepRecordedHome: true, noOwnEdgePage: true})
	s.start()
	rules := t.TempDir()
	code, out, errOut := runBinary(t, nil, "slo", "rules", "--demo", "--interval", "5s", "--out", rules)
	require.Equal(t, 0, code, out+errOut)
	// The history written below arrives after live samples: the receiver
	// needs an out-of-order window, as Burnrate's own TSDB has.
	prom := startDebianPrometheus(t, paddr, fmt.Sprintf(`global: {scrape_interval: 1h, evaluation_interval: 5s}
storage: {tsdb: {out_of_order_time_window: 2h}}
rule_files: [%s/*.yml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{targets: [%q]}]
`, rules, strings.TrimPrefix(s.base, "http://")))
	s.setUpOnCall()
	s.writeHistory(40)
	s.healthy()

	code, out = s.cli("fault", "set", "store.shard_down", "1")
	require.Equal(t, 0, code, out)
	fault := time.Now()
	s.within("Prometheus's page in Slack", 3*time.Minute, func() bool { return len(s.pagesOf("demo-edge-availability")) > 0 })
	page := s.pagesOf("demo-edge-availability")[0]
	s.within("the incident of Prometheus's page", 30*time.Second, func() bool { _, ok := s.edgeIncident(); return ok })
	inc, _ := s.edgeIncident()
	s.step("interop: Prometheus evaluates the exported rules", "fault -> Prometheus's page in Slack ", page.At.Sub(fault).Round(10*time.Millisecond),
		", -> incident ", inc.TriggeredAt.Sub(fault).Round(10*time.Millisecond))
	code, body := testutil.HTTPGet(t, s.base+"/api/v2/alerts?filter=alertname%3D%22DemoEdgeAvailability%22")
	require.Equal(t, http.StatusOK, code)
	// Prometheus's generatorURL names its host and port (the hostname, not
	// the loopback address, unless --web.external-url says otherwise).
	_, promPort, _ := strings.Cut(strings.TrimPrefix(prom, "http://"), ":")
	require.Contains(t, body, ":"+promPort+"/graph?g0.expr=", "the alert was sent by Prometheus (its generatorURL)")
	require.Contains(t, body, `"severity":"page"`)
	s.within("escalation step 1", 30*time.Second, func() bool { return s.incident(inc.ID).events("notified") > 0 })

	clicked := time.Now()
	s.click(page, alertslack.ActionAcknowledge, "UANN", "ann")
	s.within("the page's message updated", 30*time.Second, func() bool { return len(s.updates(page.TS)) > 0 })
	s.step("interop: acknowledged from Slack", "ack -> message update ", s.updates(page.TS)[0].At.Sub(clicked).Round(time.Millisecond))
	inc = s.incident(inc.ID)
	require.Equal(t, "acknowledged", inc.Status)
	require.Equal(t, "demo-edge", s.incident(inc.ID).SLO[:9], "the incident is the edge SLO's")
	code, out = s.cli("gate", "--service", "demo-edge")
	require.Equal(t, 1, code, "the gate freezes the service of the open SEV2 incident %+v:\n%s", s.incident(inc.ID), out)
	s.summary()
	s.stop()
}

// TestE2EInteropSLOEngineOnAPrometheusBackend: the demo's samples are
// remote-written into Debian's Prometheus and the SLO engine reads them
// from there (metrics.backend: prometheus); the same flow follows.
func TestE2EInteropSLOEngineOnAPrometheusBackend(t *testing.T) {
	t.Parallel()
	paddr := freeAddr(t)
	prom := startDebianPrometheus(t, paddr, "global: {scrape_interval: 1h}\n")
	s := newE2EStackWith(t, e2eOptions{remoteWrite: prom + "/api/v1/write", backend: prom})
	s.startSteady()
	page, _ := s.outage()
	inc, _ := s.edgeIncident()
	s.escalates(inc)
	s.acknowledge(page)
	s.summary()
	s.stop()
}
