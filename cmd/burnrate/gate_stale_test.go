package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/internal/testutil"
)

// staticSource answers the gate with fixed snapshots.
type staticSource map[string]deploy.Snapshot

func (s staticSource) Snapshot(service string) (deploy.Snapshot, bool) {
	v, ok := s[service]
	return v, ok
}

func (s staticSource) Services() []string { return []string{"checkout"} }

// runGate runs `burnrate gate` in process and returns its exit code.
func runGate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newGateCmd(&stdout, &stderr)
	cmd.SetArgs(args)
	cmd.SetOut(&stderr)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.code, stdout.String(), stderr.String() + ee.Error()
	}
	t.Fatalf("gate %v: %v", args, err)
	return 0, "", ""
}

func newStaticGate(t *testing.T, src staticSource) *httptest.Server {
	t.Helper()
	st, err := deploy.OpenStore(context.Background(), filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: src, Store: st})
	require.NoError(t, err)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestGateExitsOneWhenTheSLIsDataIsAbsent: the CLI a pipeline runs exits 1
// (do not ship) when the gate fails closed on absent data, and says why.
func TestGateExitsOneWhenTheSLIsDataIsAbsent(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	srv := newStaticGate(t, staticSource{"checkout": {Service: "checkout", SLOs: []deploy.SLOState{{
		ID: "checkout-availability", BudgetRemaining: 0.9, Coverage: 1, EvaluatedAt: time.Now(),
		BurnRates: map[time.Duration]float64{time.Hour: 0.2}, NoData: map[time.Duration]bool{5 * time.Minute: true}, Absent: true,
	}}}})
	code, out, errOut := runGate(t, "--service", "checkout", "--url", srv.URL)
	require.Equal(t, gateFail, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "SLO checkout-availability has no SLI data")
}

// TestGateWaitRetriesTransientErrors: under --wait a dropped connection
// and a 503 are asked again with backoff, until the gate answers; a 404
// is final.
func TestGateWaitRetriesTransientErrors(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	gate := newStaticGate(t, staticSource{"checkout": {Service: "checkout", SLOs: []deploy.SLOState{{
		ID: "checkout-availability", BudgetRemaining: 0.9, Coverage: 1, EvaluatedAt: time.Now(),
		BurnRates: map[time.Duration]float64{5 * time.Minute: 0.2}}}}})
	var mu sync.Mutex
	calls := 0
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1: // the connection drops, as when Burnrate restarts
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			_ = conn.Close()
		case 2:
			http.Error(w, "upstream restarting", http.StatusServiceUnavailable)
		default:
			httputil.NewSingleHostReverseProxy(mustURL(t, gate.URL)).ServeHTTP(w, r)
		}
	}))
	t.Cleanup(flaky.Close)

	code, out, errOut := runGate(t, "--service", "checkout", "--url", flaky.URL, "--wait", "1m", "--interval", "50ms")
	require.Equal(t, gatePass, code, "%s\n%s", out, errOut)
	require.Contains(t, errOut, "retrying in 50ms")
	require.Contains(t, errOut, "503 Service Unavailable: upstream restarting; retrying in 100ms")
	mu.Lock()
	require.Equal(t, 3, calls)
	mu.Unlock()

	code, _, errOut = runGate(t, "--service", "nope", "--url", gate.URL, "--wait", "1m", "--interval", "50ms")
	require.Equal(t, gateError, code)
	require.NotContains(t, errOut, "retrying", "an unknown service is final")

	code, _, _ = runGate(t, "--service", "checkout", "--url", "http://127.0.0.1:1")
	require.Equal(t, gateError, code, "without --wait the first error is final")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// TestTheBuiltGateFailsClosedWhenTrafficStopped runs the built binary and
// remote-writes checkout's counters for the 40 minutes that ended 15 minutes ago
// (longer than data_absent_for), then nothing: the gate fails naming the
// absent SLI, `burnrate gate` exits 1, Flagger's status hook gets 403 and
// its rollback hook does not roll back.
func TestTheBuiltGateFailsClosedWhenTrafficStopped(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "checkout.yml"), fmt.Appendf(nil, gateSLOs, "checkout"), 0o600))
	cfg := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
api_token: s3cret
slos: [%s/checkout.yml]
slo: {interval: 1s}
collector: {otlp_listen: ""}
`, dir)), 0o600))
	p := startBinary(t, "serve", "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)

	stopped := time.Now().Add(-15 * time.Minute)
	var req prompb.WriteRequest
	for _, code := range []string{"200", "500"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "http_requests_total"}, {Name: "code", Value: code}, {Name: "service", Value: "checkout"}}}
		share := 0.9999
		if code == "500" {
			share = 0.0001
		}
		// 40 minutes, so the oldest sample is younger than the hour the
		// TSDB head accepts behind its newest (the self-monitoring writes
		// at now).
		for i := 160; i >= 0; i-- {
			at := stopped.Add(-time.Duration(i) * 15 * time.Second)
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(160-i) * 15 * 100 * share})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	remoteWrite(t, base, "s3cret", &req)

	env := []string{"BURNRATE_URL=" + base, "BURNRATE_API_TOKEN=s3cret", "GITHUB_STEP_SUMMARY="}
	var out string
	require.Eventually(t, func() bool {
		var code int
		code, out, _ = runBinary(t, env, "gate", "--service", "checkout")
		return code == gateFail && strings.Contains(out, "has no SLI data")
	}, 30*time.Second, 500*time.Millisecond, "the gate fails naming the absent SLI")
	require.Contains(t, out, "SLO checkout-availability has no SLI data: its series are absent from the last 5m")

	flagger := func(mode string) int {
		r, err := http.NewRequest(http.MethodPost, base+"/api/v1/gate?mode="+mode,
			strings.NewReader(`{"name":"checkout","namespace":"shop","phase":"Progressing","checksum":"6d4b9c"}`))
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, flagger("status"), "Flagger's confirm hooks halt")
	require.Equal(t, http.StatusForbidden, flagger("rollback"), "Flagger's rollback hook does not roll back on missing data")
}
