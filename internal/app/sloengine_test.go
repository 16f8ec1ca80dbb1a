package app_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

const quarterSLO = `version: burnrate/v1
service: shop
slos:
  - name: quarterly
    objective: 99.9
    period: 90d
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
`

// TestDefaultRetentionCoversTheLongestSLOPeriod: with the default
// retention (15d) and a 90d SLO the TSDB keeps 93 days.
func TestDefaultRetentionCoversTheLongestSLOPeriod(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "shop.yml")
	require.NoError(t, os.WriteFile(spec, []byte(quarterSLO), 0o644))
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.Collector.OTLPListen = ""
	opts.Slos = []string{spec}
	r := apptest.StartApp(t, opts)
	code, body := testutil.HTTPGet(t, r.URL+"/api/v1/status/runtimeinfo")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"storageRetention":"2232h0m0s"`, "93 days")
}

// TestSLOLongerThanConfiguredRetentionIsRefused: a retention set shorter
// than an SLO's period refuses the SLO at start, naming both, unless
// slo.allow_short_retention is set.
func TestSLOLongerThanConfiguredRetentionIsRefused(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "shop.yml")
	require.NoError(t, os.WriteFile(spec, []byte(quarterSLO), 0o644))
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.Collector.OTLPListen = ""
	opts.Listen = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.Slos = []string{spec}
	opts.Collector.TSDB.Retention = 30 * 24 * time.Hour
	_, err := app.New(opts)
	require.ErrorContains(t, err, "shop.yml:4: SLO shop-quarterly: period 90d is longer than collector.tsdb.retention 30d")

	opts.SLO.AllowShortRetention = true
	apptest.StartApp(t, opts)
}

// TestSLOEngineSavesItsSliceCheckpointOnStop: the slices a restart starts
// from are under <data_dir>/sloengine once the process has stopped.
func TestSLOEngineSavesItsSliceCheckpointOnStop(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { require.FileExists(t, filepath.Join(dir, "sloengine", "slices.ckpt")) })
	opts := app.DefaultOptions()
	opts.Collector.OTLPListen = ""
	opts.Demo.Enabled = false
	opts.DataDir = dir
	spec := filepath.Join(t.TempDir(), "shop.yml")
	require.NoError(t, os.WriteFile(spec, []byte(strings.ReplaceAll(quarterSLO, "90d", "30d")), 0o644))
	opts.Slos = []string{spec}
	opts.SLO.Interval = time.Second
	r := apptest.StartApp(t, opts)
	require.Eventually(t, func() bool {
		code, body := testutil.HTTPGet(t, r.URL+"/api/v1/slos/shop-quarterly")
		return code == 200 && !strings.Contains(body, "not evaluated yet")
	}, 30*time.Second, 100*time.Millisecond)
}

// TestAnSLOIsEvaluatedAndItsRulesRunAsSamplesArrive: with both tickers an
// hour apart, a remote-written outage still reaches the SLO's windows and
// its page rule within seconds, because the collector tells the engine
// which series were written and the rules run right after.
func TestAnSLOIsEvaluatedAndItsRulesRunAsSamplesArrive(t *testing.T) {
	opts := shopOptions(t)
	opts.SLO.Interval = time.Hour
	opts.Alerting.EvaluationInterval = time.Hour
	r := apptest.StartApp(t, opts)
	time.Sleep(500 * time.Millisecond) // let the first cycles pass

	// Ten minutes in which every request failed, in one request.
	now := time.Now()
	var req prompb.WriteRequest
	for _, name := range []string{"requests_total", "errors_total"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}}}
		for i := 40; i >= 0; i-- {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: now.Add(-time.Duration(i) * 15 * time.Second).UnixMilli(), Value: float64(40-i) * 150})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	code, body := postRemoteWrite(t, r.URL, snappy.Encode(nil, raw))
	require.Less(t, code, 300, body)

	require.Eventually(t, func() bool {
		for ls, st := range r.App.Alerting().RuleStates() {
			if strings.Contains(ls, `tier="page-fast"`) && st != "inactive" {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the page rule did not see the outage: %v", r.App.Alerting().RuleStates())
}

func postRemoteWrite(t *testing.T, base string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// shopOptions runs the app without the demo on one 30-day shop SLO (the
// quarter SLO's spec over 30 days) and no OTLP listener.
func shopOptions(t *testing.T) app.Options {
	t.Helper()
	spec := filepath.Join(t.TempDir(), "shop.yml")
	require.NoError(t, os.WriteFile(spec, []byte(strings.Replace(quarterSLO, "period: 90d", "period: 30d", 1)), 0o644))
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.Collector.OTLPListen = ""
	opts.Slos = []string{spec}
	return opts
}
