package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
)

func TestSilenceCommandAddsQueriesAndExpires(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "cli-token"
	r := apptest.StartApp(t, opts)
	burnrate := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"silence", "--url", r.URL}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, _, stderr := burnrate("add", "alertname=DiskFull", "-c", "disk swap")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, "401 Unauthorized: missing or invalid bearer token")

	t.Setenv("BURNRATE_API_TOKEN", "cli-token")
	code, out, stderr := burnrate("add", `severity="ticket"`, "slo=~api-.*", "-c", "planned maintenance", "-a", "oncall", "-d", "2h")
	require.Equal(t, exitOK, code, stderr)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^[0-9a-f-]{36}$`, id)

	code, out, _ = burnrate("query")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, id)
	require.Contains(t, out, `severity="ticket" slo=~"api-.*"`)
	require.Contains(t, out, "api_token", "with a token the token's name is recorded, not --author")
	require.NotContains(t, out, "oncall")
	require.Contains(t, out, "planned maintenance")

	code, out, _ = burnrate("query", "-q", `severity="page"`)
	require.Equal(t, exitOK, code)
	require.Empty(t, strings.TrimSpace(out), "the filter keeps only silences with that matcher")

	code, _, stderr = burnrate("expire", id)
	require.Equal(t, exitOK, code, stderr)
	code, out, _ = burnrate("query", "-q")
	require.Equal(t, exitOK, code)
	require.Empty(t, strings.TrimSpace(out))
	code, out, _ = burnrate("query", "-q", "--expired")
	require.Equal(t, exitOK, code)
	require.Equal(t, id, strings.TrimSpace(out))

	code, _, stderr = burnrate("expire", "0d4fbb2c-7b39-4b6a-9d1e-2a0f1c3b4d5e")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, "404 Not Found: silence not found")

	code, _, stderr = burnrate("add", "alertname=~(", "-c", "x")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "bad matcher")
	code, _, stderr = burnrate("add", "alertname=X")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "--comment is required")
}

func TestSlackSecretsComeFromTheEnvironmentAndAreRedacted(t *testing.T) {
	t.Setenv("BURNRATE_ALERTING_SLACK_TOKEN", "xoxb-secret-token")
	t.Setenv("BURNRATE_ALERTING_SLACK_SIGNING_SECRET", "signing-secret")
	file := filepath.Join(t.TempDir(), "burnrate.yml")
	require.NoError(t, os.WriteFile(file, []byte("alerting:\n  slack:\n    channel: C0ALERTS\n  route:\n    group_wait: 10s\n"), 0o644))
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run([]string{"config", "print", "--config", file}, &stdout, &stderr), stderr.String())
	out := stdout.String()
	require.NotContains(t, out, "xoxb-secret-token")
	require.NotContains(t, out, "signing-secret")
	require.Contains(t, out, `token: "<redacted>"`)
	require.Contains(t, out, "channel: C0ALERTS")
	require.Contains(t, out, "group_wait: 10s")

	cfg, err := loadConfig(file, nil)
	require.NoError(t, err)
	require.Equal(t, "xoxb-secret-token", cfg.Alerting.Slack.Token)
	require.Equal(t, "slack", cfg.Alerting.DefaultReceiver())
}

func TestPrintedAlertingConfigurationLoadsBackUnchanged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "burnrate.yml")
	require.NoError(t, os.WriteFile(file, []byte(`alerting:
  route:
    group_by: [alertname]
    routes:
      - matchers: ['team="db"']
        receiver: log
        continue: true
      - matchers: ['severity="page"']
        group_wait: 2s
        mute_time_intervals: [nights]
  time_intervals:
    - name: nights
      time_intervals:
        - times: [{start_time: "00:00", end_time: "06:00"}]
          location: Europe/Berlin
  rules:
    slos:
      demo-edge-availability: {disable: [ticket-slow]}
`), 0o644))
	first, err := loadConfig(file, nil)
	require.NoError(t, err)
	printed, err := printConfig(first)
	require.NoError(t, err)
	// Only the alerting section is under test here.
	var all map[string]any
	require.NoError(t, yaml.Unmarshal(printed, &all))
	section, err := yaml.Marshal(map[string]any{"alerting": all["alerting"]})
	require.NoError(t, err)
	again := filepath.Join(t.TempDir(), "printed.yml")
	require.NoError(t, os.WriteFile(again, section, 0o644))
	second, err := loadConfig(again, nil)
	require.NoError(t, err, "config print output is a valid configuration:\n%s", section)
	require.Equal(t, first.Alerting.WithDefaults(), second.Alerting.WithDefaults())
	require.Nil(t, second.Alerting.Route.Routes[1].GroupBy, "an unset group_by still inherits")
	require.Zero(t, second.Alerting.Route.Routes[0].GroupWait, "the file's first route is not merged into a default one")
	require.Equal(t, alerting.DefaultInhibitRules(), second.Alerting.WithDefaults().InhibitRules)
}
