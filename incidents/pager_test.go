package incidents_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

// A person mapped by email is paged once Slack can look them up: while
// users.lookupByEmail fails, the page is retried and the timeline says it
// failed and is being retried, never that ben was notified. The page used
// to go to the log with the lookup's failure, and the timeline said
// "Slack DM".
func TestAFailedEmailLookupIsAFailedDeliveryRetriedUntilSlackAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &flakySlack{lookupsOnly: true}
		path := filepath.Join(t.TempDir(), "incidents.db")
		svc, err := incidents.Open(context.Background(), incidents.Options{Path: path,
			Slack: incidents.SlackOptions{Token: "xoxb-test", APIURL: "http://slack.invalid/api/", HTTPClient: &http.Client{Transport: fake}}})
		require.NoError(t, err)
		defer func() { require.NoError(t, svc.Close()) }()
		defer runService(t, svc, path)()
		ctx := context.Background()
		require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: "ben", Name: "Ben", Email: "ben@example.com"}))
		require.NoError(t, svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Steps: []incidents.Step{
			{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ben"}}, WaitMinutes: 30}}}))
		inc, err := svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)

		time.Sleep(time.Minute) // Slack's lookups fail for a minute
		synctest.Wait()
		require.Empty(t, fake.sent())
		require.Greater(t, fake.lookedUp(), 2, "the lookup is retried while it fails")
		byKind := func() map[string][]string {
			tl, err := svc.Timeline(ctx, inc.ID)
			require.NoError(t, err)
			out := map[string][]string{}
			for _, e := range tl {
				out[e.Kind] = append(out[e.Kind], e.Text)
			}
			return out
		}
		during := byKind()
		require.Empty(t, during[incidents.EventNotified], "nobody is notified while the lookup fails")
		require.Len(t, during[incidents.EventDeliveryFailed], 1, "the failure is recorded once, not at every retry")
		require.Contains(t, during[incidents.EventDeliveryFailed][0], "Page to ben (step 1, round 1) failed, retrying: users.lookupByEmail")

		fake.set(true)
		time.Sleep(time.Minute) // past the longest backoff
		synctest.Wait()
		posts := fake.sent()
		require.Len(t, posts, 1, "the page arrives once Slack answers: %q", posts)
		require.True(t, strings.HasPrefix(posts[0], "UBEN Paged (escalation step 1"), posts[0])
		after := byKind()
		require.Len(t, after[incidents.EventNotified], 1)
		require.Regexp(t, `^Notified ben \(Slack DM\) for escalation step 1, round 1, after \d+ attempts$`, after[incidents.EventNotified][0])
	})
}

// The escalation loop runs once: a second Run is refused while the first
// runs, and Run refuses to start without a delivery queue, where a page
// would have nowhere to go.
func TestTheEscalationLoopRunsOnceAndOnlyWithAQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "incidents.db")
	svc, err := incidents.Open(context.Background(), incidents.Options{Path: path})
	require.NoError(t, err)
	defer func() { require.NoError(t, svc.Close()) }()
	err = svc.Run(context.Background())
	require.ErrorContains(t, err, "no delivery queue")

	stop := runService(t, svc, path)
	defer stop()
	// The first loop runs once it has paged for a declared incident.
	ctx := context.Background()
	require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: "ann", Name: "Ann"}))
	require.NoError(t, svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Steps: []incidents.Step{
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ann"}}, WaitMinutes: 30}}}))
	inc, err := svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		tl, err := svc.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		return tl[len(tl)-1].Kind == incidents.EventNotified
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, svc.Run(ctx), incidents.ErrRunning, "a second Run while the first runs")
}
