package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/burnrate/burnrate/collector"
	"github.com/burnrate/burnrate/internal/testutil"
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
	c, err := collector.Open(collector.Options{Dir: dir, Config: cfg, Logger: testutil.Logger(t), Registerer: reg, Gatherer: reg})
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

// realPrometheus is one Debian prometheus process shared by the tests of
// this package, with its remote-write receiver on.
var realPrometheus struct {
	once sync.Once
	p    *testutil.Server
	err  error
	dir  string
}

// startPrometheus returns the URL of the shared real Prometheus, starting it
// on a free loopback port on first use. Tests skip when it is not installed.
func startPrometheus(t testing.TB) string {
	t.Helper()
	testutil.NeedBinary(t, testutil.PrometheusBin)
	rp := &realPrometheus
	rp.once.Do(func() {
		dir, err := os.MkdirTemp("", "burnrate-prometheus-")
		if err != nil {
			rp.err = err
			return
		}
		rp.dir = dir
		rp.p, rp.err = testutil.LaunchPrometheus(dir, testutil.PromConfig{
			Args: []string{"--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=3650d"},
		})
	})
	require.NoError(t, rp.err)
	return rp.p.URL
}

func stopPrometheus() {
	rp := &realPrometheus
	if rp.p != nil {
		rp.p.Stop()
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
