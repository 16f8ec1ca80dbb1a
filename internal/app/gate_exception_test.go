package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/httpserver"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestGateExceptionsAreGovernedByScopeAndReachTimelines runs the app with
// named tokens: the pipeline's read token cannot grant, a gate:grant
// token can, its name is the grantor, the grant and its revocation reach
// the open incident's timeline, and a deploy mark is recorded under the
// marking token's name.
func TestGateExceptionsAreGovernedByScopeAndReachTimelines(t *testing.T) {
	opts := shopOptions(t)
	opts.SLO.Interval = time.Second
	opts.APITokens = []httpserver.Token{
		{Name: "pipeline", Token: "read-secret", Scopes: []string{httpserver.ScopeRead}},
		{Name: "oncall", Token: "write-secret", Scopes: []string{httpserver.ScopeWrite}},
		{Name: "release-manager", Token: "grant-secret", Scopes: []string{httpserver.ScopeGateGrant}},
	}
	r := apptest.StartApp(t, opts)

	code, body := post(t, r.URL+"/api/v1/incidents", "write-secret", `{"title":"Orders fail","severity":"SEV2","service":"shop","by":"test"}`)
	require.Equal(t, http.StatusCreated, code, body)

	grant := `{"service":"shop","version":"v9","kind":"p0","reason":"stop the bleeding","author":"mallory","ttl":"1h"}`
	code, body = post(t, r.URL+"/api/v1/gate/exceptions", "read-secret", grant)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = post(t, r.URL+"/api/v1/gate/exceptions", "grant-secret", grant)
	require.Equal(t, http.StatusCreated, code, body)
	var e struct{ ID, Author string }
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.Equal(t, "release-manager", e.Author)

	req, err := http.NewRequest(http.MethodDelete, r.URL+"/api/v1/gate/exceptions/"+e.ID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer grant-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))

	code, body = post(t, r.URL+"/api/v1/deploys", "write-secret", `{"service":"shop","version":"v9","author":"mallory"}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = post(t, r.URL+"/api/v1/deploys", "write-secret", `{"service":"nope","version":"v9"}`)
	require.Equal(t, http.StatusNotFound, code, body)

	_, body = testutil.HTTPGet(t, r.URL+"/api/v1/incidents/1")
	require.Contains(t, body, "deploy gate: p0 exception "+e.ID+" granted by release-manager for shop v9")
	require.Contains(t, body, "deploy gate: p0 exception "+e.ID+" for shop v9 revoked by release-manager")
	require.Contains(t, body, "deploy v9 of shop recorded by oncall")
	require.NotContains(t, body, "mallory")
}
