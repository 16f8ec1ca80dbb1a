package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
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
	r := apptest.StartApp(t, opts)
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

// TestAnOutageOnTheDemoPagesThroughTheWholeStack runs `burnrate up` (demo
// platform, load, collector, SLO engine, alerting), fails every request at
// the edge, and waits for the page of the edge's availability SLO, with
// that SLO's tickets inhibited by it.
func TestAnOutageOnTheDemoPagesThroughTheWholeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test waits for several SLO evaluations")
	}
	opts := app.DefaultOptions()
	opts.Collector.OTLPListen = ""
	opts.Demo.EdgeListen = "127.0.0.1:0"
	opts.Demo.MetricInterval = 300 * time.Millisecond
	opts.Demo.Load.Shape = "constant"
	opts.Demo.Load.Rate = 30
	opts.Demo.Load.Period = 5 * time.Second
	opts.SLO.Interval = time.Second
	opts.Alerting.EvaluationInterval = time.Second
	opts.APIToken = "t"
	r := apptest.StartApp(t, opts)

	// Some good traffic first, so the SLO engine has numbers.
	require.Eventually(t, func() bool {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/slos")
		return strings.Contains(body, `"demo-edge-availability"`) && strings.Contains(body, `"total_events"`)
	}, 30*time.Second, 200*time.Millisecond)
	code, body := testutil.HTTPGet(t, r.URL+"/api/v2/alerts?filter="+url.QueryEscape(`alertname="SLOErrorBudgetBurn"`))
	require.Equal(t, 200, code)
	require.JSONEq(t, `[]`, body, "no page before the fault")

	req, err := http.NewRequest(http.MethodPut, r.URL+"/api/v1/demo/faults/edge.error_fraction", strings.NewReader(`{"value":"1"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, string(b))

	type alert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Status      struct {
			State string `json:"state"`
		} `json:"status"`
	}
	var alerts []alert
	require.Eventually(t, func() bool {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v2/alerts?filter="+url.QueryEscape(`slo="demo-edge-availability"`))
		alerts = nil
		if json.Unmarshal([]byte(body), &alerts) != nil {
			return false
		}
		for _, a := range alerts {
			if a.Labels["severity"] == "page" && a.Labels["tier"] == "page-fast" && a.Status.State == "active" {
				return true
			}
		}
		return false
	}, 60*time.Second, 250*time.Millisecond, "no page for demo-edge-availability")
	for _, a := range alerts {
		if a.Labels["severity"] == "ticket" && a.Labels["alertname"] == "SLOErrorBudgetBurn" {
			require.Equal(t, "suppressed", a.Status.State, "the page inhibits the SLO's tickets")
		}
		if a.Labels["tier"] == "page-fast" {
			require.Regexp(t, `^[0-9a-f]{32}(,[0-9a-f]{32})*$`, a.Annotations["trace_ids"], "failing requests' trace IDs come from exemplars")
			require.Contains(t, a.Annotations["dashboard_url"], "/api/v1/slos/demo-edge-availability")
		}
	}
}
