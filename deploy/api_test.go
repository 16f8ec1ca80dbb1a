package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

// source is a fixed set of snapshots.
type source struct {
	mu    sync.Mutex
	snaps map[string]deploy.Snapshot
}

func (s *source) Snapshot(service string) (deploy.Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.snaps[service]
	return v, ok
}

func (s *source) Services() []string { return []string{"checkout", "search"} }

func (s *source) set(service string, slos ...deploy.SLOState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps[service] = deploy.Snapshot{Service: service, SLOs: slos}
}

type gateFixture struct {
	tsdb  *teststorage.TestStorage
	src   *source
	store *deploy.Store
	srv   *httptest.Server
	now   time.Time
	token string
}

func newGate(t *testing.T, token string, policies ...deploy.Policy) *gateFixture {
	t.Helper()
	st, err := deploy.OpenStore(context.Background(), filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f := &gateFixture{src: &source{snaps: map[string]deploy.Snapshot{}}, store: st, now: t0, token: token, tsdb: teststorage.New(t)}
	f.src.set("checkout", healthy("checkout-availability"))
	f.src.set("search", healthy("search-latency"))
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(policies...), Source: f.src, Store: st,
		Token: token, Appendable: f.tsdb, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return f.now }})
	require.NoError(t, err)
	f.srv = httptest.NewServer(g.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *gateFixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}

func TestGateAlwaysAnswers200WithTheDecision(t *testing.T) {
	f := newGate(t, "")
	code, body := f.do(t, http.MethodGet, "/api/v1/gate?service=checkout&version=v1", "")
	require.Equal(t, http.StatusOK, code)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &d))
	require.Equal(t, "pass", d["decision"])
	require.Equal(t, "v1", d["version"])
	for _, k := range []string{"reasons", "budget_remaining", "burn_rates", "coverage", "policy", "evaluated_at", "data_age_seconds"} {
		require.Contains(t, d, k)
	}

	bad := healthy("checkout-availability")
	bad.BudgetRemaining = -0.5
	f.src.set("checkout", bad)
	code, body = f.do(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
	require.Equal(t, http.StatusOK, code, "a failing decision is still a 200: Argo takes non-2xx as an error")
	got := decode[deploy.Decision](t, body)
	require.Equal(t, deploy.Fail, got.Decision)
	require.Equal(t, []string{"error budget remaining -50.00% is below the policy minimum of 0.00%"}, got.Reasons)
}

func TestGateRefusesBadRequestsPrecisely(t *testing.T) {
	f := newGate(t, "")
	cases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"an unknown service is named with the known ones", "GET", "/api/v1/gate?service=nope", "", 404, `unknown service \"nope\": services with SLOs are checkout, search`},
		{"a missing service is asked for", "GET", "/api/v1/gate", "", 400, "service: required"},
		{"an unknown mode is refused", "GET", "/api/v1/gate?service=checkout&mode=maybe", "", 400, `mode: \"maybe\" is not one of decision, status, rollback`},
		{"a bad strict flag is refused", "GET", "/api/v1/gate?service=checkout&strict=yes", "", 400, `strict: \"yes\" is not true or false`},
		{"a malformed body is refused", "POST", "/api/v1/gate?service=checkout", "{", 400, "the body is not valid JSON"},
		{"an exception without a reason is refused", "POST", "/api/v1/gate/exceptions", `{"service":"checkout","version":"v1","kind":"security","author":"ana"}`, 400, "reason: required"},
		{"an exception without a version is refused", "POST", "/api/v1/gate/exceptions", `{"service":"checkout","kind":"security","reason":"CVE","author":"ana"}`, 400, "version: required"},
		{"an exception of a kind the policy does not allow is refused", "POST", "/api/v1/gate/exceptions", `{"service":"checkout","version":"v1","kind":"friday","reason":"x","author":"ana"}`, 400, `kind: \"friday\" is not an exception the policy of checkout allows (allowed: p0, security)`},
		{"an exception for an unknown service is refused", "POST", "/api/v1/gate/exceptions", `{"service":"nope","version":"v1","kind":"p0","reason":"x","author":"ana"}`, 404, `unknown service \"nope\"`},
		{"a deploy without a version is refused", "POST", "/api/v1/deploys", `{"service":"checkout"}`, 400, "version: required"},
		{"a deploy that finishes before it starts is refused", "POST", "/api/v1/deploys", `{"service":"checkout","version":"v2","started_at":"2026-12-01T11:00:00Z","finished_at":"2026-12-01T10:00:00Z"}`, 400, "finished_at: 2026-12-01T10:00:00Z is before started_at"},
		{"an unknown deploy is not found", "GET", "/api/v1/deploys/99", "", 404, `deploy \"99\": not found`},
		{"a non-numeric deploy is not found", "GET", "/api/v1/deploys/abc/verify", "", 404, `deploy \"abc\": not found`},
		{"a bad since is refused", "GET", "/api/v1/deploys?since=yesterday", "", 400, `since: \"yesterday\" is not an RFC 3339 time`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.msg)
			require.Contains(t, body, `"status":"error"`)
		})
	}
	// Nothing was recorded by the refused requests.
	_, body := f.do(t, "GET", "/api/v1/gate/exceptions", "")
	require.Contains(t, body, `"data":[]`)
	_, body = f.do(t, "GET", "/api/v1/deploys", "")
	require.Contains(t, body, `"data":[]`)
}

func TestGateNeedsTheTokenWhenOneIsConfigured(t *testing.T) {
	f := newGate(t, "s3cret")
	for _, path := range []string{"/api/v1/gate?service=checkout", "/api/v1/gate/exceptions", "/api/v1/deploys"} {
		resp, err := http.Get(f.srv.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/gate?service=checkout", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	code, _ := f.do(t, http.MethodGet, "/api/v1/gate?service=checkout", "")
	require.Equal(t, http.StatusOK, code)
}

func TestExceptionsPassTheirVersionAndAreRecorded(t *testing.T) {
	f := newGate(t, "")
	bad := healthy("checkout-availability")
	bad.PageFiring = []string{"SLOBurnRateFast"}
	f.src.set("checkout", bad)

	code, body := f.do(t, "POST", "/api/v1/gate/exceptions", `{"service":"checkout","version":"v7","kind":"Security","reason":"CVE-2026-1234 fix","author":"ana","ttl":"2h"}`)
	require.Equal(t, http.StatusCreated, code, body)
	e := decode[deploy.Exception](t, body)
	require.Equal(t, "security", e.Kind)
	require.Equal(t, t0, e.CreatedAt)
	require.Equal(t, t0.Add(2*time.Hour), e.ExpiresAt)

	_, body = f.do(t, "GET", "/api/v1/gate?service=checkout&version=v7", "")
	d := decode[deploy.Decision](t, body)
	require.Equal(t, deploy.Pass, d.Decision)
	require.Equal(t, deploy.Fail, d.Would)
	require.Equal(t, e.ID, d.Exception.ID)
	require.Contains(t, d.Reasons[len(d.Reasons)-1], "passed by security exception "+e.ID+" recorded by ana: CVE-2026-1234 fix")

	_, body = f.do(t, "GET", "/api/v1/gate?service=checkout&version=v8", "")
	require.Equal(t, deploy.Fail, decode[deploy.Decision](t, body).Decision, "an exception lets one version through, not the next")

	f.now = t0.Add(3 * time.Hour)
	bad.EvaluatedAt = f.now
	f.src.set("checkout", bad)
	_, body = f.do(t, "GET", "/api/v1/gate?service=checkout&version=v7", "")
	require.Equal(t, deploy.Fail, decode[deploy.Decision](t, body).Decision, "an expired exception no longer applies")

	_, body = f.do(t, "GET", "/api/v1/gate/exceptions?service=checkout", "")
	list := decode[struct{ Data []deploy.Exception }](t, body).Data
	require.Len(t, list, 1)
	require.Equal(t, "ana", list[0].Author)
	require.Equal(t, "v7", list[0].Version)
	require.Equal(t, "CVE-2026-1234 fix", list[0].Reason)
}

func TestDeploysAreRecorded(t *testing.T) {
	f := newGate(t, "")
	code, body := f.do(t, "POST", "/api/v1/deploys", `{"service":"checkout","version":"v2","commit":"abc123","author":"ana"}`)
	require.Equal(t, http.StatusCreated, code, body)
	d := decode[deploy.Deploy](t, body)
	require.Equal(t, t0, d.StartedAt, "started_at defaults to now")

	code, body = f.do(t, "GET", "/api/v1/deploys/"+d.ID+"/verify", "")
	require.Equal(t, http.StatusServiceUnavailable, code, "a gate without SLI history cannot verify: %s", body)

	_, body = f.do(t, "GET", "/api/v1/deploys?service=checkout", "")
	list := decode[struct{ Data []deploy.Deploy }](t, body).Data
	require.Len(t, list, 1)
	require.Equal(t, "abc123", list[0].Commit)

	// The deploy is marked in the TSDB at its start, for Grafana annotations.
	q, err := f.tsdb.Querier(t0.Add(-time.Minute).UnixMilli(), t0.Add(time.Minute).UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, deploy.DeployInfoMetric))
	require.True(t, ss.Next(), "no %s series", deploy.DeployInfoMetric)
	require.Equal(t, `{__name__="burnrate_deploy_info", author="ana", commit="abc123", deploy_id="1", service="checkout", version="v2"}`, ss.At().Labels().String())
	it := ss.At().Iterator(nil)
	require.NotEqual(t, chunkenc.ValNone, it.Next())
	ts, val := it.At()
	require.Equal(t, t0.UnixMilli(), ts)
	require.InDelta(t, 1.0, val, 0)
}
