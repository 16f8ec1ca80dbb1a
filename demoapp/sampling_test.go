package demoapp_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/edge"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// The acceptance test of sampling: burnrate up keeping a tenth of the
// traces, under load with a tenth of the API's answers failing. Every 5xx
// answer's trace (named by its traceresponse header) is on the trace API,
// most successful ones are not, and every exemplar of the edge's latency
// histogram (what alerts' example traces are taken from) leads to a stored
// trace.
func TestWithSamplingEveryFailedRequestsTraceAndEveryExemplarIsStored(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: load through burnrate up and several export intervals")
	}
	opts := app.DefaultOptions()
	opts.Demo.Load.Enabled = false
	opts.Demo.TraceSampleRatio = 0.1
	opts.Demo.MetricInterval = 500 * time.Millisecond
	opts.Demo.RateLimit = 1e6 // the test's clients are one address
	r := apptest.StartApp(t, opts)
	edgeURL := r.EdgeURL()
	require.NotEmpty(t, edgeURL)
	req, err := http.NewRequest(http.MethodPut, r.URL+"/api/v1/demo/faults/api.error_fraction", strings.NewReader(`{"value":"0.1"}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	start := time.Now()

	// 1,200 requests from 12 clients at once: about 120 fail.
	var (
		mu           sync.Mutex
		failed, good []string
	)
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for c := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(c)))
			for range 100 {
				resp, err := client.Get(fmt.Sprintf("%s/api/products/%d", edgeURL, rng.Intn(2000)))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				id := traceID(resp.Header.Get(edge.TraceResponseHeader))
				mu.Lock()
				switch {
				case id == "":
				case resp.StatusCode >= 500:
					failed = append(failed, id)
				case resp.StatusCode == http.StatusOK:
					good = append(good, id)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Greater(t, len(failed), 50, "the fault makes about a tenth of the answers fail")
	require.Greater(t, len(good), 500)

	stored := func(id string) bool {
		code, _ := testutil.HTTPGet(t, r.URL+"/api/v1/traces/"+id)
		return code == http.StatusOK
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var missing []string
		for _, id := range failed {
			if !stored(id) {
				missing = append(missing, id)
			}
		}
		assert.Empty(c, missing, "failed requests' traces not stored: %d of %d", len(missing), len(failed))
	}, 30*time.Second, 500*time.Millisecond)
	code, body := testutil.HTTPGet(t, r.URL+"/api/v1/traces/"+failed[0])
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "demo-edge", "the root span of a failed trace is kept")
	require.Contains(t, body, "demo-api", "and the span of the tier that failed")

	kept := 0
	for _, id := range good {
		if stored(id) {
			kept++
		}
	}
	require.Less(t, kept, len(good)/3, "sampling keeps about a tenth of the successful traces, not all of them")
	require.Positive(t, kept, "and some")

	// Exemplars: every one on the edge's histogram, whatever its status,
	// names a stored trace; among them are failed requests.
	q := url.Values{
		"query": {`http_server_request_duration_seconds_bucket{job="demo-edge"}`},
		"start": {start.Add(-time.Minute).Format(time.RFC3339)},
		"end":   {time.Now().Add(time.Minute).Format(time.RFC3339)},
	}
	var ex struct {
		Data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	var ids []string
	failedExemplars := 0
	require.Eventually(t, func() bool {
		code, body := testutil.HTTPGet(t, r.URL+"/api/v1/query_exemplars?"+q.Encode())
		if code != http.StatusOK || json.Unmarshal([]byte(body), &ex) != nil {
			return false
		}
		ids, failedExemplars = ids[:0], 0
		for _, s := range ex.Data {
			for _, e := range s.Exemplars {
				ids = append(ids, e.Labels["trace_id"])
				if strings.HasPrefix(s.SeriesLabels["http_response_status_code"], "5") {
					failedExemplars++
				}
			}
		}
		return failedExemplars > 0
	}, 30*time.Second, 500*time.Millisecond, "no exemplar of a failed request")
	for _, id := range ids {
		require.True(t, stored(id), "exemplar trace %s is not stored", id)
	}
}

// traceID is the trace ID of a traceresponse value.
func traceID(v string) string {
	parts := strings.Split(v, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}
