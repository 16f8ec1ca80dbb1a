package collector_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/collector"
	"github.com/burnrate/burnrate/internal/testutil"
)

const crashChildEnv = "BURNRATE_COLLECTOR_CRASH_CHILD_DIR"

// TestDataSurvivesACrash runs a collector in a child process, writes to it,
// kills it with SIGKILL (no shutdown, no flush) and requires every sample it
// acknowledged to be there when the TSDB is opened again: the WAL replay.
func TestDataSurvivesACrash(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataSurvivesACrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var base string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(addrFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		base = strings.TrimSpace(string(b))
		return true
	}, 60*time.Second, 20*time.Millisecond, "the child collector never started")

	now := time.Now()
	const n = 50
	for i := range n {
		remoteWrite(t, base, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  labelsOf("__name__", "crash_test_total", "job", "crash"),
			Samples: []prompb.Sample{{Timestamp: now.Add(time.Duration(i-n) * time.Second).UnixMilli(), Value: float64(i)}},
		}}})
	}
	code, _, body := post(t, base+"/v1/metrics", map[string]string{"Content-Type": ctProto}, otlpProto(t, gaugeMetrics("crash-svc", "crash_gauge", 3, now)))
	require.Equal(t, http.StatusOK, code, body)

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	br := startCollector(t, testConfig(), filepath.Join(dir, "tsdb"))
	for q, want := range map[string]int{
		`count_over_time(crash_test_total[5m])`: n,
		`count(crash_gauge)`:                    3,
	} {
		_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {q}, "time": {fmt.Sprint(now.Unix() + 1)}}, false)
		require.Equal(t, "success", r.Status)
		require.Contains(t, string(r.Data), fmt.Sprintf(`"%d"]`, want), "%s after the crash: %s", q, r.Data)
	}
}

func runCrashChild(t *testing.T, dir string) {
	reg := prometheus.NewRegistry()
	c, err := collector.Open(collector.Options{Dir: filepath.Join(dir, "tsdb"), Config: testConfig(), Logger: testutil.Logger(t), Registerer: reg, Gatherer: reg})
	require.NoError(t, err)
	mux := http.NewServeMux()
	c.Mount(mux.Handle)
	srv := httptest.NewServer(mux)
	go func() { _ = c.Run(context.Background()) }()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "addr"), []byte(srv.URL+"\n"), 0o600))
	select {} // until killed
}

// TestScrapesStaticTargets scrapes a Prometheus text target and an
// OpenMetrics target with Prometheus's own scrape loop and parsers.
func TestScrapesStaticTargets(t *testing.T) {
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = fmt.Fprint(w, "# HELP jobs_processed_total Jobs.\n# TYPE jobs_processed_total counter\njobs_processed_total{queue=\"mail\"} 42\n")
	}))
	defer text.Close()
	om := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		_, _ = fmt.Fprint(w, "# TYPE queue_latency_seconds histogram\n# UNIT queue_latency_seconds seconds\n"+
			"queue_latency_seconds_bucket{le=\"0.1\"} 3\nqueue_latency_seconds_bucket{le=\"+Inf\"} 5\n"+
			"queue_latency_seconds_sum 1.5\nqueue_latency_seconds_count 5\n# EOF\n")
	}))
	defer om.Close()

	cfg := testConfig()
	cfg.Scrape.Targets = []string{strings.TrimPrefix(text.URL, "http://"), strings.TrimPrefix(om.URL, "http://")}
	cfg.Scrape.Interval = time.Second
	cfg.Scrape.Timeout = 500 * time.Millisecond
	cfg.Scrape.JobName = "static"
	br := startCollector(t, cfg, "")

	for _, q := range []string{
		`count(up{job="static"} == 1) == 2`,
		`count(scrape_duration_seconds{job="static"}) == 2`,
		`jobs_processed_total{job="static", queue="mail"} == 42`,
		`histogram_quantile(0.5, queue_latency_seconds_bucket{job="static"}) > 0`,
	} {
		require.Eventually(t, func() bool {
			_, r := apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {q}}, false)
			return r.Status == "success" && strings.Contains(string(r.Data), `"value"`)
		}, 15*time.Second, 100*time.Millisecond, "no result for %s", q)
	}
	_, r := apiCall(t, br.URL, "/api/v1/targets", url.Values{}, false)
	require.Contains(t, string(r.Data), `"health":"up"`)
	require.Positive(t, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_accepted_total", map[string]string{"protocol": "scrape"}))
}

// TestRemoteWriteOutReachesRealPrometheus sends what Burnrate ingests on to
// the Debian prometheus through Prometheus's own queue manager.
func TestRemoteWriteOutReachesRealPrometheus(t *testing.T) {
	promURL := startPrometheus(t)
	cfg := testConfig()
	cfg.RemoteWrite.URL = promURL + "/api/v1/write"
	br := startCollector(t, cfg, "")

	name := fmt.Sprintf("forwarded_gauge_%d", time.Now().UnixNano())
	// The queue manager sends what the WAL holds from its start on, so the
	// samples are stamped after the collector opened.
	now := time.Now()
	code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctProto}, otlpProto(t, gaugeMetrics("demo-edge", name, 4, now)))
	require.Equal(t, http.StatusOK, code, body)

	require.Eventually(t, func() bool {
		_, r := apiCall(t, promURL, "/api/v1/query", url.Values{"query": {`sum(` + name + `{job="demo-edge"})`}, "time": {fmt.Sprint(now.Unix() + 1)}}, false)
		return strings.Contains(string(r.Data), `"6"]`) // 0+1+2+3
	}, 30*time.Second, 200*time.Millisecond, "the series never reached Prometheus")
}

// TestRemoteWriteOutAppliesWriteRelabelConfigs drops what the relabel rules
// say before it leaves, as Prometheus's own remote_write does: the series
// Burnrate records itself stay home when the receiver records them too.
func TestRemoteWriteOutAppliesWriteRelabelConfigs(t *testing.T) {
	promURL := startPrometheus(t)
	cfg := testConfig()
	cfg.RemoteWrite.URL = promURL + "/api/v1/write"
	suffix := fmt.Sprint(time.Now().UnixNano())
	cfg.RemoteWrite.WriteRelabelConfigs = []map[string]any{{
		"source_labels": []string{"__name__"}, "regex": "recorded_here_" + suffix, "action": "drop",
	}}
	br := startCollector(t, cfg, "")

	kept, dropped := "forwarded_kept_"+suffix, "recorded_here_"+suffix
	now := time.Now()
	for _, name := range []string{dropped, kept} {
		code, _, body := post(t, br.URL+"/v1/metrics", map[string]string{"Content-Type": ctProto}, otlpProto(t, gaugeMetrics("demo-edge", name, 4, now)))
		require.Equal(t, http.StatusOK, code, body)
	}
	at := fmt.Sprint(now.Unix() + 1)
	require.Eventually(t, func() bool {
		_, r := apiCall(t, promURL, "/api/v1/query", url.Values{"query": {`sum(` + kept + `)`}, "time": {at}}, false)
		return strings.Contains(string(r.Data), `"6"]`)
	}, 30*time.Second, 200*time.Millisecond, "the kept series never reached Prometheus")
	_, r := apiCall(t, promURL, "/api/v1/query", url.Values{"query": {`count(` + dropped + `)`}, "time": {at}}, false)
	require.JSONEq(t, `{"resultType":"vector","result":[]}`, string(r.Data), "the dropped series was sent")
	// It stays in Burnrate's own TSDB.
	_, r = apiCall(t, br.URL, "/api/v1/query", url.Values{"query": {`sum(` + dropped + `)`}, "time": {at}}, false)
	require.Contains(t, string(r.Data), `"6"]`)
}

func TestABadWriteRelabelConfigIsRefusedAtOpen(t *testing.T) {
	cfg := testConfig()
	cfg.RemoteWrite.URL = "http://127.0.0.1:1/api/v1/write"
	cfg.RemoteWrite.WriteRelabelConfigs = []map[string]any{{"action": "explode"}}
	_, err := collector.Open(collector.Options{Dir: t.TempDir(), Config: cfg})
	require.ErrorContains(t, err, "collector.remote_write")
	require.ErrorContains(t, err, "explode")
}
