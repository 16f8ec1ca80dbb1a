// Package slack delivers alert notifications to Slack as Block Kit
// messages: one message per alert group, updated in place (chat.update) as
// the group changes, with a thread reply for every change, so a channel
// shows one line per problem rather than one per notification.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/slack-go/slack"

	"github.com/burnrate/burnrate/alerting"
)

// Action IDs of the message buttons; the incidents component answers them.
const (
	ActionAcknowledge = "burnrate_acknowledge"
	ActionResolve     = "burnrate_resolve"
)

// metadataEventType marks Burnrate's messages (Slack message metadata), so
// that a delivery interrupted by a crash can be found in the channel.
const metadataEventType = "burnrate_alert_notification"

// Receiver posts and updates Slack messages.
type Receiver struct {
	client  *slack.Client
	channel string
	state   alerting.ReceiverState
}

// thread is the Slack message of one alert group, kept in receiver state.
type thread struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Status  string `json:"status"`
	// LastID is the outbox ID of the last notification applied to the
	// message: a retried notification with this ID is already done.
	LastID int64 `json:"last_id"`
}

// New returns a Slack receiver. state keeps the message of each group; it
// must be durable for updates to find their message after a restart.
func New(cfg alerting.SlackConfig, state alerting.ReceiverState, client *http.Client) *Receiver {
	opts := []slack.Option{}
	if cfg.APIURL != "" {
		u := cfg.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	opts = append(opts, slack.OptionHTTPClient(client))
	return &Receiver{client: slack.New(cfg.Token, opts...), channel: cfg.Channel, state: state}
}

func (r *Receiver) load(ctx context.Context, key string) (*thread, error) {
	raw, ok, err := r.state.Get(ctx, key)
	if err != nil || !ok {
		return nil, err
	}
	var th thread
	if err := json.Unmarshal([]byte(raw), &th); err != nil {
		return nil, fmt.Errorf("slack state of %s: %w", key, err)
	}
	return &th, nil
}

func (r *Receiver) save(ctx context.Context, key string, th *thread) error {
	b, err := json.Marshal(th)
	if err != nil {
		return err
	}
	return r.state.Put(ctx, key, string(b))
}

// Notify posts a new message for a group that has none (or whose last
// message was resolved and fires again), and otherwise updates the group's
// message and replies in its thread.
func (r *Receiver) Notify(ctx context.Context, n *alerting.Notification) error {
	th, err := r.load(ctx, n.GroupKey)
	if err != nil {
		return err
	}
	if th != nil && th.LastID == n.ID {
		return nil // already applied before a restart
	}
	blocks := Blocks(n)
	text := fallbackText(n)
	if th == nil || (th.Status == alerting.StatusResolved && n.Status == alerting.StatusFiring) {
		ch, ts, err := r.client.PostMessageContext(ctx, r.channel,
			slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{
				"notification_id": strconv.FormatInt(n.ID, 10), "group_key": n.GroupKey,
			}}))
		if err != nil {
			return classify(err)
		}
		return r.save(context.WithoutCancel(ctx), n.GroupKey, &thread{Channel: ch, TS: ts, Status: n.Status, LastID: n.ID})
	}
	if _, _, _, err := r.client.UpdateMessageContext(ctx, th.Channel, th.TS,
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)); err != nil {
		return classify(err)
	}
	if _, _, err := r.client.PostMessageContext(ctx, th.Channel, slack.MsgOptionTS(th.TS),
		slack.MsgOptionText(threadText(n), false)); err != nil {
		return classify(err)
	}
	th.Status, th.LastID = n.Status, n.ID
	return r.save(context.WithoutCancel(ctx), n.GroupKey, th)
}

// Delivered reports whether n reached Slack before an interruption: its ID
// is recorded in the group's state, or a message carrying it in its
// metadata is in the channel.
func (r *Receiver) Delivered(ctx context.Context, n *alerting.Notification) (bool, error) {
	th, err := r.load(ctx, n.GroupKey)
	if err != nil {
		return false, err
	}
	if th != nil && th.LastID == n.ID {
		return true, nil
	}
	if th != nil && !(th.Status == alerting.StatusResolved && n.Status == alerting.StatusFiring) {
		// An update: re-applying it is harmless.
		return false, nil
	}
	params := &slack.GetConversationHistoryParameters{ChannelID: r.channel, IncludeAllMetadata: true, Limit: 200}
	if !n.CreatedAt.IsZero() {
		params.Oldest = strconv.FormatInt(n.CreatedAt.Add(-time.Minute).Unix(), 10)
	}
	hist, err := r.client.GetConversationHistoryContext(ctx, params)
	if err != nil {
		return false, classify(err)
	}
	want := strconv.FormatInt(n.ID, 10)
	for _, m := range hist.Messages {
		if m.Metadata.EventType == metadataEventType && fmt.Sprint(m.Metadata.EventPayload["notification_id"]) == want {
			ch := m.Channel
			if ch == "" {
				ch = r.channel
			}
			return true, r.save(ctx, n.GroupKey, &thread{Channel: ch, TS: m.Timestamp, Status: n.Status, LastID: n.ID})
		}
	}
	return false, nil
}

// classify maps Slack errors onto the outbox's retry policy.
func classify(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &alerting.RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	var resp slack.SlackErrorResponse
	if errors.As(err, &resp) {
		switch resp.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "channel_not_found",
			"not_in_channel", "is_archived", "invalid_blocks", "msg_too_long", "no_text":
			return fmt.Errorf("%w: slack: %w", alerting.ErrPermanent, err)
		}
	}
	return fmt.Errorf("slack: %w", err)
}

func severityOf(n *alerting.Notification) string {
	if s := n.CommonLabels["severity"]; s != "" {
		return s
	}
	for _, a := range n.Alerts {
		if s := a.Labels["severity"]; s != "" {
			return s
		}
	}
	return "none"
}

func title(n *alerting.Notification) string {
	name := n.CommonLabels["alertname"]
	if slo := n.CommonLabels["slo"]; slo != "" {
		name = "SLO " + slo
	}
	if name == "" {
		name = n.GroupKey
	}
	return name
}

func fallbackText(n *alerting.Notification) string {
	return fmt.Sprintf("[%s] %s: %s", strings.ToUpper(n.Status), strings.ToUpper(severityOf(n)), title(n))
}

func threadText(n *alerting.Notification) string {
	firing := len(n.Firing())
	if n.Status == alerting.StatusResolved {
		return fmt.Sprintf("Resolved: all %d alerts of %s are over.", len(n.Alerts), title(n))
	}
	return fmt.Sprintf("Update: %d firing, %d resolved.", firing, len(n.Alerts)-firing)
}

// Blocks renders a notification as Block Kit: severity and SLO in the
// header, the burn rate of each window, the budget left, links, example
// trace IDs, and Acknowledge / Resolve buttons while it fires.
func Blocks(n *alerting.Notification) []slack.Block {
	sev := severityOf(n)
	icon := map[string]string{"page": ":rotating_light:", "ticket": ":warning:"}[sev]
	if icon == "" {
		icon = ":bell:"
	}
	if n.Status == alerting.StatusResolved {
		icon = ":white_check_mark:"
	}
	header := fmt.Sprintf("%s %s · %s · %s", icon, strings.ToUpper(n.Status), strings.ToUpper(sev), title(n))
	if len(header) > 150 {
		header = header[:150]
	}
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, header, true, false))}

	// Facts shared by the group come from its first alert.
	first := n.Alerts[0]
	var fields []*slack.TextBlockObject
	add := func(k, v string) {
		if v != "" && len(fields) < 10 {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, "*"+k+"*\n"+v, false, false))
		}
	}
	add("Severity", sev)
	add("SLO", first.Labels["slo"])
	add("Service", first.Labels["service"])
	add("Objective", first.Annotations["objective"])
	add("Budget remaining", first.Annotations["budget_remaining"])
	add("Burn rate", burnRates(n))
	add("Since", first.StartsAt.UTC().Format("2006-01-02 15:04 MST"))
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))

	var lines []string
	for i, a := range n.Alerts {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("…and %d more", len(n.Alerts)-10))
			break
		}
		mark := ":red_circle:"
		if a.Status == alerting.StatusResolved {
			mark = ":large_green_circle:"
		}
		s := a.Annotations["summary"]
		if s == "" {
			s = a.Labels["alertname"]
		}
		if w := a.Labels["window"]; w != "" {
			s += " `" + w + "`"
		}
		lines = append(lines, mark+" "+s)
	}
	blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Join(lines, "\n"), false, false), nil, nil))

	if ids := first.Annotations["trace_ids"]; ids != "" {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			"Example failing traces: `"+strings.ReplaceAll(ids, ",", "` `")+"`", false, false)))
	}

	var buttons []slack.BlockElement
	if n.Status == alerting.StatusFiring {
		buttons = append(buttons,
			slack.NewButtonBlockElement(ActionAcknowledge, n.GroupKey, slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(ActionResolve, n.GroupKey, slack.NewTextBlockObject(slack.PlainTextType, "Resolve", false, false)).WithStyle(slack.StyleDanger))
	}
	if u := first.Annotations["runbook_url"]; u != "" {
		buttons = append(buttons, slack.NewButtonBlockElement("burnrate_runbook", "runbook", slack.NewTextBlockObject(slack.PlainTextType, "Runbook", false, false)).WithURL(u))
	}
	if u := first.Annotations["dashboard_url"]; u != "" {
		buttons = append(buttons, slack.NewButtonBlockElement("burnrate_dashboard", "dashboard", slack.NewTextBlockObject(slack.PlainTextType, "Dashboard", false, false)).WithURL(u))
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("burnrate_actions", buttons...))
	}
	return blocks
}

// burnRates lists the burn rate of every window named in the alerts'
// annotations (burn_rate_1h, burn_rate_5m, ...), longest window first.
func burnRates(n *alerting.Notification) string {
	seen := map[string]string{}
	for _, a := range n.Alerts {
		if a.Status != n.Status && n.Status == alerting.StatusFiring {
			continue
		}
		for k, v := range a.Annotations {
			if w, ok := strings.CutPrefix(k, "burn_rate_"); ok && w != "threshold" {
				seen[w] = v
			}
		}
	}
	ws := make([]string, 0, len(seen))
	for w := range seen {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return windowLen(ws[i]) > windowLen(ws[j]) })
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w + " " + seen[w]
	}
	return strings.Join(parts, " · ")
}

func windowLen(w string) time.Duration {
	d, err := model.ParseDuration(w)
	if err != nil {
		return 0
	}
	return time.Duration(d)
}
