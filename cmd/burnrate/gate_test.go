package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

const gateSLOs = `version: prometheus/v1
service: %[1]s
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{service="%[1]s",code="500"}[{{.window}}]))
        total_query: sum(rate(http_requests_total{service="%[1]s"}[{{.window}}]))
`

const gatePolicies = `policies:
  - service: bad
    max_burn_rate: {5m: 10}
  - service: meh
    warn_burn_rate: {5m: 0.2}
`

// pushTraffic remote-writes ten minutes of request counters: service good
// without errors, meh at 0.05% errors (burn rate 0.5), bad at 50%.
func pushTraffic(t *testing.T, base string) {
	t.Helper()
	now := time.Now()
	var req prompb.WriteRequest
	for svc, errRatio := range map[string]float64{"good": 0, "meh": 0.0005, "bad": 0.5} {
		for _, code := range []string{"200", "500"} {
			ts := prompb.TimeSeries{Labels: []prompb.Label{
				{Name: "__name__", Value: "http_requests_total"}, {Name: "code", Value: code}, {Name: "service", Value: svc}}}
			share := 1 - errRatio
			if code == "500" {
				share = errRatio
			}
			for i := 40; i >= 0; i-- {
				at := now.Add(-time.Duration(i) * 15 * time.Second)
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(40-i) * 15 * 100 * share})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
	}
	remoteWrite(t, base, "s3cret", &req)
}

// runBinary runs the built binary and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("running %v: %v", args, err)
	return 0, "", ""
}

func TestGateExitCodesTellPipelinesWhatToDo(t *testing.T) {
	dir := t.TempDir()
	for _, svc := range []string{"good", "meh", "bad"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, svc+".yml"), fmt.Appendf(nil, gateSLOs, svc), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policies.yml"), []byte(gatePolicies), 0o600))
	cfg := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
api_token: s3cret
slos: [%[1]s/good.yml, %[1]s/meh.yml, %[1]s/bad.yml]
slo: {interval: 1s}
deploy: {policies: [%[1]s/policies.yml]}
collector: {otlp_listen: ""}
`, dir)), 0o600))
	p := startBinary(t, "serve", "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	pushTraffic(t, base)

	env := []string{"BURNRATE_URL=" + base, "BURNRATE_API_TOKEN=s3cret", "GITHUB_STEP_SUMMARY="}
	// Wait until every SLO has an evaluation that saw the traffic: the
	// engine evaluates them one after another, so bad's being in says
	// nothing of good's and meh's.
	require.Eventually(t, func() bool {
		code, out, _ := runBinary(t, env, "gate", "--service", "bad", "--json")
		return code == 1 && strings.Contains(out, "the 5m burn rate is")
	}, 30*time.Second, 500*time.Millisecond)
	for _, svc := range []string{"good", "meh"} {
		require.Eventually(t, func() bool {
			_, out, _ := runBinary(t, env, "gate", "--service", svc)
			return !strings.Contains(out, "data coverage 0.00%")
		}, 30*time.Second, 500*time.Millisecond, "%s's SLOs see the traffic", svc)
	}

	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"a healthy service passes with 0", []string{"gate", "--service", "good"}, 0, "good: PASS"},
		{"a burning service fails with 1 and says why", []string{"gate", "--service", "bad", "--version", "v2"}, 1, "the 5m burn rate is 500, above the maximum of 10"},
		{"a warning passes with 0", []string{"gate", "--service", "meh"}, 0, "meh: WARN"},
		{"a warning under --strict exits 2", []string{"gate", "--service", "meh", "--strict"}, 2, "above the warning level of 0.2"},
		{"an unknown service is an error, 3", []string{"gate", "--service", "nope"}, 3, `unknown service "nope": services with SLOs are bad, good, meh`},
		{"a missing service is an error, 3", []string{"gate"}, 3, "--service is required"},
		{"a bad flag is an error, 3", []string{"gate", "--service", "good", "--wait", "soon"}, 3, "invalid argument"},
		{"an exception without a reason is an error, 3", []string{"gate", "--service", "bad", "--version", "v2", "--exception", "security"}, 3, "--exception and --reason go together"},
		{"an unreachable gate is an error, 3", []string{"gate", "--service", "good", "--url", "http://127.0.0.1:1"}, 3, "connection refused"},
		{"a wrong token is an error, 3", []string{"gate", "--service", "good", "--token", "wrong"}, 3, "401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runBinary(t, env, tc.args...)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, out+errOut, tc.out)
		})
	}

	t.Run("--json prints the gate's answer", func(t *testing.T) {
		code, out, _ := runBinary(t, env, "gate", "--service", "bad", "--json")
		require.Equal(t, 1, code)
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &d))
		require.Equal(t, "fail", d["decision"])
	})

	t.Run("--wait keeps asking with progress, then exits with the last decision", func(t *testing.T) {
		code, _, errOut := runBinary(t, env, "gate", "--service", "bad", "--wait", "1500ms", "--interval", "500ms")
		require.Equal(t, 1, code)
		require.GreaterOrEqual(t, strings.Count(errOut, "gate: fail: "), 2, errOut)
		require.Contains(t, errOut, "asking again in 500ms")
	})

	t.Run("a recorded security exception passes its version, and is listed", func(t *testing.T) {
		summary := filepath.Join(t.TempDir(), "summary.md")
		code, out, errOut := runBinary(t, append(env, "GITHUB_STEP_SUMMARY="+summary), "gate", "--service", "bad", "--version", "v3",
			"--exception", "security", "--reason", "CVE-2026-1234 fix", "--author", "ana")
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
		require.Contains(t, errOut, "recorded security exception")
		require.Contains(t, out, "would have been fail")
		md, err := os.ReadFile(summary)
		require.NoError(t, err)
		require.Contains(t, string(md), "### Deploy gate: bad v3: pass")
		require.Contains(t, string(md), "| fail | burn_rate | the 5m burn rate is 500")

		code, _, _ = runBinary(t, env, "gate", "--service", "bad", "--version", "v4")
		require.Equal(t, 1, code, "the exception covers v3 only")
	})

	t.Run("deploy mark records a deploy and gate verify waits for a window after it", func(t *testing.T) {
		code, out, errOut := runBinary(t, env, "deploy", "mark", "--service", "good", "--version", "v9", "--commit", "abc")
		require.Equal(t, 0, code, errOut)
		id := strings.TrimSpace(out)
		require.NotEmpty(t, id)
		code, out, errOut = runBinary(t, env, "gate", "verify", "--since-deploy", id)
		require.Equal(t, 3, code, "%s %s", out, errOut)
		require.Contains(t, out, "WAIT: deploy v9 started")
		code, _, errOut = runBinary(t, env, "gate", "verify", "--since-deploy", "12345")
		require.Equal(t, 3, code)
		require.Contains(t, errOut, `deploy "12345": not found`)
		code, out, _ = runBinary(t, env, "deploy", "list", "--service", "good")
		require.Equal(t, 0, code)
		require.Contains(t, out, "v9")
	})
}

// remoteWrite sends req to base's remote-write endpoint as Prometheus does
// (protobuf, snappy, version 0.1.0), with token as a bearer token when
// set, and requires a 2xx answer.
func remoteWrite(t *testing.T, base, token string, req *prompb.WriteRequest) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	hreq, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hreq)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "remote write: %s", msg)
}
