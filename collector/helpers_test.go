package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/burnrate/burnrate/collector"
)

// testCollector is a Collector served by an httptest server on loopback.
type testCollector struct {
	*collector.Collector
	URL string
	Dir string
	Reg *prometheus.Registry
}

// startCollector opens a collector in a fresh directory (or dir, when set),
// serves it and stops it when the test ends.
func startCollector(t testing.TB, cfg collector.Config, dir string) *testCollector {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	c, err := collector.Open(dir, cfg, testLogger(t), reg, reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	c.Mount(mux.Handle)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, c.Close())
	})
	return &testCollector{Collector: c, URL: srv.URL, Dir: dir, Reg: reg}
}

// testConfig is the default configuration without the separate OTLP
// listener (tests never bind fixed ports).
func testConfig() collector.Config {
	cfg := collector.DefaultConfig()
	cfg.OTLPListen = ""
	return cfg
}

// post sends body and returns the status, headers and body of the answer.
func post(t testing.TB, url string, header map[string]string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// remoteWriteBody encodes a remote-write 1.0 request as senders do.
func remoteWriteBody(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

var remoteWriteHeaders = map[string]string{
	"Content-Type":                      "application/x-protobuf",
	"Content-Encoding":                  "snappy",
	"X-Prometheus-Remote-Write-Version": "0.1.0",
}

// remoteWrite posts req to base+"/api/v1/write" and requires a 2xx answer.
func remoteWrite(t testing.TB, base string, req *prompb.WriteRequest) {
	t.Helper()
	code, _, body := post(t, base+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, req))
	require.Less(t, code, 300, "remote write to %s: %d %s", base, code, body)
}

// apiResponse is the Prometheus API envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// apiGet queries a Prometheus API path with form values (POSTed as a form,
// as Grafana does, when post is true).
func apiCall(t testing.TB, base, path string, vals url.Values, usePost bool) (int, apiResponse) {
	t.Helper()
	var (
		resp *http.Response
		err  error
	)
	if usePost {
		resp, err = http.PostForm(base+path, vals)
	} else {
		resp, err = http.Get(base + path + "?" + vals.Encode())
	}
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r apiResponse
	require.NoError(t, json.Unmarshal(b, &r), "body: %s", b)
	return resp.StatusCode, r
}

// counterValue reads a counter or gauge with the given labels from reg.
func counterValue(t testing.TB, reg prometheus.Gatherer, name string, lbls map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range lbls {
				if have[k] != v {
					continue next
				}
			}
			total += metricValue(m)
		}
	}
	return total
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// realPrometheus is one Debian prometheus process shared by the tests of
// this package, with its remote-write receiver on.
var realPrometheus struct {
	once sync.Once
	url  string
	err  error
	cmd  *exec.Cmd
	dir  string
}

// startPrometheus returns the URL of the shared real Prometheus, starting it
// on a free loopback port on first use. Tests skip when it is not installed.
func startPrometheus(t testing.TB) string {
	t.Helper()
	requirePrometheusBinary(t)
	rp := &realPrometheus
	rp.once.Do(func() {
		dir, err := os.MkdirTemp("", "burnrate-prometheus-")
		if err != nil {
			rp.err = err
			return
		}
		rp.dir = dir
		rp.cmd, rp.url, rp.err = launchPrometheus(dir, "global:\n  scrape_interval: 1h\n",
			"--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=3650d")
	})
	require.NoError(t, rp.err)
	return rp.url
}

// launchPrometheus starts Debian's prometheus with configYAML and its
// storage in dir, on a free loopback port, and waits until it is ready.
func launchPrometheus(dir, configYAML string, args ...string) (*exec.Cmd, string, error) {
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o600); err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(prometheusBin, append([]string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, args...)...)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, url, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, "", fmt.Errorf("prometheus did not become ready: %s", stderr.String())
}

const prometheusBin = "/usr/bin/prometheus"

// requirePrometheusBinary skips the test when Debian's prometheus is absent.
func requirePrometheusBinary(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("%s is not installed (apt-get install prometheus): the comparison with the real Prometheus needs it", prometheusBin)
	}
}

func stopPrometheus() {
	rp := &realPrometheus
	if rp.cmd != nil && rp.cmd.Process != nil {
		_ = rp.cmd.Process.Kill()
		_ = rp.cmd.Wait()
	}
	if rp.dir != "" {
		_ = os.RemoveAll(rp.dir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopPrometheus()
	os.Exit(code)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func labelsOf(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func marshalMetricsJSON(md pmetric.Metrics) ([]byte, error) {
	var m pmetric.JSONMarshaler
	return m.MarshalMetrics(md)
}

// testLogger writes through t.Log, so output shows only for failing tests.
// (internal/testutil has the same, but importing it would build the whole
// app into this package's tests.)
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
