package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
)

func TestIncidentAndOnCallCommandsWorkARunningBurnrate(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "cli-token"
	r := apptest.StartApp(t, opts)
	svc := r.Incidents()
	ctx := context.Background()
	for _, u := range []string{"ann", "ben"} {
		require.NoError(t, svc.PutUser(ctx, &incidents.User{ID: u, Name: strings.ToUpper(u)}))
	}
	require.NoError(t, svc.PutSchedule(ctx, &incidents.Schedule{ID: "primary", TimeZone: "Europe/Berlin", Layers: []incidents.Layer{{
		Level: 1, Users: []string{"ann", "ben"}, Start: "2026-03-23", Handoff: "09:00", Turn: "weekly"}}}))
	_, err := svc.Declare(ctx, incidents.NewIncident{Title: "checkout errors", Severity: "SEV1", Service: "api"})
	require.NoError(t, err)

	burnrate := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		args = append(args[:1:1], append([]string{"--url", r.URL}, args[1:]...)...)
		code := run(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, stderr := burnrate("incident", "list")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "SEV1")
	require.Contains(t, out, "checkout errors")

	// The list follows the API's pages to the end.
	for _, title := range []string{"cache slow", "db slow"} {
		_, err := svc.Declare(ctx, incidents.NewIncident{Title: title, Severity: "SEV3"})
		require.NoError(t, err)
	}
	incidentPageSize = 2
	code, out, stderr = burnrate("incident", "list", "--json")
	incidentPageSize = 1000
	require.Equal(t, exitOK, code, stderr)
	var listed []incidents.Incident
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 3)
	require.Equal(t, []string{"db slow", "cache slow", "checkout errors"}, []string{listed[0].Title, listed[1].Title, listed[2].Title})
	for _, id := range []int64{2, 3} {
		_, err := svc.Resolve(ctx, id, incidents.Actor{By: "ann"}, "")
		require.NoError(t, err)
	}

	code, _, stderr = burnrate("incident", "ack", "1", "--by", "ann")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, "401 Unauthorized")

	t.Setenv("BURNRATE_API_TOKEN", "cli-token")
	code, out, stderr = burnrate("incident", "ack", "1", "--by", "ann")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "incident 1 is acknowledged\n", out)
	code, _, stderr = burnrate("incident", "ack", "1", "--by", "ben")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, "409 Conflict: incident 1 is already acknowledged by api_token", "with a token the token's name is recorded, not --by")
	code, _, stderr = burnrate("incident", "note", "1", "rolled", "back", "--by", "ann")
	require.Equal(t, exitOK, code, stderr)
	code, _, stderr = burnrate("incident", "resolve", "1", "-m", "rollback done", "--by", "ann")
	require.Equal(t, exitOK, code, stderr)
	code, out, _ = burnrate("incident", "show", "1")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "status resolved")
	require.Contains(t, out, "rolled back")
	require.Contains(t, out, "Resolved by api_token: rollback done")

	dir := t.TempDir()
	file := filepath.Join(dir, "pm.md")
	code, out, stderr = burnrate("incident", "postmortem", "1", "-o", file)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "wrote "+file+"\n", out)
	md, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(md), "# Postmortem: incident #1, checkout errors")
	code, _, stderr = burnrate("incident", "postmortem", "1", "-o", file)
	require.Equal(t, exitUsage, code, "an edited draft is never overwritten")
	require.Contains(t, stderr, "--output")

	// Bad input names what is wrong; unknown IDs are failures, not usage.
	code, _, stderr = burnrate("incident", "ack", "abc")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `ID: "abc" is not an incident ID`)
	code, _, stderr = burnrate("incident", "resolve", "42")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, "404 Not Found: incident 42: not found")
	code, _, stderr = burnrate("incident", "assign", "1", "ben", "--role", "chef")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "role:")

	code, out, stderr = burnrate("oncall", "--at", "2026-03-30T12:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "primary")
	require.Regexp(t, `primary\s+ben\s+ann\s+2026-04-06T07:00:00Z`, out, "09:00 CEST on 6 April is 07:00Z")
	code, out, stderr = burnrate("oncall", "override", "primary", "--user", "ann", "--start", "2026-03-30T10:00:00Z", "--end", "2026-03-30T14:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "ann on call")
	code, out, _ = burnrate("oncall", "-s", "primary", "--at", "2026-03-30T12:00:00Z")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `primary\s+ann\s+ben\s+2026-03-30T14:00:00Z`, out, "the CLI honours the override")
	code, _, stderr = burnrate("oncall", "override", "primary", "--user", "ann", "--start", "2026-03-30T14:00:00Z", "--end", "2026-03-30T10:00:00Z")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "end: 2026-03-30T10:00:00Z is not after start")
	code, _, stderr = burnrate("oncall", "--at", "soon")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "--at")
	code, out, stderr = burnrate("oncall", "final", "primary", "--from", "2026-03-28T00:00:00Z", "--to", "2026-04-07T00:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "2026-03-30 09:00 CEST")
	code, out, stderr = burnrate("incident", "reopen", "1", "-m", "errors are back", "--by", "ben")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "incident 1 is triggered\n", out)
	code, out, stderr = burnrate("oncall", "swap", "primary", "ann", "2026-03-25T12:00:00Z", "ben", "2026-04-01T12:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "ben covers ann from 2026-03-23T08:00:00Z to 2026-03-30T07:00:00Z")
	require.Contains(t, out, "ann covers ben from 2026-03-30T14:00:00Z to 2026-04-06T07:00:00Z",
		"ben's shift holding 1 April begins when ann's earlier override ends")
	code, out, _ = burnrate("oncall", "-s", "primary", "--at", "2026-04-01T12:00:00Z")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `primary\s+ann\s`, out, "the swap shows in who is on call")
	code, _, stderr = burnrate("oncall", "swap", "primary", "ann", "2026-03-25T12:00:00Z", "ben", "2026-04-01T12:00:00Z")
	require.Equal(t, exitUsage, code, "after the swap ann is not on call on 25 March")
	require.Contains(t, stderr, "a_at:")
	code, out, _ = burnrate("oncall", "calendar", "--user", "ann")
	require.Equal(t, exitOK, code)
	require.Equal(t, r.URL+"/api/v1/users/ann/calendar.ics\n", out)
	code, out, _ = burnrate("oncall", "calendar", "primary")
	require.Equal(t, exitOK, code)
	require.Equal(t, r.URL+"/api/v1/schedules/primary/calendar.ics\n", out)

	code, out, stderr = burnrate("oncall", "delete", "primary")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "schedule primary deleted\n", out)
	code, _, stderr = burnrate("oncall", "delete", "primary")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, `404 Not Found: schedule "primary": not found`)
}
