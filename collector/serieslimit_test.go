package collector_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// seriesRequest is a remote-write request with one sample at ts for each
// series metric{i="from".."to-1"}.
func seriesRequest(metric string, from, to int, ts time.Time) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := from; i < to; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  labelsOf("__name__", metric, "i", strconv.Itoa(i)),
			Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: 1}},
		})
	}
	return req
}

// TestSeriesLimitHoldsAcrossRestarts fills the active series limit, restarts
// the collector on the same data directory, and requires new series to be
// refused still: the head replayed from the WAL holds the old ones.
func TestSeriesLimitHoldsAcrossRestarts(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxActiveSeries = 5
	dir := t.TempDir()
	now := time.Now()
	t.Run("before the restart the limit admits 5 series", func(t *testing.T) {
		br := startCollector(t, cfg, dir)
		remoteWrite(t, br.URL, seriesRequest("before", 0, 5, now))
		require.Equal(t, 5.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_active_series", nil))
	})
	t.Run("after the restart 5 new series are refused", func(t *testing.T) {
		br := startCollector(t, cfg, dir)
		require.Equal(t, 5.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_active_series", nil))
		code, _, body := post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, seriesRequest("after", 0, 5, now.Add(time.Second))))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "5 of 5 samples rejected (series_limit=5)")
		// The old series still take samples.
		remoteWrite(t, br.URL, seriesRequest("before", 0, 5, now.Add(time.Second)))
		require.Equal(t, 5.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_active_series", nil))
	})
}

// TestRolledBackRequestReleasesItsSeries sends a remote-write request that
// Prometheus's handler rolls back (one sample too old fails the whole 1.0
// request) and requires the series it would have created to leave the
// limit, so that the sender's retry and other series still fit.
func TestRolledBackRequestReleasesItsSeries(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxActiveSeries = 6
	br := startCollector(t, cfg, "")
	now := time.Now()
	remoteWrite(t, br.URL, seriesRequest("old", 0, 1, now))

	failing := seriesRequest("new", 0, 5, now)
	failing.Timeseries = append(failing.Timeseries, seriesRequest("old", 0, 1, now.Add(-2*time.Hour)).Timeseries...)
	code, _, body := post(t, br.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, failing))
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, 1.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_active_series", nil))

	remoteWrite(t, br.URL, seriesRequest("other", 0, 5, now))
	require.Equal(t, 6.0, testutil.MetricValue(t, br.Reg, "burnrate_collector_active_series", nil))
}
