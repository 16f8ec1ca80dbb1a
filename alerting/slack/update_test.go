package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/internal/testutil"
)

// webAPI is an httptest server speaking the part of Slack's Web API the
// receiver uses. It checks messages against Slack's Block Kit limits and
// answers invalid_blocks or msg_too_long as Slack does, and can be told to
// refuse updates of a message or posts to a channel with a Slack error.
type webAPI struct {
	*httptest.Server
	mu    sync.Mutex
	posts []url.Values
	// updates are the chat.update calls that succeeded.
	updates []url.Values
	// refuseUpdate answers chat.update of these ts with an error code.
	refuseUpdate map[string]string
	// refusePost answers chat.postMessage to these channels with one.
	refusePost map[string]string
	// loseAnswer makes the next post be taken but answered with a 500, as
	// when the connection drops after Slack took the message.
	loseAnswer bool
	n          int
}

func newWebAPI(t *testing.T) *webAPI {
	w := &webAPI{refuseUpdate: map[string]string{}, refusePost: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/chat.postMessage", w.handle(false))
	mux.HandleFunc("/chat.update", w.handle(true))
	mux.HandleFunc("/conversations.history", w.history)
	w.Server = httptest.NewServer(mux)
	t.Cleanup(w.Close)
	return w
}

func answer(rw http.ResponseWriter, v map[string]any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

// handle answers chat.postMessage (update false) or chat.update.
func (w *webAPI) handle(update bool) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		v := r.PostForm
		w.mu.Lock()
		defer w.mu.Unlock()
		code := w.refusePost[v.Get("channel")]
		if update {
			code = w.refuseUpdate[v.Get("ts")]
		}
		if code == "" {
			code = checkLimits(v)
		}
		if code != "" {
			answer(rw, map[string]any{"ok": false, "error": code})
			return
		}
		if update {
			w.updates = append(w.updates, v)
		} else {
			w.n++
			v.Set("ts", fmt.Sprintf("1772445600.%06d", w.n))
			w.posts = append(w.posts, v)
			if w.loseAnswer {
				w.loseAnswer = false
				rw.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		answer(rw, map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts")})
	}
}

// history lists the channel's messages with their metadata, newest first.
func (w *webAPI) history(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := []map[string]any{}
	for i := len(w.posts) - 1; i >= 0; i-- {
		p := w.posts[i]
		m := map[string]any{"type": "message", "ts": p.Get("ts"), "text": p.Get("text")}
		var md any
		if json.Unmarshal([]byte(p.Get("metadata")), &md) == nil {
			m["metadata"] = md
		}
		msgs = append(msgs, m)
	}
	answer(rw, map[string]any{"ok": true, "messages": msgs})
}

// refuse makes updates of the group's first message fail with code, and
// changes anything else under the lock.
func (w *webAPI) refuse(code string, more func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refuseUpdate[w.posts[0].Get("ts")] = code
	if more != nil {
		more()
	}
}

func (w *webAPI) snapshot() (posts, updates []url.Values) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]url.Values(nil), w.posts...), append([]url.Values(nil), w.updates...)
}

// checkLimits returns Slack's error for a message over its limits.
func checkLimits(v url.Values) string {
	if utf8.RuneCountInString(v.Get("text")) > 40000 {
		return "msg_too_long"
	}
	if v.Get("blocks") == "" {
		return ""
	}
	type text struct {
		Text string `json:"text"`
	}
	var blocks []struct {
		Type     string `json:"type"`
		Text     *text  `json:"text"`
		Fields   []text `json:"fields"`
		Elements []struct {
			Text  json.RawMessage `json:"text"`
			Value string          `json:"value"`
			URL   string          `json:"url"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(v.Get("blocks")), &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if len(blocks) > 50 {
		return "invalid_blocks"
	}
	long := func(s string, n int) bool { return utf8.RuneCountInString(s) > n }
	for _, b := range blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || long(b.Text.Text, 150) {
				return "invalid_blocks"
			}
		case "section":
			if b.Text != nil && long(b.Text.Text, 3000) || len(b.Fields) > 10 {
				return "invalid_blocks"
			}
			for _, f := range b.Fields {
				if long(f.Text, 2000) {
					return "invalid_blocks"
				}
			}
		case "actions", "context":
			for _, e := range b.Elements {
				var t text
				_ = json.Unmarshal(e.Text, &t)
				if long(e.Value, 2000) || long(e.URL, 3000) || long(t.Text, 3000) {
					return "invalid_blocks"
				}
			}
		}
	}
	return ""
}

// receiverOn returns a Slack receiver posting to channel through api, with
// its state in a SQLite file of dir.
func receiverOn(t *testing.T, api *webAPI, dir, channel string) *slack.Receiver {
	store, err := alerting.OpenStore(context.Background(), filepath.Join(dir, "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	cfg := alerting.SlackConfig{Token: "xoxb-test", Channel: channel, APIURL: api.URL}
	return slack.New(cfg, store.ReceiverState(alerting.ReceiverSlack), nil).WithLogger(testutil.Logger(t))
}

// notifiedAlert is one firing SLO alert of the given severity and tier.
func notifiedAlert(severity, tier, summary string) alerting.NotifiedAlert {
	return alerting.NotifiedAlert{
		Status:      alerting.StatusFiring,
		Labels:      map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability", "severity": severity, "tier": tier},
		Annotations: map[string]string{"summary": summary},
		StartsAt:    time.Date(2026, 3, 2, 9, 59, 0, 0, time.UTC), Fingerprint: "fp-" + tier,
	}
}

// groupNotification is notification id of the SLO's group with alerts.
func groupNotification(id int64, status string, alerts ...alerting.NotifiedAlert) *alerting.Notification {
	return &alerting.Notification{ID: id, Receiver: "slack", Status: status, Alerts: alerts,
		GroupKey:     `{}/{severity=~".+"}:{slo="api-availability"}`,
		CommonLabels: map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "api-availability"}}
}

func TestAMessageThatCanNoLongerBeUpdatedDoesNotJamItsGroup(t *testing.T) {
	for _, code := range []string{"message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found", "is_archived"} {
		t.Run("chat.update answering "+code+" moves the group to a new message", func(t *testing.T) {
			ctx := context.Background()
			api := newWebAPI(t)
			dir := t.TempDir()
			old := "C0ALERTS"
			if code == "channel_not_found" || code == "is_archived" {
				old = "C0OLDALERTS" // the channel was archived or deleted, and the config moved on
			}
			ticket := notifiedAlert("ticket", "ticket-fast", "burning 3x too fast")
			require.NoError(t, receiverOn(t, api, dir, old).Notify(ctx, groupNotification(1, alerting.StatusFiring, ticket)))
			posts, _ := api.snapshot()
			require.Len(t, posts, 1)
			api.refuse(code, nil)

			r := receiverOn(t, api, dir, "C0ALERTS")
			// A page joins the group: it goes out as a new message.
			page := notifiedAlert("page", "page-fast", "burning 15x too fast")
			require.NoError(t, r.Notify(ctx, groupNotification(2, alerting.StatusFiring, ticket, page)))
			posts, _ = api.snapshot()
			require.Len(t, posts, 2)
			require.Empty(t, posts[1].Get("thread_ts"), "the replacement is a message in the channel, not a thread reply")
			require.Equal(t, "C0ALERTS", posts[1].Get("channel"))
			require.Contains(t, posts[1].Get("blocks"), "burning 15x too fast")

			// Later notifications update the replacement.
			ticket.Status, page.Status = alerting.StatusResolved, alerting.StatusResolved
			require.NoError(t, r.Notify(ctx, groupNotification(3, alerting.StatusResolved, ticket, page)))
			posts, updates := api.snapshot()
			require.Len(t, updates, 1)
			require.Equal(t, posts[1].Get("ts"), updates[0].Get("ts"))
			require.Contains(t, updates[0].Get("blocks"), "RESOLVED")
			require.Len(t, posts, 3)
			require.Equal(t, posts[1].Get("ts"), posts[2].Get("thread_ts"))
		})
	}
}

// openTicket returns a receiver whose group has a message for one ticket.
func openTicket(t *testing.T) (*webAPI, *slack.Receiver, alerting.NotifiedAlert) {
	api := newWebAPI(t)
	r := receiverOn(t, api, t.TempDir(), "C0ALERTS")
	ticket := notifiedAlert("ticket", "ticket-fast", "burning 3x too fast")
	require.NoError(t, r.Notify(context.Background(), groupNotification(1, alerting.StatusFiring, ticket)))
	return api, r, ticket
}

func TestAReplacementMessageThatCannotBePostedFailsPermanently(t *testing.T) {
	ctx := context.Background()
	api, r, ticket := openTicket(t)
	api.refuse("is_archived", func() { api.refusePost["C0ALERTS"] = "is_archived" })

	err := r.Notify(ctx, groupNotification(2, alerting.StatusFiring, ticket, notifiedAlert("page", "page-fast", "burning 15x")))
	require.ErrorIs(t, err, alerting.ErrPermanent, "retrying cannot post to an archived channel")
	require.Contains(t, err.Error(), "is_archived")
}

func TestTenAlertsWithLongSummariesStayWithinSlacksLimits(t *testing.T) {
	ctx := context.Background()
	api := newWebAPI(t)
	r := receiverOn(t, api, t.TempDir(), "C0ALERTS")
	var alerts []alerting.NotifiedAlert
	for i := range 10 {
		a := notifiedAlert("page", fmt.Sprintf("tier-%d", i), fmt.Sprintf("%03d ", i)+strings.Repeat("é", 396))
		a.Annotations["burn_rate_1h"] = strings.Repeat("9", 2100)
		a.Annotations["trace_ids"] = strings.Repeat("4bf92f3577b34da6a3ce929d0e0e4736,", 100)
		alerts = append(alerts, a)
	}
	n := groupNotification(1, alerting.StatusFiring, alerts...)
	// A long group key (many group_by labels) must not overflow the
	// buttons' value.
	n.GroupKey = `{}:{` + strings.Repeat(`team="payments",`, 200) + `}`
	require.NoError(t, r.Notify(ctx, n), "Slack accepts the message")
	posts, _ := api.snapshot()
	require.Len(t, posts, 1)
	for i := range 10 {
		require.Contains(t, posts[0].Get("blocks"), fmt.Sprintf("%03d ", i), "every alert is listed")
	}
	require.Contains(t, posts[0].Get("blocks"), slack.ButtonValue(n.GroupKey))
	require.LessOrEqual(t, len(slack.ButtonValue(n.GroupKey)), 2000)
	require.Equal(t, "short", slack.ButtonValue("short"), "a short group key is the value itself")

	// Eleven and more are summarised.
	n.ID = 2
	n.Alerts = append(n.Alerts, notifiedAlert("page", "tier-10", "one too many"))
	require.NoError(t, r.Notify(ctx, n))
	_, updates := api.snapshot()
	require.Contains(t, updates[0].Get("blocks"), "…and 1 more")
}

func TestANotificationWithoutAlertsRendersWithoutPanicking(t *testing.T) {
	ctx := context.Background()
	api := newWebAPI(t)
	r := receiverOn(t, api, t.TempDir(), "C0ALERTS")
	n := groupNotification(1, alerting.StatusResolved)
	require.NotPanics(t, func() { _ = slack.Blocks(n) })
	require.NoError(t, r.Notify(ctx, n))
	posts, _ := api.snapshot()
	require.Len(t, posts, 1)
}

func TestAPageJoiningAnOpenGroupIsAnnouncedInTheChannel(t *testing.T) {
	ctx := context.Background()
	api, r, ticket := openTicket(t)

	// Another ticket joining is a thread reply only.
	ticket2 := notifiedAlert("ticket", "ticket-slow", "burning 1.5x too fast")
	require.NoError(t, r.Notify(ctx, groupNotification(2, alerting.StatusFiring, ticket, ticket2)))
	posts, _ := api.snapshot()
	require.Len(t, posts, 2)
	require.Equal(t, posts[0].Get("ts"), posts[1].Get("thread_ts"))
	require.NotEqual(t, "true", posts[1].Get("reply_broadcast"))

	// A page joining is also sent to the channel.
	page := notifiedAlert("page", "page-fast", "burning 15x too fast")
	require.NoError(t, r.Notify(ctx, groupNotification(3, alerting.StatusFiring, ticket, ticket2, page)))
	posts, updates := api.snapshot()
	require.Len(t, updates, 2)
	require.Len(t, posts, 3)
	reply := posts[2]
	require.Equal(t, posts[0].Get("ts"), reply.Get("thread_ts"))
	require.Equal(t, "true", reply.Get("reply_broadcast"), "the page is announced at channel level")
	require.Contains(t, reply.Get("text"), "burning 15x too fast")

	// The same page re-notified is not announced again.
	require.NoError(t, r.Notify(ctx, groupNotification(4, alerting.StatusFiring, ticket, ticket2, page)))
	posts, _ = api.snapshot()
	require.NotEqual(t, "true", posts[3].Get("reply_broadcast"))
}

func TestAReplacementMessageCutShortIsFoundRatherThanPostedTwice(t *testing.T) {
	ctx := context.Background()
	api, r, ticket := openTicket(t)
	api.refuse("message_not_found", func() { api.loseAnswer = true })
	n := groupNotification(2, alerting.StatusFiring, ticket, notifiedAlert("page", "page-fast", "burning 15x"))
	require.Error(t, r.Notify(ctx, n), "Slack took the replacement, the answer was lost")

	// The outbox asks before trying again.
	done, err := r.Delivered(ctx, n)
	require.NoError(t, err)
	require.True(t, done, "the replacement is found in the channel")
	posts, _ := api.snapshot()
	require.Len(t, posts, 2)

	// And it is the group's message from now on.
	require.NoError(t, r.Notify(ctx, groupNotification(3, alerting.StatusFiring, ticket)))
	_, updates := api.snapshot()
	require.Len(t, updates, 1)
	require.Equal(t, posts[1].Get("ts"), updates[0].Get("ts"))
}
