package incidents_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

// running is a Service with its escalation loop, on the bubble's clock.
type running struct {
	svc     *incidents.Service
	halt    func()
	stopped bool
}

func startService(t *testing.T, path string) *running {
	t.Helper()
	svc, err := incidents.Open(context.Background(), incidents.Options{Path: path})
	require.NoError(t, err)
	r := &running{svc: svc, halt: runService(t, svc, path)}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.halt()
	require.NoError(t, r.svc.Close())
}

func seedEscalation(t *testing.T, svc *incidents.Service, repeat int) {
	t.Helper()
	ctx := context.Background()
	for _, u := range []string{"ann", "ben"} {
		require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: u, Name: strings.ToUpper(u)}))
	}
	require.NoError(t, svc.PutSchedule(ctx, &incidents.Schedule{ID: "primary", TimeZone: "UTC", Layers: []incidents.Layer{{
		Level: 1, Users: []string{"ann"}, Start: "1999-12-01", Turn: "weekly"}}}))
	require.NoError(t, svc.PutPolicy(ctx, &incidents.Policy{ID: "p", Repeat: repeat, Steps: []incidents.Step{
		{Targets: []incidents.Target{{Type: incidents.TargetSchedule, ID: "primary"}}, WaitMinutes: 5},
		{Targets: []incidents.Target{{Type: incidents.TargetUser, ID: "ben"}}, WaitMinutes: 10},
	}}))
}

// pages lists the escalation steps recorded in the timeline as
// "+minutes step" (each step's "paging" event).
func pages(t *testing.T, svc *incidents.Service, id int64, start time.Time) []string {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		if e.Kind != incidents.EventPaging {
			continue
		}
		step := "?"
		switch {
		case strings.Contains(e.Text, "step 1/2"):
			step = "ann"
		case strings.Contains(e.Text, "step 2/2"):
			step = "ben"
		}
		out = append(out, e.At.Sub(start).String()+" "+step)
	}
	return out
}

func TestEscalationStepsFireAtTheirMinutesRepeatAndStopOnAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		defer r.stop(t)
		seedEscalation(t, r.svc, 1)
		start := time.Now().UTC()
		inc, err := r.svc.Declare(context.Background(), incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)

		time.Sleep(29 * time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", "5m0s ben", "15m0s ann", "20m0s ben"}, pages(t, r.svc, inc.ID, start),
			"two rounds: the policy repeats once, then stops")
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		require.Len(t, pages(t, r.svc, inc.ID, start), 4)

		// A second incident is acknowledged after its first step.
		start = time.Now().UTC()
		inc2, err := r.svc.Declare(context.Background(), incidents.NewIncident{Title: "cache down", Severity: "SEV2", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(3 * time.Minute)
		_, err = r.svc.Acknowledge(context.Background(), inc2.ID, incidents.Actor{By: "ann"})
		require.NoError(t, err)
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Equal(t, []string{"0s ann"}, pages(t, r.svc, inc2.ID, start), "acknowledging stops the escalation")

		// Re-opened, it starts again from the first step.
		_, err = r.svc.Resolve(context.Background(), inc2.ID, incidents.Actor{By: "ann"}, "")
		require.NoError(t, err)
		_, err = r.svc.Reopen(context.Background(), inc2.ID, incidents.Actor{By: "ann"}, "")
		require.NoError(t, err)
		reopened := time.Now().UTC()
		time.Sleep(6 * time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", reopened.Sub(start).String() + " ann", (reopened.Sub(start) + 5*time.Minute).String() + " ben"},
			pages(t, r.svc, inc2.ID, start))
	})
}

func TestEscalationResumesOnTimeAfterARestartAndRunsAnOverdueStepOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "incidents.db")
		r := startService(t, path)
		seedEscalation(t, r.svc, 0)
		start := time.Now().UTC()
		inc, err := r.svc.Declare(context.Background(), incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r.stop(t)

		// Down for a minute; back before step 2 is due at +5m.
		time.Sleep(time.Minute)
		r = startService(t, path)
		time.Sleep(time.Minute + 59*time.Second)
		synctest.Wait()
		require.Equal(t, []string{"0s ann"}, pages(t, r.svc, inc.ID, start), "not early")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", "5m0s ben"}, pages(t, r.svc, inc.ID, start), "on time after the restart")
		r.stop(t)

		// A second incident whose step 2 falls due while the process is down.
		r = startService(t, path)
		start = time.Now().UTC()
		inc, err = r.svc.Declare(context.Background(), incidents.NewIncident{Title: "db down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		synctest.Wait()
		r.stop(t)
		time.Sleep(30 * time.Minute) // step 2 was due at +5m
		r = startService(t, path)
		defer r.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", "31m0s ben"}, pages(t, r.svc, inc.ID, start), "the overdue step runs once, at start")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Len(t, pages(t, r.svc, inc.ID, start), 2, "and never again: the policy is over")
	})
}

func TestEscalationPagesWhoeverAnOverridePutsOnCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		seedEscalation(t, r.svc, 0)
		now := time.Now().UTC()
		_, err := r.svc.AddOverride(context.Background(), "primary", incidents.Override{
			User: "ben", Replaces: "ann", Start: now.Add(-time.Minute), End: now.Add(time.Hour)})
		require.NoError(t, err)
		inc, err := r.svc.Declare(context.Background(), incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		synctest.Wait()
		tl, err := r.svc.Timeline(context.Background(), inc.ID)
		require.NoError(t, err)
		var paging, notified []string
		for _, e := range tl {
			switch e.Kind {
			case incidents.EventPaging:
				paging = append(paging, e.Text)
			case incidents.EventNotified:
				notified = append(notified, e.Text)
			}
		}
		require.Len(t, paging, 1)
		require.Contains(t, paging[0], "paging ben (on call for primary, log)")
		require.NotContains(t, paging[0], "ann")
		require.Equal(t, []string{"Notified ben (log: no Slack token) for escalation step 1, round 1"}, notified,
			"the page is recorded as delivered once the log took it")
	})
}

func TestEscalateOnAnAcknowledgedIncidentPagesTheNextLevelNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		seedEscalation(t, r.svc, 0)
		start := time.Now().UTC()
		inc, err := r.svc.Declare(context.Background(), incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		_, err = r.svc.Acknowledge(context.Background(), inc.ID, incidents.Actor{By: "ann"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		got, err := r.svc.EscalateNow(context.Background(), inc.ID, incidents.Actor{By: "ann", Source: "slack"})
		require.NoError(t, err)
		require.Equal(t, incidents.StatusTriggered, got.Status)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", "2m0s ben"}, pages(t, r.svc, inc.ID, start), "ben, the next level, at once")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Len(t, pages(t, r.svc, inc.ID, start), 2, "the policy then ends (repeat 0)")
	})
}
