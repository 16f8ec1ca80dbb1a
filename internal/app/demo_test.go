package app_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestUpRunsTheDemoAndTheCollectorSeesItsMetricsAndTraces starts the process
// as `burnrate up` does (defaults, demo on, background load) with ports
// picked by the system, and checks that the edge's semantic-convention
// metrics and the demo's traces arrive in the collector over OTLP/HTTP.
func TestUpRunsTheDemoAndTheCollectorSeesItsMetricsAndTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo test waits for several export intervals")
	}
	opts := app.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.Collector.OTLPListen = ""
	opts.Demo.EdgeListen = "127.0.0.1:0"
	opts.Demo.MetricInterval = 300 * time.Millisecond
	opts.Demo.Load.Shape = "constant"
	opts.Demo.Load.Rate = 30
	opts.Demo.Load.Period = 5 * time.Second
	r := apptest.StartApp(t, opts)

	type vector struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.QueryEscape(`http_server_request_duration_seconds_count{job="demo-edge"}`)
	var got vector
	require.Eventually(t, func() bool {
		code, body := testutil.HTTPGet(t, r.URL+"/api/v1/query?query="+q)
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
			return false
		}
		return len(got.Data.Result) > 0
	}, 30*time.Second, 200*time.Millisecond, "the edge's request metrics never reached the collector: %s", names(t, r.URL))
	var codes []string
	for _, s := range got.Data.Result {
		codes = append(codes, s.Metric["http_response_status_code"])
	}
	require.Contains(t, codes, "200", "series carry http_response_status_code")

	require.Eventually(t, func() bool {
		code, body := testutil.HTTPGet(t, r.URL+"/api/v1/traces?service=demo-store&limit=5")
		return code == 200 && strings.Contains(body, "demo-store")
	}, 30*time.Second, 200*time.Millisecond, "no trace reached the store tier")

	code, body := testutil.HTTPGet(t, r.URL+"/api/v1/demo/faults")
	require.Equal(t, 200, code)
	require.Contains(t, body, "store.shard_down")
}

func names(t *testing.T, base string) string {
	_, body := testutil.HTTPGet(t, base+"/api/v1/label/__name__/values")
	_, jobs := testutil.HTTPGet(t, base+"/api/v1/label/job/values")
	_, m := testutil.HTTPGet(t, base+"/metrics")
	var keep []string
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "burnrate_collector") || strings.HasPrefix(l, "burnrate_http_requests_total") {
			keep = append(keep, l)
		}
	}
	return body + jobs + strings.Join(keep, "\n")
}
