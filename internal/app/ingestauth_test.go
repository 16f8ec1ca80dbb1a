package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/httpserver"
	"github.com/burnrate/burnrate/internal/testutil"
)

func pushOTLP(t *testing.T, u, token, metric string) int {
	t.Helper()
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(metric)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetDoubleValue(1)
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func pushRemoteWrite(t *testing.T, u, token, metric string) int {
	t.Helper()
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: metric}, {Name: "job", Value: "auth"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}}}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// seriesCount is how many series the query API finds for selector.
func seriesCount(t *testing.T, base, selector string) int {
	t.Helper()
	code, body := testutil.HTTPGet(t, base+"/api/v1/series?match[]="+url.QueryEscape(selector))
	require.Equal(t, http.StatusOK, code, body)
	var res struct {
		Data []map[string]string `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res), body)
	return len(res.Data)
}

// TestIngestRequiresATokenWithTheIngestScope: with collector.require_token,
// OTLP (on both listeners) and remote write answer 401 without a token and
// 403 with one lacking the ingest scope, and store nothing of either.
func TestIngestRequiresATokenWithTheIngestScope(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.Collector.RequireToken = true
	opts.Collector.OTLPListen = "127.0.0.1:0"
	opts.APITokens = []httpserver.Token{
		{Name: "otel", Token: "otel-ingest-s3cret", Scopes: []string{httpserver.ScopeIngest}},
		{Name: "dashboard", Token: "dashboard-s3cret", Scopes: []string{httpserver.ScopeRead}},
	}
	r := apptest.StartApp(t, opts)
	var otlpURL string
	for _, e := range r.Endpoints() {
		if e.Name == "otlp" && e.URL != r.URL+"/v1/metrics" {
			otlpURL = e.URL
		}
	}
	require.NotEmpty(t, otlpURL, "the OTLP listener's URL is printed")

	for _, u := range []string{r.URL + "/v1/metrics", otlpURL} {
		require.Equal(t, http.StatusUnauthorized, pushOTLP(t, u, "", "forged_sli"), u)
		require.Equal(t, http.StatusUnauthorized, pushOTLP(t, u, "not-a-token", "forged_sli"), u)
		require.Equal(t, http.StatusForbidden, pushOTLP(t, u, "dashboard-s3cret", "forged_sli"), u)
	}
	require.Equal(t, http.StatusUnauthorized, pushRemoteWrite(t, r.URL+"/api/v1/write", "", "forged_rw"))
	require.Equal(t, http.StatusForbidden, pushRemoteWrite(t, r.URL+"/api/v1/write", "dashboard-s3cret", "forged_rw"))
	require.Zero(t, seriesCount(t, r.URL, "forged_sli"), "refused samples are not stored")
	require.Zero(t, seriesCount(t, r.URL, "forged_rw"), "refused samples are not stored")

	require.Equal(t, http.StatusOK, pushOTLP(t, otlpURL, "otel-ingest-s3cret", "good_sli"))
	require.Equal(t, http.StatusOK, pushOTLP(t, r.URL+"/v1/metrics", "otel-ingest-s3cret", "good_sli_main"))
	require.Equal(t, http.StatusNoContent, pushRemoteWrite(t, r.URL+"/api/v1/write", "otel-ingest-s3cret", "good_rw"))
	require.Equal(t, 1, seriesCount(t, r.URL, "good_sli"))
	require.Equal(t, 1, seriesCount(t, r.URL, "good_sli_main"))
	require.Equal(t, 1, seriesCount(t, r.URL, "good_rw"))
}

// TestRequireTokenWithoutAnIngestTokenIsRefused: nothing could push, so the
// configuration is an error naming the key, not a silent dead collector.
func TestRequireTokenWithoutAnIngestTokenIsRefused(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Collector.RequireToken = true
	opts.APITokens = []httpserver.Token{{Name: "dashboard", Token: "dashboard-s3cret", Scopes: []string{httpserver.ScopeRead}}}
	require.ErrorContains(t, opts.Validate(), "collector.require_token")
	opts.APIToken = "legacy-admin-token"
	require.NoError(t, opts.Validate(), "the legacy api_token is an admin, so it may push")
}

// TestTheDemoExportsWithTheTokenWhenIngestRequiresOne: `up` with
// collector.require_token still gets the demo's telemetry in.
func TestTheDemoExportsWithTheTokenWhenIngestRequiresOne(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Collector.RequireToken = true
	opts.APITokens = []httpserver.Token{{Name: "otel", Token: "otel-ingest-s3cret", Scopes: []string{httpserver.ScopeIngest}}}
	opts.Demo.MetricInterval = time.Second
	r := apptest.StartApp(t, opts)
	require.Eventually(t, func() bool {
		return seriesCount(t, r.URL, `{job="demo-edge"}`) > 0
	}, 30*time.Second, 200*time.Millisecond, "the demo's metrics arrive with its token")
}
