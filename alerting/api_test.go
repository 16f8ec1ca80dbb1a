package alerting_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

func do(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAPIRejectsBadInputWithAlertmanagersMessages(t *testing.T) {
	f := newFixture(t, alerting.DefaultConfig())
	srv := f.serve()
	future := t0.Add(time.Hour).Format(time.RFC3339)
	cases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"a body that is not JSON is a 400", "POST", "/api/v2/alerts", `[{"labels":`, 400, "parsing alerts body"},
		{"an object instead of an array is a 400", "POST", "/api/v2/alerts", `{"labels":{"a":"b"}}`, 400, "cannot unmarshal object"},
		{"an alert without labels fails schema validation", "POST", "/api/v2/alerts", `[{"annotations":{}}]`, 422, "labels in body is required"},
		{"an alert with only empty labels has no label pair", "POST", "/api/v2/alerts", `[{"labels":{"a":""}}]`, 400, "at least one label pair required"},
		{"an end before the start is rejected", "POST", "/api/v2/alerts",
			`[{"labels":{"alertname":"x"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T09:00:00Z"}]`, 400, "start time must be before end time"},
		{"an invalid filter matcher is a 400", "GET", "/api/v2/alerts?filter=" + url.QueryEscape(`alertname=~"("`), "", 400, "error parsing regexp"},
		{"a non-boolean flag is a 400", "GET", "/api/v2/alerts?active=maybe", "", 400, "active in query must be of type boolean"},
		{"an invalid silence filter is a 400", "GET", "/api/v2/silences?filter=" + url.QueryEscape(`{{`), "", 400, ""},
		{"an unknown silence ID is a 404 on expire", "DELETE", "/api/v2/silence/0d4fbb2c-7b39-4b6a-9d1e-2a0f1c3b4d5e", "", 404, "silence not found"},
		{"an unknown silence ID is a 404 on get", "GET", "/api/v2/silence/0d4fbb2c-7b39-4b6a-9d1e-2a0f1c3b4d5e", "", 404, "silence not found"},
		{"a silence ID that is not a UUID is a 422", "DELETE", "/api/v2/silence/nope", "", 422, "must be of type uuid"},
		{"updating an unknown silence ID is a 404", "POST", "/api/v2/silences",
			`{"id":"0d4fbb2c-7b39-4b6a-9d1e-2a0f1c3b4d5e","matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"` + future + `","createdBy":"me","comment":"c"}`, 404, "silence not found"},
		{"a silence without matchers fails schema validation", "POST", "/api/v2/silences",
			`{"matchers":[],"startsAt":"2026-03-02T10:00:00Z","endsAt":"` + future + `","createdBy":"me","comment":"c"}`, 422, "matchers in body should have at least 1 items"},
		{"a silence with an invalid regexp is a 400", "POST", "/api/v2/silences",
			`{"matchers":[{"name":"a","value":"(","isRegex":true}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"` + future + `","createdBy":"me","comment":"c"}`, 400, "error parsing regexp"},
		{"a silence matching everything is a 400", "POST", "/api/v2/silences",
			`{"matchers":[{"name":"a","value":".*","isRegex":true}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"` + future + `","createdBy":"me","comment":"c"}`, 400, "must not match the empty string"},
		{"a silence ending in the past is a 400", "POST", "/api/v2/silences",
			`{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-03-02T08:00:00Z","endsAt":"2026-03-02T09:00:00Z","createdBy":"me","comment":"c"}`, 400, "end time can't be in the past"},
		{"a silence without a creator fails schema validation", "POST", "/api/v2/silences",
			`{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"` + future + `","comment":"c"}`, 422, "createdBy in body is required"},
		{"an unknown API path is a 404", "GET", "/api/v2/nothing", "", 404, "was not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, srv.URL+tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.msg)
			require.True(t, json.Valid([]byte(body)), "error body is JSON: %s", body)
		})
	}
	// The process kept running and nothing invalid was stored.
	code, body := do(t, "GET", srv.URL+"/api/v2/alerts", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `[]`, body)
}

func TestAPIKeepsValidAlertsOfAMixedBatch(t *testing.T) {
	f := newFixture(t, alerting.DefaultConfig())
	srv := f.serve()
	code, body := do(t, "POST", srv.URL+"/api/v2/alerts",
		`[{"labels":{"alertname":"Good"}},{"labels":{"alertname":"Bad"},"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T09:00:00Z"}]`)
	require.Equal(t, 400, code)
	require.Contains(t, body, "start time must be before end time")
	code, body = do(t, "GET", srv.URL+"/api/v2/alerts", "")
	require.Equal(t, 200, code)
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got, 1)
	require.Equal(t, "Good", got[0]["labels"].(map[string]any)["alertname"])
	// Missing startsAt is now and missing endsAt is now + resolve_timeout.
	require.Equal(t, "2026-03-02T10:00:00.000Z", got[0]["startsAt"])
	require.Equal(t, "2026-03-02T10:05:00.000Z", got[0]["endsAt"])
	require.Equal(t, []any{map[string]any{"name": "log"}}, got[0]["receivers"])
}
