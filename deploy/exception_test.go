package deploy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/internal/httpserver"
)

// scopedGate serves the gate behind named tokens, as the app wires it.
type scopedGate struct {
	srv   *httptest.Server
	src   *source
	now   time.Time
	told  []string
	store *deploy.Store
}

func newScopedGate(t *testing.T) *scopedGate {
	t.Helper()
	st, err := deploy.OpenStore(context.Background(), filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f := &scopedGate{src: &source{snaps: map[string]deploy.Snapshot{}}, now: t0, store: st}
	bad := healthy("checkout-availability")
	bad.PageFiring = []string{"SLOBurnRateFast"}
	f.src.set("checkout", bad)
	auth := httpserver.NewAuthenticator("", []httpserver.Token{
		{Name: "pipeline", Token: "read-secret", Scopes: []string{httpserver.ScopeRead}},
		{Name: "deployer", Token: "write-secret", Scopes: []string{httpserver.ScopeWrite}},
		{Name: "release-manager", Token: "grant-secret", Scopes: []string{httpserver.ScopeGateGrant, httpserver.ScopeRead}},
	})
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: f.src, Store: st, Auth: auth,
		Now: func() time.Time { return f.now },
		OnException: func(_ context.Context, e deploy.Exception, revoked bool) {
			what := "granted by " + e.Author
			if revoked {
				what = "revoked by " + e.RevokedBy
			}
			f.told = append(f.told, e.ID+" "+what)
		}})
	require.NoError(t, err)
	f.srv = httptest.NewServer(g.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *scopedGate) do(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

const grantV7 = `{"service":"checkout","version":"v7","kind":"security","reason":"CVE-2026-1234 fix","author":"someone else","ttl":"2h"}`

func TestExceptionsAreGrantedOnlyWithTheGrantScope(t *testing.T) {
	f := newScopedGate(t)
	cases := []struct {
		name, token string
		code        int
		says        string
	}{
		{"without a token: 401", "", http.StatusUnauthorized, "missing or invalid bearer token"},
		{"the token that reads the gate: 403", "read-secret", http.StatusForbidden, `token \"pipeline\" lacks the \"gate:grant\" scope`},
		{"a write token: 403", "write-secret", http.StatusForbidden, `token \"deployer\" lacks the \"gate:grant\" scope`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, tc.token, "POST", "/api/v1/gate/exceptions", grantV7)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.says)
		})
	}
	_, body := f.do(t, "read-secret", "GET", "/api/v1/gate?service=checkout&version=v7", "")
	require.Equal(t, deploy.Fail, decode[deploy.Decision](t, body).Decision, "no exception was granted")

	code, body := f.do(t, "grant-secret", "POST", "/api/v1/gate/exceptions", grantV7)
	require.Equal(t, http.StatusCreated, code, body)
	e := decode[deploy.Exception](t, body)
	require.Equal(t, "release-manager", e.Author, "the grantor is the token's name, not the free-text author")
	_, body = f.do(t, "read-secret", "GET", "/api/v1/gate?service=checkout&version=v7", "")
	require.Equal(t, deploy.Pass, decode[deploy.Decision](t, body).Decision)
	require.Equal(t, []string{e.ID + " granted by release-manager"}, f.told)
}

func TestExceptionRequestsAreDecodedStrictly(t *testing.T) {
	f := newScopedGate(t)
	cases := []struct {
		name, body string
		says       string
	}{
		{"a misspelt field is refused, not ignored", `{"service":"checkout","version":"v7","kind":"security","reason":"x","time_to_live":"2h"}`,
			"time_to_live: unknown field"},
		{"a ttl over the maximum is refused", `{"service":"checkout","version":"v7","kind":"security","reason":"x","ttl":"100y"}`,
			"ttl: 100y is longer than the 1d exceptions may last (deploy.exceptions.max_ttl)"},
		{"a ttl just over the maximum is refused", `{"service":"checkout","version":"v7","kind":"security","reason":"x","ttl":"25h"}`,
			"ttl: 1d1h is longer than the 1d"},
		{"two JSON values are refused", `{"service":"checkout"} {}`, "more than one JSON value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, "grant-secret", "POST", "/api/v1/gate/exceptions", tc.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, tc.says)
		})
	}
	_, body := f.do(t, "read-secret", "GET", "/api/v1/gate/exceptions", "")
	require.Contains(t, body, `"data":[]`, "nothing was recorded")
	code, body := f.do(t, "write-secret", "POST", "/api/v1/deploys", `{"service":"checkout","version":"v7","startedAt":"2026-12-01T11:00:00Z"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "startedAt: unknown field")
}

func TestARevokedExceptionEndsAtOnce(t *testing.T) {
	f := newScopedGate(t)
	code, body := f.do(t, "grant-secret", "POST", "/api/v1/gate/exceptions", grantV7)
	require.Equal(t, http.StatusCreated, code, body)
	e := decode[deploy.Exception](t, body)

	code, body = f.do(t, "read-secret", "DELETE", "/api/v1/gate/exceptions/"+e.ID, "")
	require.Equal(t, http.StatusForbidden, code, "revoking needs gate:grant too: %s", body)

	f.now = t0.Add(10 * time.Minute)
	code, body = f.do(t, "grant-secret", "DELETE", "/api/v1/gate/exceptions/"+e.ID, "")
	require.Equal(t, http.StatusOK, code, body)
	r := decode[deploy.Exception](t, body)
	require.Equal(t, "release-manager", r.RevokedBy)
	require.Equal(t, f.now, *r.RevokedAt)

	_, body = f.do(t, "read-secret", "GET", "/api/v1/gate?service=checkout&version=v7", "")
	require.Equal(t, deploy.Fail, decode[deploy.Decision](t, body).Decision, "the next answer no longer passes v7")
	code, _ = f.do(t, "grant-secret", "DELETE", "/api/v1/gate/exceptions/"+e.ID, "")
	require.Equal(t, http.StatusConflict, code, "an ended exception cannot be revoked again")
	code, _ = f.do(t, "grant-secret", "DELETE", "/api/v1/gate/exceptions/999", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, []string{e.ID + " granted by release-manager", e.ID + " revoked by release-manager"}, f.told)

	// A restarted gate reads the revocation from the store.
	es, err := f.store.ActiveExceptions(context.Background(), f.now)
	require.NoError(t, err)
	require.Empty(t, es)
}

func TestAnExceptionNeverOverridesMissingData(t *testing.T) {
	f := newScopedGate(t)
	code, body := f.do(t, "grant-secret", "POST", "/api/v1/gate/exceptions", grantV7)
	require.Equal(t, http.StatusCreated, code, body)
	absent := healthy("checkout-availability")
	absent.Absent = true
	f.src.set("checkout", absent)
	_, body = f.do(t, "read-secret", "GET", "/api/v1/gate?service=checkout&version=v7", "")
	d := decode[deploy.Decision](t, body)
	require.Equal(t, deploy.Fail, d.Decision)
	require.Contains(t, strings.Join(d.Reasons, "\n"), "security exception 1 does not override missing or stale data")

	stale := healthy("checkout-availability")
	stale.EvaluatedAt = t0.Add(-time.Hour)
	f.src.set("checkout", stale)
	_, body = f.do(t, "read-secret", "GET", "/api/v1/gate?service=checkout&version=v7", "")
	require.Equal(t, deploy.Fail, decode[deploy.Decision](t, body).Decision, "nor stale data")
}

// FuzzExceptionRequest posts arbitrary bodies to the grant endpoint: the
// answer is a 201 for a valid grant or a 4xx naming what is wrong, never
// a 5xx or a panic, and an unknown field is never granted.
func FuzzExceptionRequest(f *testing.F) {
	for _, s := range []string{grantV7, `{}`, `{"service":"checkout","version":"v1","kind":"p0","reason":"x","ttl":"-1h"}`,
		`{"service":"checkout","version":"v1","kind":"p0","reason":"x","ttl":"1h","extra":1}`, `[]`, `{"ttl":7}`, "\x00"} {
		f.Add(s)
	}
	st, err := deploy.OpenStore(context.Background(), filepath.Join(f.TempDir(), "deploy.db"))
	require.NoError(f, err)
	f.Cleanup(func() { _ = st.Close() })
	src := &source{snaps: map[string]deploy.Snapshot{}}
	src.set("checkout", healthy("checkout-availability"))
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: src, Store: st, Now: func() time.Time { return t0 }})
	require.NoError(f, err)
	h := g.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/gate/exceptions", strings.NewReader(body)))
		switch w.Code {
		case http.StatusCreated:
			e := decode[deploy.Exception](t, w.Body.String())
			require.LessOrEqual(t, e.ExpiresAt.Sub(e.CreatedAt), 24*time.Hour, "no grant outlives max_ttl")
		case http.StatusBadRequest, http.StatusNotFound:
			require.Contains(t, w.Body.String(), `"status":"error"`)
		default:
			t.Fatalf("%d for %q: %s", w.Code, body, w.Body.String())
		}
	})
}
