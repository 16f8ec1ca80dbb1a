package collector_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// prometheusCounter reads one unlabelled counter (summed over its series)
// from a Prometheus server's own /metrics.
func prometheusCounter(t testing.TB, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)
		total += v
	}
	require.NoError(t, sc.Err())
	return total
}

// TestRealPrometheusRetriesRemoteWritePushBack runs Debian's Prometheus as a
// remote-write sender into a collector whose only in-flight slot is taken.
// Prometheus drops a batch answered 429 (retry_on_http_429 is off by
// default), so the collector must push back with 503: the sender retries,
// no sample fails, and the samples arrive once the pressure is gone.
func TestRealPrometheusRetriesRemoteWritePushBack(t *testing.T) {
	testutil.NeedBinary(t, testutil.PrometheusBin)
	cfg := testConfig()
	cfg.MaxInflightRequests = 1
	br := startCollector(t, cfg, "")
	spans := &blockingSpans{entered: make(chan struct{}), release: make(chan struct{})}
	br.SetSpanStore(spans, nil)
	_, trace := oneTrace(t)
	held := make(chan int, 1)
	go func() {
		code, _, _ := post(t, br.URL+"/v1/traces", map[string]string{"Content-Type": ctProto}, trace)
		held <- code
	}()
	<-spans.entered
	released := false
	release := func() {
		if !released {
			released = true
			close(spans.release)
			require.Equal(t, http.StatusOK, <-held)
		}
	}
	t.Cleanup(release)

	// Prometheus scrapes the collector's own metrics and writes them back.
	target := httptest.NewServer(promhttp.HandlerFor(br.Reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)
	yml := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: pushback
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 500ms}
`, strings.TrimPrefix(target.URL, "http://"), br.URL)
	prom := testutil.StartPrometheus(t, testutil.PromConfig{Config: yml}).URL

	require.Eventually(t, func() bool {
		return prometheusCounter(t, prom, "prometheus_remote_storage_samples_retried_total") > 0 ||
			prometheusCounter(t, prom, "prometheus_remote_storage_samples_failed_total") > 0
	}, 45*time.Second, 100*time.Millisecond, "Prometheus never sent while the collector pushed back")
	require.Zero(t, prometheusCounter(t, prom, "prometheus_remote_storage_samples_failed_total"), "samples dropped during push-back")
	require.Positive(t, prometheusCounter(t, prom, "prometheus_remote_storage_samples_retried_total"), "Prometheus never retried")
	require.Positive(t, testutil.MetricValue(t, br.Reg, "burnrate_collector_requests_total", map[string]string{"protocol": "remote_write", "code": "503"}))

	release()
	require.Eventually(t, func() bool {
		return testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_accepted_total", map[string]string{"protocol": "remote_write"}) > 0
	}, 30*time.Second, 100*time.Millisecond, "the retried samples never arrived")
	require.Zero(t, prometheusCounter(t, prom, "prometheus_remote_storage_samples_failed_total"), "samples dropped during push-back")
	require.Zero(t, testutil.MetricValue(t, br.Reg, "burnrate_collector_samples_rejected_total", map[string]string{"protocol": "remote_write"}))
}
