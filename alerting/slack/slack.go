// Package slack delivers alert notifications to Slack as Block Kit
// messages: one message per alert group, updated in place (chat.update) as
// the group changes, with a thread reply for every change, so a channel
// shows one line per problem rather than one per notification.
package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	logger  *slog.Logger
}

// thread is the Slack message of one alert group, kept in receiver state.
type thread struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Status  string `json:"status"`
	// LastID is the outbox ID of the last notification applied to the
	// message: a retried notification with this ID is already done.
	LastID int64 `json:"last_id"`
	// Firing holds the fingerprints the message shows firing, so that an
	// alert joining the group is told apart from one already announced.
	Firing []string `json:"firing,omitempty"`
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
	return &Receiver{client: slack.New(cfg.Token, opts...), channel: cfg.Channel, state: state, logger: slog.New(slog.DiscardHandler)}
}

// WithLogger sets the logger of the receiver's warnings (a message that can
// no longer be updated) and returns r.
func (r *Receiver) WithLogger(l *slog.Logger) *Receiver {
	if l != nil {
		r.logger = l
	}
	return r
}

// lostMessage lists chat.update errors after which the group's message can
// never be updated again: deleted, too old to edit, or in a channel that is
// gone or archived. The group then gets a new message.
var lostMessage = map[string]bool{
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true,
	"channel_not_found": true, "is_archived": true,
}

func slackError(err error) string {
	var resp slack.SlackErrorResponse
	if errors.As(err, &resp) {
		return resp.Err
	}
	return ""
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
// message and replies in its thread; a page joining the group is also
// broadcast to the channel. A message that can no longer be updated
// (lostMessage) is replaced by a new one, so that the group is not stuck.
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
		return r.post(ctx, n, blocks, text)
	}
	if _, _, _, err := r.client.UpdateMessageContext(ctx, th.Channel, th.TS,
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)); err != nil {
		code := slackError(err)
		if !lostMessage[code] {
			return classify(err)
		}
		// The message is gone for good: retrying the update would jam the
		// group, so its state moves to a new message in the channel.
		r.logger.Warn("the Slack message of an alert group can no longer be updated; posting a new one",
			"group", n.GroupKey, "channel", th.Channel, "ts", th.TS, "slack_error", code)
		if err := r.post(ctx, n, blocks, text); err != nil {
			r.logger.Error("posting the replacement Slack message failed", "group", n.GroupKey, "channel", r.channel, "err", err)
			return err
		}
		return nil
	}
	// Alerts that joined the group are announced in the channel, not only
	// in the thread, when one of them pages.
	joined, pages := joinedAlerts(th, n)
	opts := []slack.MsgOption{slack.MsgOptionTS(th.TS), slack.MsgOptionText(threadText(n, joined), false)}
	if pages {
		opts = append(opts, slack.MsgOptionBroadcast())
	}
	if _, _, err := r.client.PostMessageContext(ctx, th.Channel, opts...); err != nil {
		return classify(err)
	}
	th.Status, th.LastID, th.Firing = n.Status, n.ID, firingFingerprints(n)
	return r.save(context.WithoutCancel(ctx), n.GroupKey, th)
}

// post starts the group's message in the configured channel.
func (r *Receiver) post(ctx context.Context, n *alerting.Notification, blocks []slack.Block, text string) error {
	ch, ts, err := r.client.PostMessageContext(ctx, r.channel,
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{
			"notification_id": strconv.FormatInt(n.ID, 10), "group_key": n.GroupKey,
		}}))
	if err != nil {
		return classify(err)
	}
	return r.save(context.WithoutCancel(ctx), n.GroupKey, &thread{Channel: ch, TS: ts, Status: n.Status, LastID: n.ID, Firing: firingFingerprints(n)})
}

func firingFingerprints(n *alerting.Notification) []string {
	var out []string
	for _, a := range n.Firing() {
		out = append(out, a.Fingerprint)
	}
	return out
}

// joinedAlerts returns the alerts of n that fire and were not firing in the
// group's message, and whether one of them is a page.
func joinedAlerts(th *thread, n *alerting.Notification) ([]alerting.NotifiedAlert, bool) {
	was := map[string]bool{}
	for _, fp := range th.Firing {
		was[fp] = true
	}
	var joined []alerting.NotifiedAlert
	pages := false
	for _, a := range n.Firing() {
		if was[a.Fingerprint] {
			continue
		}
		joined = append(joined, a)
		pages = pages || a.Labels["severity"] == "page"
	}
	if len(th.Firing) == 0 && th.Status == alerting.StatusFiring {
		// State written before fingerprints were kept: what joined is
		// unknown, so nothing is broadcast.
		return joined, false
	}
	return joined, pages
}

// Delivered reports whether n reached Slack before an interruption: its ID
// is recorded in the group's state, or a message carrying it in its
// metadata is in the channel (then it becomes the group's message).
func (r *Receiver) Delivered(ctx context.Context, n *alerting.Notification) (bool, error) {
	th, err := r.load(ctx, n.GroupKey)
	if err != nil {
		return false, err
	}
	if th != nil && th.LastID == n.ID {
		return true, nil
	}
	// Every notification may have posted a new message (the group's first,
	// a re-fire, or the replacement of a message that could no longer be
	// updated); re-applying a mere update is harmless.
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
	return truncate(fmt.Sprintf("[%s] %s: %s", strings.ToUpper(n.Status), strings.ToUpper(severityOf(n)), title(n)), maxMessageText)
}

func threadText(n *alerting.Notification, joined []alerting.NotifiedAlert) string {
	firing := len(n.Firing())
	if n.Status == alerting.StatusResolved {
		return fmt.Sprintf("Resolved: all %d alerts of %s are over.", len(n.Alerts), title(n))
	}
	text := fmt.Sprintf("Update: %d firing, %d resolved.", firing, len(n.Alerts)-firing)
	for i, a := range joined {
		if i == maxAlertLines {
			text += fmt.Sprintf("\n…and %d more", len(joined)-maxAlertLines)
			break
		}
		text += "\nNow firing: " + alertLine(a)
	}
	return truncate(text, maxMessageText)
}

// Slack's limits on a message (Block Kit reference): longer texts are
// rejected with invalid_blocks, not cut.
const (
	maxBlocks      = 50
	maxHeaderText  = 150
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
	maxButtonValue = 2000
	maxURL         = 3000
	maxMessageText = 40000
	// maxAlertLines is how many alerts a message lists one by one.
	maxAlertLines = 10
)

// truncate cuts s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ButtonValue is the value of the Acknowledge and Resolve buttons of a
// group's message: the group key, or when that is longer than Slack allows
// a button value, "sha256:" and the key's SHA-256 in hex.
func ButtonValue(groupKey string) string {
	if len(groupKey) <= maxButtonValue {
		return groupKey
	}
	sum := sha256.Sum256([]byte(groupKey))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// alertLine is one alert of a message: its state and summary.
func alertLine(a alerting.NotifiedAlert) string {
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
	return truncate(mark+" "+s, maxSectionText)
}

// Blocks renders a notification as Block Kit: severity and SLO in the
// header, the burn rate of each window, the budget left, links, example
// trace IDs, and Acknowledge / Resolve buttons while it fires. The message
// stays within Slack's limits whatever the alerts hold, and a notification
// without alerts still renders.
func Blocks(n *alerting.Notification) []slack.Block {
	sev := severityOf(n)
	icon := map[string]string{"page": ":rotating_light:", "ticket": ":warning:"}[sev]
	if icon == "" {
		icon = ":bell:"
	}
	if n.Status == alerting.StatusResolved {
		icon = ":white_check_mark:"
	}
	header := truncate(fmt.Sprintf("%s %s · %s · %s", icon, strings.ToUpper(n.Status), strings.ToUpper(sev), title(n)), maxHeaderText)
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, header, true, false))}

	// Facts shared by the group come from its first alert.
	var first alerting.NotifiedAlert
	if len(n.Alerts) > 0 {
		first = n.Alerts[0]
	}
	var fields []*slack.TextBlockObject
	add := func(k, v string) {
		if v != "" && len(fields) < maxFields {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, truncate("*"+k+"*\n"+v, maxFieldText), false, false))
		}
	}
	add("Severity", sev)
	add("SLO", first.Labels["slo"])
	add("Service", first.Labels["service"])
	add("Objective", first.Annotations["objective"])
	add("Budget remaining", first.Annotations["budget_remaining"])
	add("Burn rate", burnRates(n))
	if !first.StartsAt.IsZero() {
		add("Since", first.StartsAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))

	// The alerts, one line each, in as many sections as their length needs.
	var lines []string
	for i, a := range n.Alerts {
		if i == maxAlertLines {
			lines = append(lines, fmt.Sprintf("…and %d more", len(n.Alerts)-maxAlertLines))
			break
		}
		lines = append(lines, alertLine(a))
	}
	if len(lines) == 0 {
		lines = append(lines, "No alerts.")
	}
	section := func(text string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
	}
	cur := ""
	for _, l := range lines {
		if cur != "" && utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(l) > maxSectionText {
			blocks = append(blocks, section(cur))
			cur = ""
		}
		if cur != "" {
			cur += "\n"
		}
		cur += l
	}
	blocks = append(blocks, section(cur))

	if ids := first.Annotations["trace_ids"]; ids != "" {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			truncate("Example failing traces: `"+strings.ReplaceAll(ids, ",", "` `")+"`", maxSectionText), false, false)))
	}

	var buttons []slack.BlockElement
	if n.Status == alerting.StatusFiring {
		v := ButtonValue(n.GroupKey)
		buttons = append(buttons,
			slack.NewButtonBlockElement(ActionAcknowledge, v, slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(ActionResolve, v, slack.NewTextBlockObject(slack.PlainTextType, "Resolve", false, false)).WithStyle(slack.StyleDanger))
	}
	// A link cut short would be broken: one too long for Slack is left out.
	if u := first.Annotations["runbook_url"]; u != "" && len(u) <= maxURL {
		buttons = append(buttons, slack.NewButtonBlockElement("burnrate_runbook", "runbook", slack.NewTextBlockObject(slack.PlainTextType, "Runbook", false, false)).WithURL(u))
	}
	if u := first.Annotations["dashboard_url"]; u != "" && len(u) <= maxURL {
		buttons = append(buttons, slack.NewButtonBlockElement("burnrate_dashboard", "dashboard", slack.NewTextBlockObject(slack.PlainTextType, "Dashboard", false, false)).WithURL(u))
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("burnrate_actions", buttons...))
	}
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], blocks[len(blocks)-1])
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
