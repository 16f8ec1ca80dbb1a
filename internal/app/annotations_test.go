package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestFaultAndIncidentEventsBecomeAnnotationSeries: a fault flag set and an
// incident declared show up as series Grafana's Prometheus data source can
// draw as annotations, at the time they happened.
func TestFaultAndIncidentEventsBecomeAnnotationSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo platform")
	}
	opts := app.DefaultOptions()
	opts.Demo.Load.Enabled = false
	r := apptest.StartApp(t, opts)

	req, err := http.NewRequest(http.MethodPut, r.URL+"/api/v1/demo/faults/api.latency", strings.NewReader(`{"value":"50ms","source":"test"}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	code, body := post(t, r.URL+"/api/v1/incidents", "", `{"title":"Slow API","severity":"SEV3","service":"demo-api","by":"test"}`)
	require.Equal(t, http.StatusCreated, code, body)
	at := time.Now()

	series := func(q string) []map[string]string {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/series?"+url.Values{"match[]": {q}, "start": {"0"}}.Encode())
		var res struct{ Data []map[string]string }
		require.NoError(t, json.Unmarshal([]byte(body), &res), body)
		return res.Data
	}
	require.Eventually(t, func() bool {
		f := series(`burnrate_demo_fault_event{flag="api.latency"}`)
		i := series(`burnrate_incident_event{service="demo-api"}`)
		return len(f) > 0 && len(i) > 0
	}, 30*time.Second, 250*time.Millisecond)
	f := series(`burnrate_demo_fault_event{flag="api.latency"}`)[0]
	require.Equal(t, "50ms", f["value"])
	require.Equal(t, "test", f["source"])
	i := series(`burnrate_incident_event{service="demo-api"}`)[0]
	require.Equal(t, "1", i["incident_id"])
	require.Equal(t, "SEV3", i["severity"])

	// The sample sits at the event's time, not when it was written.
	_, body = testutil.HTTPGet(t, r.URL+"/api/v1/query?"+url.Values{"query": {`timestamp(burnrate_demo_fault_event{flag="api.latency"})`}, "time": {strconvTime(at.Add(time.Minute))}}.Encode())
	var q struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &q), body)
	require.NotEmpty(t, q.Data.Result)
	ts, err := strconvParse(q.Data.Result[0].Value[1])
	require.NoError(t, err)
	require.InDelta(t, float64(at.Unix()), ts, 5, "the fault was set just before %s", at)
}

func strconvTime(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func strconvParse(v any) (float64, error) {
	s, _ := v.(string)
	return strconv.ParseFloat(s, 64)
}
