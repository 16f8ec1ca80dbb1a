package incidents_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	alertslack "github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/incidents"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// fakeSlack speaks chat.postMessage, chat.update, users.lookupByEmail and
// users.info, and takes response_url posts, recording every call.
type fakeSlack struct {
	*httptest.Server
	mu    sync.Mutex
	calls []slackCall
	// emails maps addresses Slack knows to member IDs.
	emails map[string]string
	// infoDown makes users.info fail as Slack does when it is down (503).
	infoDown bool
}

type slackCall struct {
	Method string
	Form   url.Values
	JSON   map[string]any
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{emails: map[string]string{"ann@example.com": "UANN", "ben@example.com": "UBEN", "eve@example.com": "UEVE"}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := strings.TrimPrefix(r.URL.Path, "/")
		c := slackCall{Method: method}
		if method == "response" {
			body, _ := io.ReadAll(r.Body)
			require.NoError(t, json.Unmarshal(body, &c.JSON))
		} else {
			require.NoError(t, r.ParseForm())
			c.Form = r.Form
		}
		f.mu.Lock()
		f.calls = append(f.calls, c)
		down := f.infoDown
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "users.info":
			if down {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			for email, id := range f.emails {
				if id == r.Form.Get("user") {
					fmt.Fprintf(w, `{"ok":true,"user":{"id":%q,"profile":{"email":%q}}}`, id, email)
					return
				}
			}
			fmt.Fprint(w, `{"ok":false,"error":"user_not_found"}`)
		case "chat.postMessage":
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.000100"}`, r.Form.Get("channel"))
		case "chat.update":
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":"x"}`, r.Form.Get("channel"), r.Form.Get("ts"))
		case "users.lookupByEmail":
			id, ok := f.emails[r.Form.Get("email")]
			if !ok {
				fmt.Fprint(w, `{"ok":false,"error":"users_not_found"}`)
				return
			}
			fmt.Fprintf(w, `{"ok":true,"user":{"id":%q,"profile":{"email":%q}}}`, id, r.Form.Get("email"))
		case "response":
			fmt.Fprint(w, `ok`)
		default:
			fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSlack) byMethod(m string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.Method == m {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func slackEnv(t *testing.T) (*env, *fakeSlack) {
	f := newFakeSlack(t)
	e := newEnv(t, func(o *incidents.Options) {
		o.Slack = incidents.SlackOptions{Token: "xoxb-test", SigningSecret: signingSecret, APIURL: f.URL}
		o.Now = time.Now // Slack's signatures are checked against the real clock
	})
	for _, u := range []incidents.User{
		{ID: "ann", Name: "Ann", Email: "ann@example.com"},
		{ID: "ben", Name: "Ben", SlackID: "UBEN"},
	} {
		require.NoError(t, e.svc.PutUser(context.Background(), &u))
	}
	return e, f
}

// groupKey is what the Slack receiver puts in its buttons: the route
// and the group labels.
const groupKey = `0.1:{alertname="SLOBurnRate",severity="page",slo="api-availability"}`

func sign(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func clickBody(f *fakeSlack, action, value, user string) string {
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]string{"id": user, "name": strings.ToLower(user)},
		"response_url": f.URL + "/response",
		"container":    map[string]any{"type": "message", "channel_id": "CALERTS", "message_ts": "1700000000.000100"},
		"channel":      map[string]string{"id": "CALERTS"},
		"message": map[string]any{"ts": "1700000000.000100", "blocks": []map[string]any{
			{"type": "header", "text": map[string]any{"type": "plain_text", "text": "FIRING · PAGE · SLO api-availability"}},
			{"type": "actions", "block_id": "burnrate_actions", "elements": []map[string]any{
				{"type": "button", "action_id": alertslack.ActionAcknowledge, "value": value, "text": map[string]any{"type": "plain_text", "text": "Acknowledge"}},
			}},
		}},
		"actions": []map[string]any{{"type": "button", "action_id": action, "block_id": "burnrate_actions", "value": value}},
	}
	raw, _ := json.Marshal(payload)
	return url.Values{"payload": {string(raw)}}.Encode()
}

type signed struct {
	body, sig string
	ts        int64
	noHeaders bool
}

func (e *env) slackPost(t *testing.T, path string, s signed) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(s.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !s.noHeaders {
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(s.ts, 10))
		req.Header.Set("X-Slack-Signature", s.sig)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func validly(body string) signed {
	ts := time.Now().Unix()
	return signed{body: body, ts: ts, sig: sign(signingSecret, ts, body)}
}

func TestSlackButtonsActOnTheGroupsIncidentAndUpdateTheMessage(t *testing.T) {
	e, f := slackEnv(t)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, "0.0:"+strings.TrimPrefix(groupKey, "0.1:"), alerting.StatusFiring)))

	start := time.Now()
	code, _ := e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, alertslack.ActionAcknowledge, groupKey, "UANN")))
	require.Equal(t, 200, code)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Eventually(t, func() bool { return len(f.byMethod("chat.update")) == 1 }, 5*time.Second, 10*time.Millisecond)

	inc := e.get(t, 1)
	require.Equal(t, incidents.StatusAcknowledged, inc.Status)
	require.Equal(t, "ann", inc.AcknowledgedBy, "UANN is ann through the email users.info gives")
	require.Equal(t, "slack", inc.Timeline[len(inc.Timeline)-1].Source)
	up := f.byMethod("chat.update")[0]
	require.Equal(t, "CALERTS", up.Form.Get("channel"))
	require.Equal(t, "1700000000.000100", up.Form.Get("ts"))
	require.Contains(t, up.Form.Get("blocks"), "acknowledged by \\u003c@UANN\\u003e (ann)")
	require.Contains(t, up.Form.Get("blocks"), "FIRING · PAGE", "the alert's content is kept")
	require.NotContains(t, up.Form.Get("blocks"), alertslack.ActionAcknowledge, "the Acknowledge button is gone")
	require.Contains(t, up.Form.Get("blocks"), alertslack.ActionResolve)
	require.Len(t, f.byMethod("users.info"), 1, "ann is found by the email Slack gives for UANN")

	// ben resolves: his Slack ID is known, no lookup needed.
	code, _ = e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, alertslack.ActionResolve, "incident:1", "UBEN")))
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { return len(f.byMethod("chat.update")) == 2 }, 5*time.Second, 10*time.Millisecond)
	inc = e.get(t, 1)
	require.Equal(t, incidents.StatusResolved, inc.Status)
	require.Equal(t, "ben", inc.ResolvedBy)
	require.Len(t, f.byMethod("users.info"), 1)

	// A click on a resolved incident answers the clicker only.
	code, _ = e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, alertslack.ActionAcknowledge, "incident:1", "UBEN")))
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { return len(f.byMethod("response")) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "ephemeral", f.byMethod("response")[0].JSON["response_type"])
	require.Contains(t, f.byMethod("response")[0].JSON["text"], "is resolved")
	require.Len(t, f.byMethod("chat.update"), 2)
}

func TestUnverifiedSlackRequestsGet401AndChangeNothing(t *testing.T) {
	e, f := slackEnv(t)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, groupKey, alerting.StatusFiring)))
	click := clickBody(f, alertslack.ActionAcknowledge, groupKey, "UANN")
	cmd := url.Values{"command": {"/burnrate"}, "text": {"ack 1"}, "user_id": {"UANN"}, "user_name": {"UANN"}}.Encode()
	now := time.Now().Unix()
	cases := []struct {
		name string
		mk   func(body string) signed
	}{
		{"a forged signature (another secret)", func(b string) signed { return signed{body: b, ts: now, sig: sign("not-the-secret", now, b)} }},
		{"a stale request, six minutes old", func(b string) signed { return signed{body: b, ts: now - 360, sig: sign(signingSecret, now-360, b)} }},
		{"a request from six minutes in the future", func(b string) signed { return signed{body: b, ts: now + 360, sig: sign(signingSecret, now+360, b)} }},
		{"an unsigned request", func(b string) signed { return signed{body: b, noHeaders: true} }},
		{"a signature of another version", func(b string) signed {
			return signed{body: b, ts: now, sig: "v1=" + strings.TrimPrefix(sign(signingSecret, now, b), "v0=")}
		}},
		{"a tampered body", func(b string) signed {
			return signed{body: strings.Replace(b, "UANN", "UBEN", 1), ts: now, sig: sign(signingSecret, now, b)}
		}},
		{"a signature that is not hex", func(b string) signed { return signed{body: b, ts: now, sig: "v0=zz"} }},
		{"a timestamp of zero", func(b string) signed { return signed{body: b, ts: 0, sig: sign(signingSecret, 0, b)} }},
	}
	for _, tc := range cases {
		for _, target := range []struct{ path, body string }{{"/api/v1/slack/interactions", click}, {"/api/v1/slack/commands", cmd}} {
			t.Run(tc.name+" to "+target.path, func(t *testing.T) {
				before := e.get(t, 1)
				code, body := e.slackPost(t, target.path, tc.mk(target.body))
				require.Equal(t, http.StatusUnauthorized, code, body)
				time.Sleep(20 * time.Millisecond) // a follow-up would have started by now
				require.Equal(t, before, e.get(t, 1), "the incident is unchanged")
				require.Zero(t, f.count(), "nothing was sent to Slack")
			})
		}
	}
	// The same click, validly signed, acts: the cases above failed for
	// their flaw alone.
	code, _ := e.slackPost(t, "/api/v1/slack/interactions", validly(click))
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { return e.get(t, 1).Status == incidents.StatusAcknowledged }, 5*time.Second, 10*time.Millisecond)
}

func TestTwoPeoplePressingAcknowledgeAtOnceLeaveOneAckAndOneUpdate(t *testing.T) {
	e, f := slackEnv(t)
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, groupKey, alerting.StatusFiring)))
	var wg sync.WaitGroup
	for _, u := range []string{"UANN", "UBEN"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, alertslack.ActionAcknowledge, groupKey, u)))
			require.Equal(t, 200, code)
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		return len(f.byMethod("chat.update")) == 1 && len(f.byMethod("response")) == 1
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	require.Len(t, f.byMethod("chat.update"), 1, "one message update")
	inc := e.get(t, 1)
	acks := 0
	for _, ev := range inc.Timeline {
		if ev.Kind == incidents.EventAcknowledged {
			acks++
			require.Equal(t, inc.AcknowledgedBy, ev.Actor, "the timeline and the incident agree on who acknowledged")
		}
	}
	require.Equal(t, 1, acks)
	require.Contains(t, f.byMethod("response")[0].JSON["text"], "already acknowledged by "+inc.AcknowledgedBy)
}

func TestTheSlashCommandWorksIncidentsAndAnswersWhoIsOnCall(t *testing.T) {
	e, f := slackEnv(t)
	require.NoError(t, e.svc.PutSchedule(context.Background(), &incidents.Schedule{ID: "primary", TimeZone: "Europe/Berlin",
		Layers: []incidents.Layer{{Level: 1, Users: []string{"ben"}, Start: "2026-01-01", Turn: "weekly"}}}))
	require.NoError(t, e.svc.Notify(context.Background(), pageNotification(1, groupKey, alerting.StatusFiring)))
	run := func(text string) map[string]any {
		body := url.Values{"command": {"/burnrate"}, "text": {text}, "user_id": {"UBEN"}, "user_name": {"ben"}}.Encode()
		code, resp := e.slackPost(t, "/api/v1/slack/commands", validly(body))
		require.Equal(t, 200, code)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(resp), &out))
		return out
	}
	require.Contains(t, run("list")["text"], "#1 SEV2 triggered")
	require.Contains(t, run("oncall")["text"], "*primary*: <@UBEN>")
	_, err := e.svc.AddOverride(context.Background(), "primary", incidents.Override{
		User: "ann", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Contains(t, run("oncall")["text"], "*primary*: Ann · next ben from", "the slash command honours overrides")
	out := run("ack 1")
	require.Equal(t, "in_channel", out["response_type"])
	require.Contains(t, out["text"], "acknowledged by ben")
	require.Contains(t, run("note 1 rolled back the deploy")["text"], "noted by ben")
	require.Contains(t, run("ack 1")["text"], "already acknowledged by ben")
	require.Contains(t, run("resolve 99")["text"], "incident 99: not found")
	require.Contains(t, run("ack one")["text"], `"one" is not an incident ID`)
	require.Contains(t, run("dance")["text"], "Unknown command")
	require.Contains(t, run("resolve 1 fixed")["text"], "resolved by ben")
	inc := e.get(t, 1)
	require.Equal(t, incidents.StatusResolved, inc.Status)
	require.Equal(t, []string{"triggered", "acknowledged", "note", "resolved"}, kinds(inc.Timeline))
	require.Zero(t, f.count(), "commands answer directly, without Slack calls for known users")
}

func TestEscalationPagesAreSlackDirectMessagesWithButtons(t *testing.T) {
	e, f := slackEnv(t)
	defer runService(t, e.svc, e.path)()
	require.NoError(t, e.svc.PutPolicy(context.Background(), &incidents.Policy{ID: "p", Steps: []incidents.Step{{
		Targets:     []incidents.Target{{Type: incidents.TargetUser, ID: "ann"}, {Type: incidents.TargetChannel, ID: "CINCIDENTS"}},
		WaitMinutes: 5,
	}}}))
	_, err := e.svc.Declare(context.Background(), incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.byMethod("chat.postMessage")) == 2 }, 5*time.Second, 10*time.Millisecond)
	var channels []string
	for _, c := range f.byMethod("chat.postMessage") {
		channels = append(channels, c.Form.Get("channel"))
		require.Contains(t, c.Form.Get("blocks"), `"value":"incident:1"`)
		require.Contains(t, c.Form.Get("blocks"), incidents.ActionEscalate)
	}
	require.ElementsMatch(t, []string{"UANN", "CINCIDENTS"}, channels, "ann by DM (found by email), the channel by ID")
	n, err := testutil.GatherAndCount(e.reg, "burnrate_incidents_pages_total")
	require.NoError(t, err)
	require.Equal(t, 1, n, "one page to one person")
}

func TestHandoffNotificationsAreSlackDirectMessages(t *testing.T) {
	e, f := slackEnv(t)
	defer runService(t, e.svc, e.path)()
	require.NoError(t, e.svc.PutSchedule(context.Background(), &incidents.Schedule{ID: "primary", TimeZone: "Europe/Berlin",
		Layers: []incidents.Layer{{Level: 1, Users: []string{"ben"}, Start: "2026-01-01", Turn: "weekly"}}}))
	start := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	_, err := e.svc.AddOverride(context.Background(), "primary", incidents.Override{User: "ann", Start: start, End: start.Add(time.Hour)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.byMethod("chat.postMessage")) == 1 }, 5*time.Second, 10*time.Millisecond)
	msg := f.byMethod("chat.postMessage")[0]
	require.Equal(t, "UANN", msg.Form.Get("channel"), "ann's Slack ID, found by email")
	require.Contains(t, msg.Form.Get("text"), "You are on call for primary from")
}
