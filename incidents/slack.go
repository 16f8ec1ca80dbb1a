package incidents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	alertslack "github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/internal/httpserver"
)

// maxSlackBody bounds what a Slack request may carry.
const maxSlackBody = 1 << 20

// slackFollowUpTimeout bounds the work done after answering Slack.
const slackFollowUpTimeout = 30 * time.Second

// verifySlack reads the body and checks Slack's signature before anything
// else happens: the signing secret, a timestamp within five minutes either
// way, a constant-time HMAC compare (slack-go's SecretsVerifier). It
// answers 401 itself and returns false when the request is not Slack's.
func (s *Service) verifySlack(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	deny := func(why string) ([]byte, bool) {
		s.logger.Warn("slack request refused", "why", why, "remote", r.RemoteAddr)
		httpserver.WriteJSON(w, http.StatusUnauthorized, httpserver.ErrorBody{Status: "error", ErrorType: "unauthorized", Error: "slack signature: " + why})
		return nil, false
	}
	if s.secret == "" {
		return deny("no signing secret configured (alerting.slack.signing_secret)")
	}
	sv, err := slack.NewSecretsVerifier(r.Header, s.secret)
	if err != nil {
		return deny(err.Error())
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSlackBody+1))
	if err != nil || len(body) > maxSlackBody {
		return deny("body unreadable or too large")
	}
	if _, err := sv.Write(body); err != nil {
		return deny(err.Error())
	}
	if err := sv.Ensure(); err != nil {
		return deny(err.Error())
	}
	return body, true
}

// errUnlinked is a Slack user who is no Burnrate user.
var errUnlinked = errors.New("not linked to a Burnrate user")

// slackActor finds the Burnrate user a Slack user is: the user whose
// slack_id is the Slack member ID, else the user whose email is the one
// Slack gives for the member (users.info; the match is remembered as the
// user's slack_id). Only such a person may change an incident from Slack.
// It returns errUnlinked when nobody matches, and any other error when the
// answer is unknown (the store or Slack failed): that is no link either.
func (s *Service) slackActor(ctx context.Context, slackID string) (Actor, error) {
	if slackID == "" {
		return Actor{}, errUnlinked
	}
	u, err := s.userBySlack(ctx, slackID, "")
	if err == nil {
		return Actor{By: u.ID, Source: "slack"}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Actor{}, fmt.Errorf("find the user of Slack ID %s: %w", slackID, err)
	}
	if s.slack == nil {
		return Actor{}, errUnlinked // no bot token: no way to learn the email
	}
	su, err := s.slack.api.GetUserInfoContext(ctx, slackID)
	if err != nil {
		return Actor{}, fmt.Errorf("slack users.info %s: %w", slackID, err)
	}
	if su.Profile.Email == "" {
		return Actor{}, errUnlinked
	}
	u, err = s.userBySlack(ctx, slackID, su.Profile.Email)
	if errors.Is(err, ErrNotFound) {
		return Actor{}, errUnlinked
	}
	if err != nil {
		return Actor{}, fmt.Errorf("find the user of Slack ID %s: %w", slackID, err)
	}
	return Actor{By: u.ID, Source: "slack"}, nil
}

// refusal is what a Slack user whose action slackActor or mayAct refused
// is told, privately.
func (s *Service) refusal(slackID string, err error) string {
	var nr *notResponderError
	switch {
	case errors.Is(err, errUnlinked):
		orEmail := ""
		if s.slack != nil { // matching by email needs users.info, so a bot token
			orEmail = " (or `email` to the email of your Slack profile)"
		}
		return fmt.Sprintf("Nothing done: your Slack account (<@%s>) is not linked to a Burnrate user, and only Burnrate users may change incidents. "+
			"To link it, set `slack_id` to `%s`%s on your Burnrate user: "+
			"`PUT /api/v1/users/{id}` with `{\"id\": \"…\", \"name\": \"…\", \"slack_id\": \"%s\"}`.", slackID, slackID, orEmail, slackID)
	case errors.As(err, &nr):
		return "Nothing done: " + nr.Error() + "."
	}
	return "Nothing done: who you are in Burnrate, or whether you may act, could not be checked (" + err.Error() + "). Try again in a moment."
}

// notResponderError refuses a linked person who is not among the
// incident's responders (incidents.slack.restrict_to_responders).
type notResponderError struct {
	user     string
	incident int64
	why      string
}

func (e *notResponderError) Error() string {
	return fmt.Sprintf("%s is not a responder of incident #%d: %s (incidents.slack.restrict_to_responders is on)", e.user, e.incident, e.why)
}

// mayAct checks incidents.slack.restrict_to_responders: when it is on,
// only the incident's responders may change it from Slack. A responder is
// a person named in a step of its escalation policy, on call now in a
// schedule one of its steps targets, or already a participant of the
// incident (acknowledged it, or was given a role). Anything that cannot
// be read refuses.
func (s *Service) mayAct(ctx context.Context, a Actor, inc *Incident) error {
	if !s.cfg.Slack.RestrictToResponders {
		return nil
	}
	for _, p := range inc.People {
		if p.User == a.By {
			return nil
		}
	}
	no := func(why string) error { return &notResponderError{user: a.By, incident: inc.ID, why: why} }
	if inc.EscalationPolicy == "" {
		return no("it has no escalation policy, so only its participants may change it")
	}
	pol, err := s.GetPolicy(ctx, inc.EscalationPolicy)
	if err != nil {
		return fmt.Errorf("read escalation policy %q: %w", inc.EscalationPolicy, err)
	}
	now := s.now()
	for _, st := range pol.Steps {
		for _, t := range st.Targets {
			switch t.Type {
			case TargetUser:
				if t.ID == a.By {
					return nil
				}
			case TargetSchedule:
				sc, err := s.Schedule(ctx, t.ID)
				if err != nil {
					return fmt.Errorf("read schedule %q of escalation policy %q: %w", t.ID, pol.ID, err)
				}
				if slices.Contains(sc.OnCallAt(now), a.By) {
					return nil
				}
			}
		}
	}
	return no(fmt.Sprintf("not named in its escalation policy %q, not on call now in a schedule the policy targets, and not a participant", pol.ID))
}

// respond posts a follow-up to a Slack response_url.
func (s *Service) respond(ctx context.Context, responseURL string, msg map[string]any) {
	if responseURL == "" {
		return
	}
	u, err := url.Parse(responseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return
	}
	body, _ := json.Marshal(msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		s.logger.Warn("slack response_url", "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

func ephemeral(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text}
}

// handleSlackInteraction answers a button click. Slack wants an answer
// within 3 s: the click is verified and parsed, answered 200 at once, and
// acted on right after; the message is then updated with chat.update (or,
// when that fails, through response_url), and a refusal ("already
// acknowledged by ...") goes to the clicker alone.
func (s *Service) handleSlackInteraction(w http.ResponseWriter, r *http.Request) {
	body, ok := s.verifySlack(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		writeError(w, invalid("payload", "a form field payload with the interaction JSON is required"))
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		writeError(w, invalid("payload", "%v", err))
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 {
		w.WriteHeader(http.StatusOK) // nothing Burnrate handles
		return
	}
	act := *cb.ActionCallback.BlockActions[0]
	switch act.ActionID {
	case alertslack.ActionAcknowledge, alertslack.ActionResolve, ActionEscalate:
	default:
		w.WriteHeader(http.StatusOK) // link buttons (runbook, dashboard)
		return
	}
	w.WriteHeader(http.StatusOK)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), slackFollowUpTimeout)
		defer cancel()
		s.act(ctx, cb, act)
	}()
}

func (s *Service) act(ctx context.Context, cb slack.InteractionCallback, act slack.BlockAction) {
	a, err := s.slackActor(ctx, cb.User.ID)
	if err != nil {
		s.logger.Info("slack action refused", "slack_user", cb.User.ID, "action", act.ActionID, "err", err)
		s.respond(ctx, cb.ResponseURL, ephemeral(s.refusal(cb.User.ID, err)))
		return
	}
	inc, err := s.incidentOfValue(ctx, act.Value)
	if err != nil {
		s.respond(ctx, cb.ResponseURL, ephemeral("No open incident for this alert: "+err.Error()))
		return
	}
	if err := s.mayAct(ctx, a, inc); err != nil {
		s.logger.Info("slack action refused", "slack_user", cb.User.ID, "user", a.By, "incident", inc.ID, "action", act.ActionID, "err", err)
		s.respond(ctx, cb.ResponseURL, ephemeral(s.refusal(cb.User.ID, err)))
		return
	}
	var verb string
	switch act.ActionID {
	case alertslack.ActionAcknowledge:
		inc, err = s.Acknowledge(ctx, inc.ID, a)
		verb = "acknowledged"
	case alertslack.ActionResolve:
		inc, err = s.Resolve(ctx, inc.ID, a, "")
		verb = "resolved"
	case ActionEscalate:
		inc, err = s.EscalateNow(ctx, inc.ID, a)
		verb = "escalated"
	}
	if err != nil {
		s.respond(ctx, cb.ResponseURL, ephemeral("Nothing done: "+err.Error()))
		return
	}
	blocks := updatedBlocks(cb.Message.Blocks.BlockSet, s.incidentBlocks(inc, ""),
		fmt.Sprintf(":white_check_mark: Incident #%d %s by <@%s> (%s) at %s", inc.ID, verb, cb.User.ID, a.By,
			s.now().UTC().Format("15:04 MST")))
	channel, ts := cb.Container.ChannelID, cb.Container.MessageTs
	if channel == "" {
		channel = cb.Channel.ID
	}
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	text := fmt.Sprintf("Incident #%d %s by %s", inc.ID, verb, a.By)
	if s.slack != nil && channel != "" && ts != "" {
		_, _, _, err := s.slack.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
		if err == nil {
			return
		}
		s.logger.Warn("slack chat.update failed; answering through response_url", "incident", inc.ID, "err", err)
	}
	s.respond(ctx, cb.ResponseURL, map[string]any{"replace_original": true, "text": text, "blocks": blocks})
}

// updatedBlocks keeps the clicked message's content, replaces its buttons
// with the incident's current ones and adds who did what.
func updatedBlocks(orig []slack.Block, incident []slack.Block, line string) []slack.Block {
	var out []slack.Block
	for _, b := range orig {
		if b.BlockType() == slack.MBTAction {
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		for _, b := range incident {
			if b.BlockType() != slack.MBTAction {
				out = append(out, b)
			}
		}
	}
	out = append(out, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, line, false, false)))
	for _, b := range incident {
		if b.BlockType() == slack.MBTAction {
			out = append(out, b)
		}
	}
	return out
}

// incidentOfValue reads a button value: "incident:ID" on escalation
// messages, the alert group key on alert messages.
func (s *Service) incidentOfValue(ctx context.Context, v string) (*Incident, error) {
	if n, ok := strings.CutPrefix(v, "incident:"); ok {
		id, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return nil, invalid("value", "%q is not an incident", v)
		}
		return s.Get(ctx, id)
	}
	return s.ByGroup(ctx, v)
}

const commandHelp = "Usage: `/burnrate oncall [schedule]` · `/burnrate list` · `/burnrate ack ID` · `/burnrate resolve ID [text]` · `/burnrate note ID text`"

// handleSlackCommand answers /burnrate. Everything it does is local (the
// store and schedules), so it answers within Slack's 3 s directly.
func (s *Service) handleSlackCommand(w http.ResponseWriter, r *http.Request) {
	body, ok := s.verifySlack(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, invalid("body", "%v", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2500*time.Millisecond)
	defer cancel()
	text, public := s.command(ctx, form)
	kind := "ephemeral"
	if public {
		kind = "in_channel"
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"response_type": kind, "text": text})
}

// command runs one /burnrate command and returns the answer and whether
// the channel should see it.
func (s *Service) command(ctx context.Context, form url.Values) (string, bool) {
	fields := strings.Fields(form.Get("text"))
	if len(fields) == 0 {
		return commandHelp, false
	}
	sub, args := strings.ToLower(fields[0]), fields[1:]
	idArg := func() (int64, error) {
		if len(args) == 0 {
			return 0, errors.New("an incident ID is required")
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
		if err != nil || id <= 0 {
			return 0, fmt.Errorf("%q is not an incident ID", args[0])
		}
		return id, nil
	}
	switch sub {
	case "oncall":
		sched := ""
		if len(args) > 0 {
			sched = args[0]
		}
		ocs, err := s.WhoIsOnCall(ctx, sched, s.now())
		if err != nil {
			return "Error: " + err.Error(), false
		}
		return formatOnCall(ocs), false
	case "list":
		list, err := s.List(ctx, Filter{Status: "open", Limit: 20})
		if err != nil {
			return "Error: " + err.Error(), false
		}
		if len(list) == 0 {
			return "No open incidents.", false
		}
		var b strings.Builder
		for _, inc := range list {
			fmt.Fprintf(&b, "#%d %s %s · %s\n", inc.ID, inc.Severity, inc.Status, inc.Title)
		}
		return b.String(), false
	case "ack", "resolve", "note":
		id, err := idArg()
		if err != nil {
			return "Error: " + err.Error() + "\n" + commandHelp, false
		}
		a, err := s.slackActor(ctx, form.Get("user_id"))
		if err != nil {
			s.logger.Info("slack command refused", "slack_user", form.Get("user_id"), "command", sub, "err", err)
			return s.refusal(form.Get("user_id"), err), false
		}
		inc, err := s.Get(ctx, id)
		if err != nil {
			return "Error: " + err.Error(), false
		}
		if err := s.mayAct(ctx, a, inc); err != nil {
			s.logger.Info("slack command refused", "slack_user", form.Get("user_id"), "user", a.By, "incident", id, "command", sub, "err", err)
			return s.refusal(form.Get("user_id"), err), false
		}
		rest := strings.Join(args[1:], " ")
		var verb string
		switch sub {
		case "ack":
			inc, err = s.Acknowledge(ctx, id, a)
			verb = "acknowledged"
		case "resolve":
			inc, err = s.Resolve(ctx, id, a, rest)
			verb = "resolved"
		default:
			inc, err = s.AddNote(ctx, id, a, rest)
			verb = "noted"
		}
		if err != nil {
			return "Error: " + err.Error(), false
		}
		return fmt.Sprintf("Incident #%d (%s) %s by %s.", inc.ID, inc.Title, verb, a.By), true
	}
	return fmt.Sprintf("Unknown command %q.\n%s", sub, commandHelp), false
}

func formatOnCall(ocs []OnCall) string {
	if len(ocs) == 0 {
		return "No schedules."
	}
	var b strings.Builder
	for _, oc := range ocs {
		var names []string
		for _, u := range oc.Users {
			n := u.Name
			if u.SlackID != "" {
				n = "<@" + u.SlackID + ">"
			}
			names = append(names, n)
		}
		if len(names) == 0 {
			names = []string{"nobody"}
		}
		fmt.Fprintf(&b, "*%s*: %s", oc.Schedule, strings.Join(names, ", "))
		if len(oc.Next) > 0 {
			var next []string
			for _, sh := range oc.Next {
				next = append(next, sh.User)
			}
			fmt.Fprintf(&b, " · next %s from %s", strings.Join(next, ", "), oc.Next[0].Start.UTC().Format("2006-01-02 15:04 UTC"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
