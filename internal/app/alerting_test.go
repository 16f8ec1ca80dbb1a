package app_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/testutil"
)

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
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

func TestAlertmanagerAPIIsServedAndGuardedByTheToken(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "t0ken"
	r := testutil.StartApp(t, opts)
	require.NotNil(t, r.Alerting())
	require.FileExists(t, r.DataDir+"/alerting.db")

	alert := `[{"labels":{"alertname":"FromPrometheus","severity":"ticket"}}]`
	code, body := post(t, r.URL+"/api/v2/alerts", "", alert)
	require.Equal(t, http.StatusUnauthorized, code, "posting alerts needs the API token: %s", body)
	code, body = post(t, r.URL+"/api/v2/alerts", "t0ken", alert)
	require.Equal(t, http.StatusOK, code, body)

	code, body = testutil.HTTPGet(t, r.URL+"/api/v2/alerts")
	require.Equal(t, http.StatusOK, code, "reading stays open")
	require.Contains(t, body, `"alertname":"FromPrometheus"`)
	require.Contains(t, body, `"receivers":[{"name":"log"}]`, "without a Slack token the log receiver is the default")
	code, body = testutil.HTTPGet(t, r.URL+"/api/v2/status")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"cluster":{"peers":[],"status":"disabled"}`)
}

func TestAlertingOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*app.Options)
		want string
	}{
		{"a route to Slack without a token is refused", func(o *app.Options) { o.Alerting.Route.Receiver = "slack" },
			`alerting.route: receiver "slack" is not configured`},
		{"a Slack token without a channel is refused", func(o *app.Options) { o.Alerting.Slack.Token = "xoxb-1" },
			"alerting.slack.channel: required"},
		{"a bad matcher is refused", func(o *app.Options) {
			o.Alerting.InhibitRules = []alerting.InhibitRuleConfig{{SourceMatchers: []string{`severity=~"("`}, TargetMatchers: []string{`a="b"`}}}
		},
			"alerting.inhibit_rules:"},
		{"an unknown time zone is refused", func(o *app.Options) {
			o.Alerting.TimeIntervals = []alerting.TimeIntervalConfig{{Name: "x", TimeIntervals: []alerting.TimeIntervalPeriod{{Location: "Mars/Olympus"}}}}
		}, "alerting.time_intervals:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := app.DefaultOptions()
			tc.mut(&o)
			require.ErrorContains(t, o.Validate(), tc.want)
		})
	}
}
