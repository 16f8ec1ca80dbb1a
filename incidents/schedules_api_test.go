package incidents_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

func scheduleDoc(id string, users ...string) map[string]any {
	return map[string]any{"id": id, "time_zone": "Europe/Berlin", "layers": []map[string]any{{
		"level": 1, "name": "week", "users": users, "start": "2026-03-02", "handoff": "09:00", "turn": "weekly"}}}
}

// POST /api/v1/schedules used to store the schedule and answer 404 (it
// looked the ID up in the URL, which has none).
func TestPostingAScheduleAnswers201WithTheScheduleAsStored(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	var created, got json.RawMessage
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules", scheduleDoc("secondary", "cat", "dan"), &created))
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules/secondary", nil, &got))
	require.JSONEq(t, string(got), string(created))
	var sc incidents.Schedule
	require.NoError(t, json.Unmarshal(created, &sc))
	require.Equal(t, "secondary", sc.ID)
	require.Equal(t, []string{"cat", "dan"}, sc.Layers[0].Users)

	// PUT replaces and answers 200 with the stored schedule, overrides
	// included.
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/secondary/overrides", map[string]any{
		"user": "ann", "start": "2026-03-03T17:00:00Z", "end": "2026-03-03T20:00:00Z"}, nil))
	var replaced incidents.Schedule
	require.Equal(t, 200, e.call(t, "PUT", "/api/v1/schedules/secondary", scheduleDoc("secondary", "dan"), &replaced))
	require.Equal(t, []string{"dan"}, replaced.Layers[0].Users)
	require.Len(t, replaced.Overrides, 1)
}

func TestDeletingAScheduleIsRefusedWhileAPolicyPagesIt(t *testing.T) {
	e := newEnv(t, nil)
	e.seedPeople(t)
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules", scheduleDoc("secondary", "cat"), nil))
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/secondary/overrides", map[string]any{
		"user": "ann", "start": "2026-03-03T17:00:00Z", "end": "2026-03-03T20:00:00Z"}, nil))
	for _, id := range []string{"api", "db"} {
		require.Equal(t, 200, e.call(t, "PUT", "/api/v1/escalation-policies/"+id, map[string]any{"steps": []map[string]any{
			{"targets": []map[string]string{{"type": "user", "id": "ann"}}, "wait_minutes": 5},
			{"targets": []map[string]string{{"type": "schedule", "id": "secondary"}}, "wait_minutes": 5},
		}}, nil))
	}

	var body apiError
	require.Equal(t, 409, e.call(t, "DELETE", "/api/v1/schedules/secondary", nil, &body))
	require.Equal(t, "conflict", body.ErrorType)
	require.Contains(t, body.Error, `schedule "secondary" is used by escalation policy "api", "db"`)
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules/secondary", nil, nil), "still there")

	require.Equal(t, 204, e.call(t, "DELETE", "/api/v1/escalation-policies/api", nil, nil))
	require.Equal(t, 204, e.call(t, "DELETE", "/api/v1/escalation-policies/db", nil, nil))
	require.Equal(t, 204, e.call(t, "DELETE", "/api/v1/schedules/secondary", nil, nil))
	require.Equal(t, 404, e.call(t, "GET", "/api/v1/schedules/secondary", nil, nil))
	require.Equal(t, 404, e.call(t, "DELETE", "/api/v1/schedules/secondary", nil, &body))
	require.Equal(t, "not_found", body.ErrorType)

	// Created again under the same ID, it starts without the old overrides.
	var sc incidents.Schedule
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules", scheduleDoc("secondary", "cat"), &sc))
	require.Empty(t, sc.Overrides)
}

func TestSchedulesPastTheLimitsAreRefusedNamingTheLimitAndTheField(t *testing.T) {
	e := newEnv(t, func(o *incidents.Options) {
		o.Config.Limits = incidents.Limits{MaxLayers: 2, MaxUsersPerLayer: 3, MaxRestrictionsPerLayer: 1, MaxOverrides: 3}
	})
	e.seedPeople(t) // primary: one layer of ann, ben, cat
	layer := func(level int, users ...string) map[string]any {
		return map[string]any{"level": level, "users": users, "start": "2026-03-02", "turn": "daily"}
	}
	window := map[string]any{"start": "09:00", "end": "17:00"}
	restricted := layer(1, "ann")
	restricted["restrictions"] = []any{window, window}
	cases := []struct {
		name, method, path string
		body               any
		field, limit       string
	}{
		{"three layers", "POST", "/api/v1/schedules",
			map[string]any{"id": "big", "time_zone": "UTC", "layers": []any{layer(1, "ann"), layer(2, "ben"), layer(3, "cat")}},
			"layers", "incidents.limits.max_layers (2)"},
		{"four users in a layer", "PUT", "/api/v1/schedules/primary",
			map[string]any{"time_zone": "UTC", "layers": []any{layer(1, "ann"), layer(2, "ann", "ben", "cat", "dan")}},
			"layers[1].users", "incidents.limits.max_users_per_layer (3)"},
		{"two restrictions in a layer", "PUT", "/api/v1/schedules/primary",
			map[string]any{"time_zone": "UTC", "layers": []any{restricted}},
			"layers[0].restrictions", "incidents.limits.max_restrictions_per_layer (1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after json.RawMessage
			require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules", nil, &before))
			var body apiError
			require.Equal(t, 400, e.call(t, tc.method, tc.path, tc.body, &body))
			require.Equal(t, tc.field, body.Field)
			require.Contains(t, body.Error, tc.limit)
			require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules", nil, &after))
			require.JSONEq(t, string(before), string(after), "nothing stored")
		})
	}

	// At the limits everything is accepted.
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules",
		map[string]any{"id": "full", "time_zone": "UTC", "layers": []any{layer(1, "ann", "ben", "cat"), layer(2, "dan")}}, nil))

	// Overrides: two fit, then a swap (two more) does not, nor does a
	// fourth after the third.
	for i := range 2 {
		require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/primary/overrides", map[string]any{
			"user": "dan", "start": fmt.Sprintf("2026-03-1%dT17:00:00Z", i), "end": fmt.Sprintf("2026-03-1%dT20:00:00Z", i)}, nil))
	}
	var body apiError
	require.Equal(t, 400, e.call(t, "POST", "/api/v1/schedules/primary/swaps", map[string]any{
		"a": "ann", "a_at": "2026-03-02T20:00:00Z", "b": "ben", "b_at": "2026-03-03T20:00:00Z"}, &body))
	require.Equal(t, "overrides", body.Field)
	require.Contains(t, body.Error, "incidents.limits.max_overrides (3)")
	require.Equal(t, 201, e.call(t, "POST", "/api/v1/schedules/primary/overrides", map[string]any{
		"user": "dan", "start": "2026-03-20T17:00:00Z", "end": "2026-03-20T20:00:00Z"}, nil))
	require.Equal(t, 400, e.call(t, "POST", "/api/v1/schedules/primary/overrides", map[string]any{
		"user": "dan", "start": "2026-03-21T17:00:00Z", "end": "2026-03-21T20:00:00Z"}, &body))
	require.Equal(t, "overrides", body.Field)
	require.Contains(t, body.Error, `schedule "primary" holds 3 overrides`)
	var sc incidents.Schedule
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/schedules/primary", nil, &sc))
	require.Len(t, sc.Overrides, 3)
}

func TestNegativeLimitsAreAConfigurationError(t *testing.T) {
	err := incidents.Config{Limits: incidents.Limits{MaxOverrides: -1}}.Validate()
	require.EqualError(t, err, "incidents.limits.max_overrides: -1 is negative (0 takes the default)")
	require.NoError(t, incidents.Config{}.Validate())
	require.Equal(t, incidents.Limits{MaxLayers: 50, MaxUsersPerLayer: 100, MaxRestrictionsPerLayer: 14, MaxOverrides: 1000},
		incidents.Config{}.WithDefaults().Limits)
}
