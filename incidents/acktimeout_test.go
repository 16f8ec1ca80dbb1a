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

// seedAckTimeout is seedEscalation's policy p (ann at once, ben 5 minutes
// later, no repeat) with an acknowledgement timeout.
func seedAckTimeout(t *testing.T, svc *incidents.Service, minutes float64) {
	t.Helper()
	seedEscalation(t, svc, 0)
	p, err := svc.GetPolicy(context.Background(), "p")
	require.NoError(t, err)
	p.AckTimeoutMinutes = minutes
	require.NoError(t, svc.PutPolicy(context.Background(), p))
}

// timedOut lists the acknowledgement timeouts in an incident's timeline.
func timedOut(t *testing.T, svc *incidents.Service, id int64, start time.Time) []string {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		if e.Kind == incidents.EventAckTimedOut {
			out = append(out, e.At.Sub(start).String()+" "+e.Text)
		}
	}
	return out
}

func status(t *testing.T, svc *incidents.Service, id int64) incidents.Status {
	t.Helper()
	inc, err := svc.Get(context.Background(), id)
	require.NoError(t, err)
	return inc.Status
}

func TestAnAcknowledgementThatTimesOutReTriggersAndEscalatesFromTheFirstStepOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		seedAckTimeout(t, r.svc, 30)
		ctx := context.Background()
		start := time.Now().UTC()
		inc, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		_, err = r.svc.Acknowledge(ctx, inc.ID, incidents.Actor{By: "ann"})
		require.NoError(t, err)
		due, err := r.svc.AckTimeout(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, start.Add(32*time.Minute), due)

		time.Sleep(30*time.Minute - time.Second)
		synctest.Wait()
		require.Equal(t, incidents.StatusAcknowledged, status(t, r.svc, inc.ID), "not early")
		require.Equal(t, []string{"0s ann"}, pages(t, r.svc, inc.ID, start))

		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, incidents.StatusTriggered, status(t, r.svc, inc.ID))
		require.Equal(t, []string{"32m0s Acknowledgement timed out after 30 minutes: re-triggered, escalation starts over"},
			timedOut(t, r.svc, inc.ID, start))
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"0s ann", "32m0s ann", "37m0s ben"}, pages(t, r.svc, inc.ID, start),
			"escalation starts over from the first step")

		time.Sleep(24 * time.Hour)
		synctest.Wait()
		require.Len(t, timedOut(t, r.svc, inc.ID, start), 1, "once: the incident was not acknowledged again")
		require.Len(t, pages(t, r.svc, inc.ID, start), 3, "and the policy ran its course")
		_, err = r.svc.AckTimeout(ctx, inc.ID)
		require.ErrorIs(t, err, incidents.ErrNotFound)
	})
}

func TestAResolvedOrReAcknowledgedIncidentDoesNotTimeOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		seedAckTimeout(t, r.svc, 30)
		ctx := context.Background()
		start := time.Now().UTC()
		resolved, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		reacked, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "db down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		for _, id := range []int64{resolved.ID, reacked.ID} {
			_, err = r.svc.Acknowledge(ctx, id, incidents.Actor{By: "ann"})
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Minute)
		_, err = r.svc.Resolve(ctx, resolved.ID, incidents.Actor{By: "ann"}, "")
		require.NoError(t, err)
		// Escalated by hand and acknowledged again: the deadline moves to
		// 30 minutes after the second acknowledgement.
		_, err = r.svc.EscalateNow(ctx, reacked.ID, incidents.Actor{By: "ann"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		_, err = r.svc.Acknowledge(ctx, reacked.ID, incidents.Actor{By: "ben"})
		require.NoError(t, err)

		time.Sleep(30*time.Minute - time.Second) // +41m59s: past the first deadline (+31m)
		synctest.Wait()
		require.Equal(t, incidents.StatusResolved, status(t, r.svc, resolved.ID))
		require.Empty(t, timedOut(t, r.svc, resolved.ID, start))
		require.Equal(t, []string{"0s ann"}, pages(t, r.svc, resolved.ID, start))
		require.Equal(t, incidents.StatusAcknowledged, status(t, r.svc, reacked.ID))
		require.Empty(t, timedOut(t, r.svc, reacked.ID, start))

		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, incidents.StatusTriggered, status(t, r.svc, reacked.ID))
		require.Len(t, timedOut(t, r.svc, reacked.ID, start), 1)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		require.Empty(t, timedOut(t, r.svc, resolved.ID, start), "resolved: never")
	})
}

func TestWithoutAnAckTimeoutAnAcknowledgedIncidentStaysAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startService(t, filepath.Join(t.TempDir(), "incidents.db"))
		seedEscalation(t, r.svc, 0) // ack_timeout_minutes unset: off
		ctx := context.Background()
		inc, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		_, err = r.svc.Acknowledge(ctx, inc.ID, incidents.Actor{By: "ann"})
		require.NoError(t, err)
		_, err = r.svc.AckTimeout(ctx, inc.ID)
		require.ErrorIs(t, err, incidents.ErrNotFound)
		time.Sleep(7 * 24 * time.Hour)
		synctest.Wait()
		require.Equal(t, incidents.StatusAcknowledged, status(t, r.svc, inc.ID))
	})
}

func TestAnAckTimeoutSurvivesARestartAndAnOverdueOneRunsOnceAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "incidents.db")
		r := startService(t, path)
		seedAckTimeout(t, r.svc, 20)
		ctx := context.Background()
		start := time.Now().UTC()
		onTime, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "api down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		overdue, err := r.svc.Declare(ctx, incidents.NewIncident{Title: "db down", Severity: "SEV1", EscalationPolicy: "p"})
		require.NoError(t, err)
		time.Sleep(time.Minute)
		_, err = r.svc.Acknowledge(ctx, onTime.ID, incidents.Actor{By: "ann"}) // due at +21m
		require.NoError(t, err)
		time.Sleep(time.Minute)
		synctest.Wait()
		r.stop(t)

		// Down for five minutes; back before the deadline.
		time.Sleep(5 * time.Minute)
		r = startService(t, path)
		time.Sleep(14*time.Minute - time.Second) // +20m59s
		synctest.Wait()
		require.Equal(t, incidents.StatusAcknowledged, status(t, r.svc, onTime.ID), "not early")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, incidents.StatusTriggered, status(t, r.svc, onTime.ID), "on time after the restart")
		require.Equal(t, []string{"21m0s Acknowledgement timed out after 20 minutes: re-triggered, escalation starts over"},
			timedOut(t, r.svc, onTime.ID, start))

		// The second incident is acknowledged, and its deadline passes
		// while the process is down.
		_, err = r.svc.Acknowledge(ctx, overdue.ID, incidents.Actor{By: "ann"}) // +21m, due at +41m
		require.NoError(t, err)
		synctest.Wait()
		r.stop(t)
		time.Sleep(time.Hour)
		r = startService(t, path)
		defer r.stop(t)
		synctest.Wait()
		require.Equal(t, incidents.StatusTriggered, status(t, r.svc, overdue.ID))
		got := timedOut(t, r.svc, overdue.ID, start)
		require.Equal(t, []string{"1h21m0s Acknowledgement timed out after 20 minutes: re-triggered, escalation starts over"}, got,
			"once, at start")
		ps := pages(t, r.svc, overdue.ID, start)
		require.Equal(t, "1h21m0s ann", ps[len(ps)-1], "paged from the first step at start")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Len(t, timedOut(t, r.svc, overdue.ID, start), 1)
	})
}

func TestAPolicysAckTimeoutIsValidatedAndServed(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	step := []map[string]any{{"targets": []map[string]string{{"type": "user", "id": "ann"}}, "wait_minutes": 5}}
	var body apiError
	require.Equal(t, 400, e.call(t, "PUT", "/api/v1/escalation-policies/p", map[string]any{"steps": step, "ack_timeout_minutes": -1}, &body))
	require.Equal(t, "ack_timeout_minutes", body.Field)
	require.Equal(t, 400, e.call(t, "PUT", "/api/v1/escalation-policies/p", map[string]any{"steps": step, "ack_timeout_minutes": 1441}, &body))
	require.Equal(t, "ack_timeout_minutes", body.Field)
	var p incidents.Policy
	require.Equal(t, 200, e.call(t, "PUT", "/api/v1/escalation-policies/p", map[string]any{"steps": step, "ack_timeout_minutes": 30}, nil))
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/escalation-policies/p", nil, &p))
	require.InDelta(t, 30.0, p.AckTimeoutMinutes, 0)
	require.True(t, strings.HasPrefix(body.Error, "ack_timeout_minutes: "), body.Error)
}
