package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/httpserver"
	"github.com/burnrate/burnrate/internal/testutil"
)

type tokenIncident struct {
	Status         string `json:"status"`
	AcknowledgedBy string `json:"acknowledged_by"`
	ResolvedBy     string `json:"resolved_by"`
	Timeline       []struct {
		Kind  string `json:"kind"`
		Actor string `json:"actor"`
	} `json:"timeline"`
}

func getIncident(t *testing.T, base string, id int) tokenIncident {
	t.Helper()
	code, body := testutil.HTTPGet(t, fmt.Sprintf("%s/api/v1/incidents/%d", base, id))
	require.Equal(t, http.StatusOK, code, body)
	var inc tokenIncident
	require.NoError(t, json.Unmarshal([]byte(body), &inc), body)
	return inc
}

// TestChangesAreRecordedUnderTheTokensName checks that with api_tokens the
// actor of a change is the name of the token it was made with, whatever
// the body says, for incidents and for silences; that a read token cannot
// change anything; and that the legacy api_token acts as "api_token".
func TestChangesAreRecordedUnderTheTokensName(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "legacy-t0ken"
	opts.APITokens = []httpserver.Token{
		{Name: "ci-bot", Token: "ci-bot-s3cret", Scopes: []string{httpserver.ScopeWrite}},
		{Name: "dashboard", Token: "dashboard-s3cret", Scopes: []string{httpserver.ScopeRead}},
	}
	r := apptest.StartApp(t, opts)
	inc := r.URL + "/api/v1/incidents"

	code, body := post(t, inc, "ci-bot-s3cret", `{"title":"api down","severity":"SEV2","by":"ann"}`)
	require.Equal(t, http.StatusCreated, code, body)
	got := getIncident(t, r.URL, 1)
	require.Equal(t, "ci-bot", got.Timeline[0].Actor, "declared by the token, not by the body's ann")

	t.Run("a read token cannot acknowledge", func(t *testing.T) {
		code, body := post(t, inc+"/1/ack", "dashboard-s3cret", `{"by":"ann"}`)
		require.Equal(t, http.StatusForbidden, code, body)
		require.Contains(t, body, `token \"dashboard\" lacks the \"write\" scope`)
		code, body = post(t, inc+"/1/ack", "", `{"by":"ann"}`)
		require.Equal(t, http.StatusUnauthorized, code, body)
		require.Equal(t, "triggered", getIncident(t, r.URL, 1).Status, "nothing changed")
	})

	t.Run("a write token acknowledges under its own name", func(t *testing.T) {
		code, body := post(t, inc+"/1/ack", "ci-bot-s3cret", `{"by":"ann"}`)
		require.Equal(t, http.StatusOK, code, body)
		got := getIncident(t, r.URL, 1)
		require.Equal(t, "acknowledged", got.Status)
		require.Equal(t, "ci-bot", got.AcknowledgedBy)
		last := got.Timeline[len(got.Timeline)-1]
		require.Equal(t, "acknowledged", last.Kind)
		require.Equal(t, "ci-bot", last.Actor)
	})

	t.Run("the legacy api_token acts as api_token", func(t *testing.T) {
		code, body := post(t, inc+"/1/note", "legacy-t0ken", `{"by":"ann","text":"rolled back"}`)
		require.Equal(t, http.StatusOK, code, body)
		code, body = post(t, inc+"/1/resolve", "legacy-t0ken", `{"by":"ann"}`)
		require.Equal(t, http.StatusOK, code, body)
		got := getIncident(t, r.URL, 1)
		require.Equal(t, "resolved", got.Status)
		require.Equal(t, httpserver.LegacyTokenName, got.ResolvedBy)
		var kinds, actors []string
		for _, e := range got.Timeline {
			kinds, actors = append(kinds, e.Kind), append(actors, e.Actor)
		}
		require.Equal(t, []string{"triggered", "acknowledged", "note", "resolved"}, kinds)
		require.Equal(t, []string{"ci-bot", "ci-bot", "api_token", "api_token"}, actors)
	})

	t.Run("a silence is created by the token, not by createdBy", func(t *testing.T) {
		now := time.Now().UTC()
		sil := fmt.Sprintf(`{"matchers":[{"name":"alertname","value":"APIDown","isRegex":false,"isEqual":true}],
			"startsAt":%q,"endsAt":%q,"createdBy":"ann","comment":"maintenance"}`,
			now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
		code, body := post(t, r.URL+"/api/v2/silences", "dashboard-s3cret", sil)
		require.Equal(t, http.StatusForbidden, code, body)
		code, body = post(t, r.URL+"/api/v2/silences", "ci-bot-s3cret", sil)
		require.Equal(t, http.StatusOK, code, body)
		var created struct {
			SilenceID string `json:"silenceID"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &created))
		code, body = testutil.HTTPGet(t, r.URL+"/api/v2/silence/"+created.SilenceID)
		require.Equal(t, http.StatusOK, code, body)
		var got struct {
			CreatedBy string `json:"createdBy"`
			Comment   string `json:"comment"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.Equal(t, "ci-bot", got.CreatedBy)
		require.Equal(t, "maintenance", got.Comment, "the comment is kept")
	})

	t.Run("overrides and swaps are added by the token", func(t *testing.T) {
		for _, u := range []string{`{"id":"ann","name":"Ann"}`, `{"id":"ben","name":"Ben"}`} {
			code, body := post(t, r.URL+"/api/v1/users", "ci-bot-s3cret", u)
			require.Equal(t, http.StatusOK, code, body)
		}
		req, err := http.NewRequest(http.MethodPut, r.URL+"/api/v1/schedules/primary", strings.NewReader(
			`{"time_zone":"UTC","layers":[{"level":1,"users":["ann","ben"],"start":"2026-03-02","handoff":"09:00","turn":"daily"}]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer ci-bot-s3cret")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		over := `{"user":"ben","start":"2026-03-02T12:00:00Z","end":"2026-03-02T14:00:00Z","by":"ann"}`
		code, body := post(t, r.URL+"/api/v1/schedules/primary/overrides", "dashboard-s3cret", over)
		require.Equal(t, http.StatusForbidden, code, body)
		code, body = post(t, r.URL+"/api/v1/schedules/primary/overrides", "ci-bot-s3cret",
			`{"user":"ben","start":"2026-03-02T12:00:00Z","end":"2026-03-02T14:00:00Z","created_by":"ann"}`)
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, `"field":"created_by"`)
		code, body = post(t, r.URL+"/api/v1/schedules/primary/overrides", "ci-bot-s3cret", over)
		require.Equal(t, http.StatusCreated, code, body)
		require.Contains(t, body, `"created_by":"ci-bot"`)
		code, body = post(t, r.URL+"/api/v1/schedules/primary/swaps", "legacy-t0ken",
			`{"a":"ann","a_at":"2026-03-02T10:00:00Z","b":"ben","b_at":"2026-03-03T10:00:00Z","by":"ann"}`)
		require.Equal(t, http.StatusCreated, code, body)

		code, body = testutil.HTTPGet(t, r.URL+"/api/v1/schedules/primary")
		require.Equal(t, http.StatusOK, code, body)
		var sc struct {
			Overrides []struct {
				User      string `json:"user"`
				CreatedBy string `json:"created_by"`
			} `json:"overrides"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &sc), body)
		require.Len(t, sc.Overrides, 3)
		var by []string
		for _, o := range sc.Overrides {
			by = append(by, o.User+" by "+o.CreatedBy)
		}
		require.Equal(t, []string{"ben by ci-bot", "ben by api_token", "ann by api_token"}, by)
	})
}
