package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/testutil"
)

func amtool(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	full := append([]string{"--alertmanager.url=" + url, "--no-version-check"}, args...)
	out, err := exec.CommandContext(ctx, "/usr/bin/amtool", full...).CombinedOutput()
	return string(out), err
}

func TestAmtoolQueriesAlertsAndManagesSilences(t *testing.T) {
	testutil.NeedBinary(t, testutil.AmtoolBin)
	// amtool stamps silences with the wall clock, so this Manager runs on it.
	f := newRealtimeFixture(t, alerting.DefaultConfig())
	srv := f.serve()

	code, body := do(t, "POST", srv.URL+"/api/v2/alerts",
		`[{"labels":{"alertname":"HighErrorRate","service":"api","severity":"page"},"annotations":{"summary":"api is failing"}},
		  {"labels":{"alertname":"DiskFull","service":"store","severity":"ticket"}}]`)
	require.Equal(t, 200, code, body)

	out, err := amtool(t, srv.URL, "alert", "query", "-o", "json")
	require.NoError(t, err, out)
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &alerts), out)
	require.Len(t, alerts, 2)

	out, err = amtool(t, srv.URL, "alert", "query", "service=api")
	require.NoError(t, err, out)
	require.Contains(t, out, "HighErrorRate")
	require.Contains(t, out, "api is failing")
	require.NotContains(t, out, "DiskFull")

	out, err = amtool(t, srv.URL, "silence", "add", "alertname=DiskFull", "--author=oncall", "--comment=replacing the disk", "--duration=1h")
	require.NoError(t, err, out)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^[0-9a-f-]{36}$`, id)

	out, err = amtool(t, srv.URL, "silence", "query", "-o", "json")
	require.NoError(t, err, out)
	var sils []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &sils), out)
	require.Len(t, sils, 1)
	require.Equal(t, id, sils[0]["id"])
	require.Equal(t, "oncall", sils[0]["createdBy"])
	require.Equal(t, "replacing the disk", sils[0]["comment"])

	// amtool hides silenced alerts unless asked.
	out, err = amtool(t, srv.URL, "alert", "query")
	require.NoError(t, err, out)
	require.NotContains(t, out, "DiskFull")
	out, err = amtool(t, srv.URL, "alert", "query", "--silenced", "-o", "json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"silencedBy":["`+id+`"]`)

	out, err = amtool(t, srv.URL, "silence", "expire", id)
	require.NoError(t, err, out)
	out, err = amtool(t, srv.URL, "silence", "query", "-q")
	require.NoError(t, err, out)
	require.Empty(t, strings.TrimSpace(out), "an expired silence is not listed as active")
	out, err = amtool(t, srv.URL, "silence", "query", "--expired", "-q")
	require.NoError(t, err, out)
	require.Equal(t, id, strings.TrimSpace(out))

	// amtool parses the routing configuration from /api/v2/status.
	out, err = amtool(t, srv.URL, "config", "routes", "test", "severity=page", "slo=api")
	require.NoError(t, err, out)
	require.Equal(t, "log", strings.TrimSpace(out))
	out, err = amtool(t, srv.URL, "config", "routes", "show")
	require.NoError(t, err, out)
	require.Contains(t, out, `{severity="page"}`)

	out, err = amtool(t, srv.URL, "silence", "expire", "0d4fbb2c-7b39-4b6a-9d1e-2a0f1c3b4d5e")
	require.Error(t, err, "expiring an unknown silence fails")
	require.Contains(t, out, "404")
}

func newRealtimeFixture(t *testing.T, cfg alerting.Config) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, rcv: &recorder{}}
	f.openWith(time.Now)
	return f
}

func TestPrometheusSendsItsAlertsToBurnrate(t *testing.T) {
	cfg := alerting.DefaultConfig()
	cfg.Route.GroupWait = 200 * time.Millisecond
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}}} // pages inherit every timer
	f := &fixture{t: t, dir: t.TempDir(), cfg: cfg, rcv: &recorder{}}
	f.openWith(time.Now)

	var authorized atomic.Int64
	h := f.m.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer s3cret" {
			authorized.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	rules := `groups:
- name: burnrate-intake
  interval: 1s
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels:
      severity: page
      service: checkout
    annotations:
      summary: "it always fires"
`
	conf := fmt.Sprintf(`global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
  - api_version: v2
    authorization:
      credentials: s3cret
    static_configs:
    - targets: ["%s"]
`, strings.TrimPrefix(srv.URL, "http://"))
	t.Cleanup(func() {
		if t.Failed() {
			_, body := do(t, "GET", srv.URL+"/api/v2/alerts", "")
			t.Logf("alerts held: %s", body)
		}
	})
	testutil.StartPrometheus(t, testutil.PromConfig{
		Config: conf,
		Files:  map[string][]byte{"rules.yml": []byte(rules)},
		// Alertmanager targets are discovered about 5s after start; the
		// first alert, sent before that, is re-sent after this delay.
		Args: []string{"--rules.alert.resend-delay=1s"},
	})

	require.Eventually(t, func() bool {
		for _, n := range f.rcv.all() {
			for _, a := range n.Alerts {
				if a.Labels["alertname"] == "AlwaysFiring" {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "Prometheus's alert never reached a receiver")

	n := f.rcv.all()[0]
	require.Equal(t, alerting.StatusFiring, n.Status)
	a := n.Alerts[0]
	require.Equal(t, "checkout", a.Labels["service"])
	require.Equal(t, "it always fires", a.Annotations["summary"])
	require.Contains(t, a.GeneratorURL, "vector")
	require.Positive(t, authorized.Load(), "Prometheus sent its bearer token")

	code, body := do(t, "GET", srv.URL+"/api/v2/alerts?filter="+`alertname%3D%22AlwaysFiring%22`, "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"state":"active"`)
}
