package collector_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// TestRemoteWrite2WrittenHeadersCountOnlyWhatWasWritten sends a remote
// write 2.0 request of which the series limit refuses part, and requires
// the X-Prometheus-Remote-Write-*-Written headers (which 2.0 senders trust
// to know what arrived) to count only the samples the TSDB took.
func TestRemoteWrite2WrittenHeadersCountOnlyWhatWasWritten(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxActiveSeries = 2
	br := startCollector(t, cfg, "")

	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	now := time.Now().UnixMilli()
	for i := range 5 {
		ls := labels.FromStrings("__name__", "rw2_gauge", "i", strconv.Itoa(i))
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now, StartTimestamp: now - 1000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
		})
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	code, h, body := post(t, br.URL+"/api/v1/write", map[string]string{
		"Content-Type":                      "application/x-protobuf;proto=io.prometheus.write.v2.Request",
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "2.0.0",
	}, snappy.Encode(nil, raw))
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "3 of 5 samples rejected (series_limit=3)")
	require.Equal(t, "2", h.Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, "0", h.Get("X-Prometheus-Remote-Write-Histograms-Written"))
	require.Equal(t, 2.0, testutil.MetricValue(t, br.Reg, "prometheus_tsdb_head_series", nil), "series beyond the limit reached the head")
}
