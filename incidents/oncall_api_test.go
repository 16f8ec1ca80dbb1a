package incidents_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

func (e *env) seedPeople(t *testing.T) {
	t.Helper()
	for _, u := range []incidents.User{
		{ID: "ann", Name: "Ann", Email: "ann@example.com", SlackID: "UANN"},
		{ID: "ben", Name: "Ben", Email: "ben@example.com"},
		{ID: "cat", Name: "Cat", Email: "cat@example.com"},
		{ID: "dan", Name: "Dan", Email: "dan@example.com"},
	} {
		require.Equal(t, 200, e.call(t, "POST", "/api/v1/users", u, nil))
	}
	require.Equal(t, 200, e.call(t, "PUT", "/api/v1/schedules/primary", map[string]any{
		"time_zone": "America/New_York",
		"layers": []map[string]any{{
			"level": 1, "name": "primary", "users": []string{"ann", "ben", "cat"},
			"start": "2026-03-02", "handoff": "09:00", "turn": "daily",
		}},
	}, nil))
}

type onCallJSON struct {
	OnCall []struct {
		Schedule string            `json:"schedule"`
		Users    []incidents.User  `json:"users"`
		Next     []incidents.Shift `json:"next"`
	} `json:"oncall"`
}

func (e *env) onCall(t *testing.T, at string) (string, string) {
	t.Helper()
	var oc onCallJSON
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules/primary/oncall?at="+at, nil, &oc))
	require.Len(t, oc.OnCall, 1)
	var who []string
	for _, u := range oc.OnCall[0].Users {
		who = append(who, u.ID)
	}
	next := ""
	if len(oc.OnCall[0].Next) > 0 {
		next = oc.OnCall[0].Next[0].User + "@" + oc.OnCall[0].Next[0].Start.Format(time.RFC3339)
	}
	return strings.Join(who, ","), next
}

func TestOverridesAndSwapsShowInWhoIsOnCallNextAndTheFinalSchedule(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	who, next := e.onCall(t, "2026-03-03T15:00:00Z")
	require.Equal(t, "ben", who)
	require.Equal(t, "cat@2026-03-04T14:00:00Z", next)

	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/primary/overrides", map[string]any{
		"user": "dan", "start": "2026-03-03T17:00:00Z", "end": "2026-03-03T20:00:00Z",
	}, nil))
	who, next = e.onCall(t, "2026-03-03T15:00:00Z")
	require.Equal(t, "ben", who)
	require.Equal(t, "dan@2026-03-03T17:00:00Z", next, "next on call honours the override")
	who, _ = e.onCall(t, "2026-03-03T18:00:00Z")
	require.Equal(t, "dan", who)

	// ann and ben swap: ann's 5 March for ben's 6 March.
	var sw struct {
		Overrides []incidents.Override `json:"overrides"`
	}
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/primary/swaps", map[string]any{
		"a": "ann", "a_at": "2026-03-05T20:00:00Z", "b": "ben", "b_at": "2026-03-06T20:00:00Z",
	}, &sw))
	require.Len(t, sw.Overrides, 2)
	who, _ = e.onCall(t, "2026-03-05T20:00:00Z")
	require.Equal(t, "ben", who)
	who, _ = e.onCall(t, "2026-03-06T20:00:00Z")
	require.Equal(t, "ann", who)

	var final struct {
		Shifts []incidents.Shift `json:"shifts"`
	}
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules/primary/final?from=2026-03-05T14:00:00Z&to=2026-03-07T14:00:00Z", nil, &final))
	require.Equal(t, []incidents.Shift{
		{User: "ben", Start: utc("2026-03-05T14:00:00Z"), End: utc("2026-03-06T14:00:00Z"), Layer: "override"},
		{User: "ann", Start: utc("2026-03-06T14:00:00Z"), End: utc("2026-03-07T14:00:00Z"), Layer: "override"},
	}, final.Shifts)
}

func TestBadScheduleAndOverrideInputIsRefusedByFieldAndChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	snapshot := func() string {
		resp, err := http.Get(e.srv.URL + "/api/v1/schedules/primary/final?from=2026-03-02T00:00:00Z&to=2026-03-09T00:00:00Z")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	good := func() map[string]any {
		return map[string]any{"time_zone": "America/New_York", "layers": []map[string]any{{
			"level": 1, "users": []string{"ann"}, "start": "2026-03-02", "turn": "daily"}}}
	}
	with := func(f func(m map[string]any)) map[string]any { m := good(); f(m); return m }
	layer0 := func(m map[string]any) map[string]any { return m["layers"].([]map[string]any)[0] }
	cases := []struct {
		name, method, path string
		body               any
		code               int
		field              string
	}{
		{"a bad time zone", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) { m["time_zone"] = "America/Gotham" }), 400, "time_zone"},
		{"empty layers", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) { m["layers"] = []any{} }), 400, "layers"},
		{"a layer without users", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) { layer0(m)["users"] = []string{} }), 400, "layers[0].users"},
		{"a layer naming an unknown user", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) { layer0(m)["users"] = []string{"ann", "zed"} }), 400, "layers[0].users[1]"},
		{"two layers at one level", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) {
			m["layers"] = append(m["layers"].([]map[string]any), layer0(good()))
		}), 400, "layers[1].level"},
		{"an id differing from the URL", "PUT", "/api/v1/schedules/primary", with(func(m map[string]any) { m["id"] = "other" }), 400, "id"},
		{"an override ending before it starts", "POST", "/api/v1/schedules/primary/overrides",
			map[string]any{"user": "dan", "start": "2026-03-03T20:00:00Z", "end": "2026-03-03T17:00:00Z"}, 400, "end"},
		{"an override for an unknown user", "POST", "/api/v1/schedules/primary/overrides",
			map[string]any{"user": "zed", "start": "2026-03-03T17:00:00Z", "end": "2026-03-03T20:00:00Z"}, 400, "user"},
		{"an override with a time that is not RFC 3339", "POST", "/api/v1/schedules/primary/overrides",
			map[string]any{"user": "dan", "start": "tomorrow", "end": "2026-03-03T20:00:00Z"}, 400, "body"},
		{"an override on an unknown schedule", "POST", "/api/v1/schedules/nope/overrides",
			map[string]any{"user": "dan", "start": "2026-03-03T17:00:00Z", "end": "2026-03-03T20:00:00Z"}, 404, ""},
		{"a swap where one side is not on call", "POST", "/api/v1/schedules/primary/swaps",
			map[string]any{"a": "ann", "a_at": "2026-03-03T20:00:00Z", "b": "ben", "b_at": "2026-03-06T20:00:00Z"}, 400, "a_at"},
		{"a final range ending before it starts", "GET", "/api/v1/schedules/primary/final?from=2026-03-05T00:00:00Z&to=2026-03-04T00:00:00Z", nil, 400, "to"},
		{"an at that is not a time", "GET", "/api/v1/schedules/primary/oncall?at=noon", nil, 400, "at"},
		{"an unknown schedule", "GET", "/api/v1/schedules/nope/oncall", nil, 404, ""},
		{"a user with a bad email", "POST", "/api/v1/users", map[string]any{"id": "eve", "name": "Eve", "email": "eve at example"}, 400, "email"},
		{"a user without a name", "POST", "/api/v1/users", map[string]any{"id": "eve"}, 400, "name"},
		{"a policy naming an unknown schedule", "POST", "/api/v1/escalation-policies", map[string]any{"id": "p", "steps": []map[string]any{{
			"targets": []map[string]string{{"type": "schedule", "id": "nope"}}, "wait_minutes": 5}}}, 400, "steps[0].targets[0].id"},
		{"a policy with no wait", "POST", "/api/v1/escalation-policies", map[string]any{"id": "p", "steps": []map[string]any{{
			"targets": []map[string]string{{"type": "user", "id": "ann"}}}}}, 400, "steps[0].wait_minutes"},
		{"a policy target of an unknown type", "POST", "/api/v1/escalation-policies", map[string]any{"id": "p", "steps": []map[string]any{{
			"targets": []map[string]string{{"type": "pigeon", "id": "ann"}}, "wait_minutes": 5}}}, 400, "steps[0].targets[0].type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot()
			var users, policies map[string]any
			e.call(t, "GET", "/api/v1/users", nil, &users)
			e.call(t, "GET", "/api/v1/escalation-policies", nil, &policies)
			var body apiError
			require.Equal(t, tc.code, e.call(t, tc.method, tc.path, tc.body, &body))
			require.Equal(t, tc.field, body.Field, body.Error)
			require.Equal(t, before, snapshot(), "the schedule is unchanged")
			var users2, policies2 map[string]any
			e.call(t, "GET", "/api/v1/users", nil, &users2)
			e.call(t, "GET", "/api/v1/escalation-policies", nil, &policies2)
			require.Equal(t, users, users2)
			require.Equal(t, policies, policies2)
		})
	}
}

// parseICal reads back VEVENTs (unfolding lines as RFC 5545 says).
func parseICal(t *testing.T, body string) []map[string]string {
	t.Helper()
	require.True(t, strings.HasPrefix(body, "BEGIN:VCALENDAR\r\n"))
	require.True(t, strings.HasSuffix(body, "END:VCALENDAR\r\n"))
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
		require.LessOrEqual(t, len(l), 75, "lines are folded at 75 octets")
		if strings.HasPrefix(l, " ") {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	var out []map[string]string
	var cur map[string]string
	for _, l := range lines {
		switch l {
		case "BEGIN:VEVENT":
			cur = map[string]string{}
		case "END:VEVENT":
			out = append(out, cur)
			cur = nil
		default:
			if cur != nil {
				k, v, ok := strings.Cut(l, ":")
				require.True(t, ok, l)
				cur[k] = v
			}
		}
	}
	return out
}

func TestICalFeedsParseBackToTheFinalScheduleAcrossDST(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	e.clock.t = utc("2026-03-08T12:00:00Z") // the day New York springs forward
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/primary/overrides", map[string]any{
		"user": "dan", "replaces": "ben", "start": "2026-03-09T15:00:00Z", "end": "2026-03-09T16:00:00Z"}, nil))

	get := func(path string) string {
		resp, err := http.Get(e.srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "text/calendar; charset=utf-8", resp.Header.Get("Content-Type"))
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	sc, err := e.svc.Schedule(t.Context(), "primary")
	require.NoError(t, err)
	now := e.clock.Now()
	want := sc.Final(now.Add(-7*24*time.Hour), now.Add(60*24*time.Hour))

	events := parseICal(t, get("/api/v1/schedules/primary/calendar.ics"))
	require.Len(t, events, len(want))
	for i, ev := range events {
		start, err := time.Parse("20060102T150405Z", ev["DTSTART"])
		require.NoError(t, err)
		end, err := time.Parse("20060102T150405Z", ev["DTEND"])
		require.NoError(t, err)
		require.Equal(t, want[i].Start, start)
		require.Equal(t, want[i].End, end)
		require.Contains(t, ev["SUMMARY"], want[i].User)
		require.NotEmpty(t, ev["UID"])
	}
	// The shift over the change is 23 hours, 09:00 EST to 09:00 EDT.
	var found bool
	for _, ev := range events {
		if ev["DTSTART"] == "20260307T140000Z" {
			require.Equal(t, "20260308T130000Z", ev["DTEND"])
			found = true
		}
	}
	require.True(t, found)

	// Ben's own feed has his shifts only, with the override cut out.
	ben := parseICal(t, get("/api/v1/users/ben/calendar.ics"))
	require.NotEmpty(t, ben)
	for _, ev := range ben {
		require.Contains(t, ev["SUMMARY"], "ben")
	}
	var benStarts []string
	for _, ev := range ben {
		benStarts = append(benStarts, ev["DTSTART"]+"-"+ev["DTEND"])
	}
	require.Contains(t, benStarts, "20260309T130000Z-20260309T150000Z")
	require.Contains(t, benStarts, "20260309T160000Z-20260310T130000Z")
	dan := parseICal(t, get("/api/v1/users/dan/calendar.ics"))
	require.Len(t, dan, 1)
	require.Equal(t, "20260309T150000Z", dan[0]["DTSTART"])
}
