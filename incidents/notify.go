package incidents

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	alertslack "github.com/burnrate/burnrate/alerting/slack"
)

// ActionEscalate is the action ID of the Escalate button on escalation
// messages; Acknowledge and Resolve reuse the alert message's action IDs.
const ActionEscalate = "burnrate_escalate"

// incidentValue is the button value naming an incident (alert messages
// carry the alert group key instead).
func incidentValue(id int64) string { return "incident:" + strconv.FormatInt(id, 10) }

// slackClient is the Slack Web API as the Service uses it.
type slackClient struct {
	api *slack.Client
}

func newSlackClient(o SlackOptions) *slackClient {
	opts := []slack.Option{}
	if o.APIURL != "" {
		u := o.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	opts = append(opts, slack.OptionHTTPClient(client))
	return &slackClient{api: slack.New(o.Token, opts...)}
}

// incidentBlocks renders an incident as a message with its buttons.
func (s *Service) incidentBlocks(inc *Incident, headline string) []slack.Block {
	text := fmt.Sprintf("*%s*\n*#%d %s* · %s · %s", headline, inc.ID, inc.Title, inc.Severity, inc.Status)
	if inc.Service != "" {
		text += " · service " + inc.Service
	}
	if s.cfg.ExternalURL != "" {
		text += fmt.Sprintf("\n<%s/api/v1/incidents/%d|Open incident>", s.cfg.ExternalURL, inc.ID)
	}
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	if inc.Status != StatusResolved {
		v := incidentValue(inc.ID)
		var buttons []slack.BlockElement
		if inc.Status == StatusTriggered {
			buttons = append(buttons, slack.NewButtonBlockElement(alertslack.ActionAcknowledge, v,
				slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false)).WithStyle(slack.StylePrimary))
		}
		buttons = append(buttons,
			slack.NewButtonBlockElement(alertslack.ActionResolve, v, slack.NewTextBlockObject(slack.PlainTextType, "Resolve", false, false)).WithStyle(slack.StyleDanger),
			slack.NewButtonBlockElement(ActionEscalate, v, slack.NewTextBlockObject(slack.PlainTextType, "Escalate", false, false)))
		blocks = append(blocks, slack.NewActionBlock("burnrate_incident_actions", buttons...))
	}
	return blocks
}

// deliver sends one escalation page: a Slack DM or channel message with a
// token, the log otherwise (or when the person has no Slack identity). It
// returns how it was sent, or the failure classified for the outbox
// (slackError): a lookup that fails is a failed delivery, never a page
// quietly written to the log.
func (s *Service) deliver(ctx context.Context, p page) (string, error) {
	headline := fmt.Sprintf("Paged (escalation step %d, round %d)", p.step+1, p.round+1)
	target := p.channel
	if target == "" {
		var err error
		if target, err = s.slackTarget(ctx, p.user); err != nil {
			return "", err
		}
	}
	if s.slack == nil || target == "" {
		s.logger.Warn("page", "incident", p.incident.ID, "title", p.incident.Title, "severity", p.incident.Severity,
			"to", p.who(), "step", p.step+1, "round", p.round+1)
		if s.slack == nil {
			return "log: no Slack token", nil
		}
		return "log: no Slack ID or email", nil
	}
	_, _, err := s.slack.api.PostMessageContext(ctx, target,
		slack.MsgOptionBlocks(s.incidentBlocks(p.incident, headline)...),
		slack.MsgOptionText(fmt.Sprintf("%s: #%d %s (%s)", headline, p.incident.ID, p.incident.Title, p.incident.Severity), false))
	if err != nil {
		return "", slackError(fmt.Errorf("slack page to %s: %w", target, err))
	}
	if p.channel != "" {
		return "Slack channel", nil
	}
	return "Slack DM", nil
}

// slackTarget is where a person's Slack messages go: their Slack ID, else
// the member users.lookupByEmail finds for their email (remembered). It is
// empty without a Slack token or when the person has neither. A lookup
// that fails is an error: retried if Slack may answer later, permanent if
// Slack has no member with that email.
func (s *Service) slackTarget(ctx context.Context, u *User) (string, error) {
	if s.slack == nil {
		return "", nil
	}
	if u.SlackID != "" {
		return u.SlackID, nil
	}
	if u.Email == "" {
		return "", nil
	}
	su, err := s.slack.api.GetUserByEmailContext(ctx, u.Email)
	if err != nil {
		return "", slackError(fmt.Errorf("users.lookupByEmail for %s: %w", u.ID, err))
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE users SET slack_id = ? WHERE id = ?`, su.ID, u.ID); err != nil {
		s.logger.Warn("remember Slack ID", "user", u.ID, "err", err)
	}
	return su.ID, nil
}
