package incidents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	alertslack "github.com/burnrate/burnrate/alerting/slack"
	"github.com/burnrate/burnrate/incidents"
)

// slashCommand runs /burnrate as a Slack user and returns Slack's answer.
func (e *env) slashCommand(t *testing.T, user, text string) map[string]any {
	t.Helper()
	body := url.Values{"command": {"/burnrate"}, "text": {text}, "user_id": {user}, "user_name": {"someone"}}.Encode()
	code, resp := e.slackPost(t, "/api/v1/slack/commands", validly(body))
	require.Equal(t, 200, code, resp)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp), &out), resp)
	return out
}

// clickAndWaitForReply presses a button as user and waits for the private
// reply on response_url, the signal that the click has been dealt with.
func (e *env) clickAndWaitForReply(t *testing.T, f *fakeSlack, action, value, user string) map[string]any {
	t.Helper()
	n := len(f.byMethod("response"))
	code, _ := e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, action, value, user)))
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { return len(f.byMethod("response")) == n+1 }, 5*time.Second, 10*time.Millisecond)
	return f.byMethod("response")[n].JSON
}

func declare(t *testing.T, e *env, n incidents.NewIncident) *incidents.Incident {
	t.Helper()
	inc, err := e.svc.Declare(context.Background(), n)
	require.NoError(t, err)
	return inc
}

func TestASlackUserLinkedToNoBurnrateUserIsToldHowToLinkAndChangesNothing(t *testing.T) {
	e, f := slackEnv(t)
	inc := declare(t, e, incidents.NewIncident{Title: "api down", Severity: "SEV2"})
	value := "incident:1"
	before := e.get(t, inc.ID)

	// UEVE is in the Slack workspace (users.info gives eve@example.com),
	// but no Burnrate user has her Slack ID or her email.
	for _, action := range []string{alertslack.ActionAcknowledge, alertslack.ActionResolve, incidents.ActionEscalate} {
		t.Run("the button "+action, func(t *testing.T) {
			reply := e.clickAndWaitForReply(t, f, action, value, "UEVE")
			require.Equal(t, "ephemeral", reply["response_type"])
			require.Equal(t, false, reply["replace_original"])
			require.Contains(t, reply["text"], "not linked to a Burnrate user")
			require.Contains(t, reply["text"], "`slack_id` to `UEVE`")
			require.Contains(t, reply["text"], "PUT /api/v1/users/{id}")
			require.Equal(t, before, e.get(t, inc.ID), "status and timeline are unchanged")
		})
	}
	for _, cmd := range []string{"ack 1", "resolve 1 fixed it", "note 1 looking"} {
		t.Run("the command "+cmd, func(t *testing.T) {
			out := e.slashCommand(t, "UEVE", cmd)
			require.Equal(t, "ephemeral", out["response_type"])
			require.Contains(t, out["text"], "not linked to a Burnrate user")
			require.Equal(t, before, e.get(t, inc.ID), "status and timeline are unchanged")
		})
	}
	require.Empty(t, f.byMethod("chat.update"), "no message was updated")
	// Reading stays open to everyone in the workspace.
	require.Contains(t, e.slashCommand(t, "UEVE", "list")["text"], "#1 SEV2 triggered")
}

func TestAFailedSlackLookupIsNoLink(t *testing.T) {
	e, f := slackEnv(t)
	inc := declare(t, e, incidents.NewIncident{Title: "api down", Severity: "SEV2"})
	before := e.get(t, inc.ID)

	// ann is linked by email only; while users.info fails nobody can tell
	// that UANN is ann, so nothing is done.
	f.mu.Lock()
	f.infoDown = true
	f.mu.Unlock()
	reply := e.clickAndWaitForReply(t, f, alertslack.ActionAcknowledge, "incident:1", "UANN")
	require.Equal(t, "ephemeral", reply["response_type"])
	require.Contains(t, reply["text"], "could not be checked")
	require.Contains(t, reply["text"], "Try again")
	out := e.slashCommand(t, "UANN", "ack 1")
	require.Equal(t, "ephemeral", out["response_type"])
	require.Contains(t, out["text"], "could not be checked")
	require.Equal(t, before, e.get(t, inc.ID))
	u, err := e.svc.GetUser(context.Background(), "ann")
	require.NoError(t, err)
	require.Empty(t, u.SlackID, "no link is remembered from a failed lookup")

	// Slack is back: the same click acts, as ann.
	f.mu.Lock()
	f.infoDown = false
	f.mu.Unlock()
	code, _ := e.slackPost(t, "/api/v1/slack/interactions", validly(clickBody(f, alertslack.ActionAcknowledge, "incident:1", "UANN")))
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { return len(f.byMethod("chat.update")) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "ann", e.get(t, inc.ID).AcknowledgedBy)
}

func TestLinkedSlackUsersActAsTheirBurnrateUser(t *testing.T) {
	e, f := slackEnv(t)
	declare(t, e, incidents.NewIncident{Title: "api down", Severity: "SEV2"})
	declare(t, e, incidents.NewIncident{Title: "db slow", Severity: "SEV3"})

	cases := []struct {
		name, slackID, user string
		incident            int64
	}{
		{"by email (ann has no Slack ID; users.info gives her email)", "UANN", "ann", 1},
		{"by Slack ID (ben's slack_id is UBEN)", "UBEN", "ben", 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := e.slackPost(t, "/api/v1/slack/interactions",
				validly(clickBody(f, alertslack.ActionAcknowledge, fmt.Sprintf("incident:%d", tc.incident), tc.slackID)))
			require.Equal(t, 200, code)
			require.Eventually(t, func() bool { return len(f.byMethod("chat.update")) == i+1 }, 5*time.Second, 10*time.Millisecond)
			inc := e.get(t, tc.incident)
			require.Equal(t, incidents.StatusAcknowledged, inc.Status)
			require.Equal(t, tc.user, inc.AcknowledgedBy)
			last := inc.Timeline[len(inc.Timeline)-1]
			require.Equal(t, incidents.EventAcknowledged, last.Kind)
			require.Equal(t, tc.user, last.Actor, "the timeline records the Burnrate user ID")
			require.Equal(t, "slack", last.Source)
		})
	}
	require.Len(t, f.byMethod("users.info"), 1, "only ann needed a lookup")
	u, err := e.svc.GetUser(context.Background(), "ann")
	require.NoError(t, err)
	require.Equal(t, "UANN", u.SlackID, "the email match is remembered")
	require.Contains(t, e.slashCommand(t, "UANN", "note 1 rolled back")["text"], "noted by ann")
	require.Len(t, f.byMethod("users.info"), 1, "the remembered link needs no lookup")
}

func TestRestrictToRespondersRefusesLinkedPeopleOutsideThePolicy(t *testing.T) {
	f := newFakeSlack(t)
	e := newEnv(t, func(o *incidents.Options) {
		o.Slack = incidents.SlackOptions{Token: "xoxb-test", SigningSecret: signingSecret, APIURL: f.URL}
		o.Now = time.Now
		o.Config.Slack.RestrictToResponders = true
	})
	ctx := context.Background()
	for _, u := range []incidents.User{
		{ID: "ann", Name: "Ann", SlackID: "UANN"},
		{ID: "ben", Name: "Ben", SlackID: "UBEN"},
		{ID: "cat", Name: "Cat", SlackID: "UCAT"},
	} {
		require.NoError(t, e.svc.PutUser(ctx, &u))
	}
	// ben is on call in primary now.
	require.NoError(t, e.svc.PutSchedule(ctx, &incidents.Schedule{ID: "primary", TimeZone: "UTC",
		Layers: []incidents.Layer{{Level: 1, Users: []string{"ben"}, Start: "2026-01-01", Turn: "weekly"}}}))
	require.NoError(t, e.svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Steps: []incidents.Step{
		{Targets: []incidents.Target{{Type: incidents.TargetSchedule, ID: "primary"}}, WaitMinutes: 5},
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ann"}}, WaitMinutes: 5},
	}}))
	inc := declare(t, e, incidents.NewIncident{Title: "api down", Severity: "SEV2", EscalationPolicy: "p"})
	before := e.get(t, inc.ID)

	// cat is a linked Burnrate user, but not on the policy.
	reply := e.clickAndWaitForReply(t, f, alertslack.ActionAcknowledge, "incident:1", "UCAT")
	require.Equal(t, "ephemeral", reply["response_type"])
	require.Contains(t, reply["text"], "cat is not a responder of incident #1")
	require.Contains(t, reply["text"], `escalation policy "p"`)
	require.Contains(t, reply["text"], "restrict_to_responders")
	out := e.slashCommand(t, "UCAT", "note 1 I can help")
	require.Equal(t, "ephemeral", out["response_type"])
	require.Contains(t, out["text"], "cat is not a responder")
	require.Equal(t, before, e.get(t, inc.ID), "status and timeline are unchanged")
	require.Empty(t, f.byMethod("chat.update"))

	// ben is on call now in the schedule the policy targets: he acts.
	require.Contains(t, e.slashCommand(t, "UBEN", "ack 1")["text"], "acknowledged by ben")
	// ann is named in the policy: she acts.
	require.Contains(t, e.slashCommand(t, "UANN", "note 1 rolling back")["text"], "noted by ann")
	// Given a role, cat is a participant and acts too.
	_, err := e.svc.Assign(ctx, inc.ID, incidents.Actor{By: "ann"}, "cat", "scribe")
	require.NoError(t, err)
	require.Contains(t, e.slashCommand(t, "UCAT", "note 1 writing it down")["text"], "noted by cat")

	// An incident without a policy has no responders but its participants.
	declare(t, e, incidents.NewIncident{Title: "db slow", Severity: "SEV3"})
	out = e.slashCommand(t, "UCAT", "ack 2")
	require.Equal(t, "ephemeral", out["response_type"])
	require.Contains(t, out["text"], "has no escalation policy")
	require.Equal(t, incidents.StatusTriggered, e.get(t, 2).Status)
}

func TestWithoutABotTokenOnlyTheSlackIDLinks(t *testing.T) {
	// A signing secret (so Slack's requests are accepted) but no bot token:
	// Burnrate cannot ask Slack for anyone's email.
	e := newEnv(t, func(o *incidents.Options) {
		o.Slack = incidents.SlackOptions{SigningSecret: signingSecret}
		o.Now = time.Now
	})
	ctx := context.Background()
	require.NoError(t, e.svc.PutUser(ctx, &incidents.User{ID: "ann", Name: "Ann", Email: "ann@example.com"}))
	require.NoError(t, e.svc.PutUser(ctx, &incidents.User{ID: "ben", Name: "Ben", SlackID: "UBEN"}))
	inc := declare(t, e, incidents.NewIncident{Title: "api down", Severity: "SEV2"})
	before := e.get(t, inc.ID)

	out := e.slashCommand(t, "UANN", "ack 1")
	require.Equal(t, "ephemeral", out["response_type"])
	require.Contains(t, out["text"], "not linked to a Burnrate user")
	require.Contains(t, out["text"], "`slack_id` to `UANN`")
	require.NotContains(t, out["text"], "email", "matching by email needs a bot token, so the reply does not offer it")
	require.Equal(t, before, e.get(t, inc.ID))

	require.Contains(t, e.slashCommand(t, "UBEN", "ack 1")["text"], "acknowledged by ben")
}
