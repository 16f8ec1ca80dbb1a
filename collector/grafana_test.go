package collector_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// TestGrafanaDataSourceRequests replays what Grafana's Prometheus data
// source sends (save & test, panels, autocomplete, rules) and checks the
// parts of the answers Grafana parses.
func TestGrafanaDataSourceRequests(t *testing.T) {
	br := startCollector(t, testConfig(), "")
	now := time.Now()
	remoteWrite(t, br.URL, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  labelsOf("__name__", "grafana_probe_total", "job", "g", "route", "/a"),
		Samples: []prompb.Sample{{Timestamp: now.Add(-time.Minute).UnixMilli(), Value: 1}, {Timestamp: now.UnixMilli(), Value: 5}},
	}}})
	raw := func(method, path, query, form string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, br.URL+path+"?"+query, strings.NewReader(form))
		require.NoError(t, err)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	end := strconv.FormatInt(now.Unix()+30, 10)

	t.Run("save and test posts 1+1 at time 4", func(t *testing.T) {
		code, body := raw("POST", "/api/v1/query", "", "query=1%2B1&time=4")
		require.Equal(t, 200, code)
		require.JSONEq(t, `{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}`, body)
	})
	t.Run("buildinfo has a version and no features, so Grafana does not take it for Mimir", func(t *testing.T) {
		code, body := raw("GET", "/api/v1/status/buildinfo", "", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"version":"`)
		require.NotContains(t, body, `"features"`)
	})
	t.Run("a panel posts a range query with fractional step and URL parameters merged", func(t *testing.T) {
		code, body := raw("POST", "/api/v1/query_range", "timeout=30s&end="+end, "query=rate(grafana_probe_total[5m])&start="+strconv.FormatInt(now.Unix()-600, 10)+"&step=14.5")
		require.Equal(t, 200, code, body)
		require.Less(t, strings.Index(body, `"resultType"`), strings.Index(body, `"result"`), "resultType must come first")
		require.Contains(t, body, `"route":"/a"`)
	})
	t.Run("an instant query at a fractional time answers values as strings", func(t *testing.T) {
		code, body := raw("POST", "/api/v1/query", "", "query=grafana_probe_total&time="+end+".25")
		require.Equal(t, 200, code, body)
		require.Contains(t, body, `.250,"5"]`)
	})
	t.Run("autocomplete lists metric names, labels and series", func(t *testing.T) {
		code, body := raw("GET", "/api/v1/label/__name__/values", "", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"grafana_probe_total"`)
		code, body = raw("POST", "/api/v1/labels", "", url.Values{"match[]": {"grafana_probe_total", `{job="g"}`}, "limit": {"10"}}.Encode())
		require.Equal(t, 200, code, body)
		require.Contains(t, body, `"route"`)
		code, body = raw("POST", "/api/v1/series", "", url.Values{"match[]": {"grafana_probe_total"}, "start": {"0"}, "end": {end}}.Encode())
		require.Equal(t, 200, code, body)
		require.Contains(t, body, `"__name__":"grafana_probe_total"`)
		code, body = raw("GET", "/api/v1/metadata", "", "")
		require.Equal(t, 200, code, body)
	})
	t.Run("label values over POST get 405 so that Grafana retries with GET", func(t *testing.T) {
		code, _ := raw("POST", "/api/v1/label/route/values", "", "x=1")
		require.Equal(t, http.StatusMethodNotAllowed, code)
		code, body := raw("GET", "/api/v1/label/route/values", "", "")
		require.Equal(t, 200, code)
		require.JSONEq(t, `{"status":"success","data":["/a"]}`, body)
	})
	t.Run("rules answers empty groups", func(t *testing.T) {
		code, body := raw("GET", "/api/v1/rules", "", "")
		require.Equal(t, 200, code)
		require.JSONEq(t, `{"status":"success","data":{"groups":[]}}`, body)
	})
	t.Run("the exemplar probe answers success", func(t *testing.T) {
		code, body := raw("POST", "/api/v1/query_exemplars", "", "query=test&start="+strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)+"&end="+end)
		require.Equal(t, 200, code, body)
		require.JSONEq(t, `{"status":"success","data":[]}`, body)
		// Grafana's probe sends milliseconds; Prometheus reads them as
		// seconds far in the future and answers success, and so must we.
		code, body = raw("GET", "/api/v1/query_exemplars", "query=test&start="+strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10)+"&end="+strconv.FormatInt(now.UnixMilli(), 10), "")
		require.Equal(t, 200, code, body)
		require.JSONEq(t, `{"status":"success","data":[]}`, body)
	})
	t.Run("bad PromQL is a bad_data error in Prometheus's envelope", func(t *testing.T) {
		code, body := raw("POST", "/api/v1/query", "", "query=sum(")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, `"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"`)
	})
}
