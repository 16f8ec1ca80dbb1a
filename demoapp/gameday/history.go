package gameday

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// HistoryStep is the spacing of the steady-state samples.
const HistoryStep = 15 * time.Second

// HistoryInstance is the instance label of the steady-state series, so they
// can be told from (and deleted apart from) the platform's own.
const HistoryInstance = "gameday-history"

// writeHistory gives the platform a steady state before the first fault: it
// remote-writes `span` of good traffic at rate requests/s, ending now, as
// the edge's otelhttp histogram (job="demo-edge", every request a 200
// answered within 250ms). Every SLO window up to span is then full when the
// fault starts, so burn rates are those of a platform that has been serving,
// not of its first minutes. The series carry instance="gameday-history".
func writeHistory(ctx context.Context, base, token string, rate float64, span time.Duration, now time.Time) (int, error) {
	metric := "http_server_request_duration_seconds"
	labels := func(name string, extra ...string) []prompb.Label {
		ls := []prompb.Label{
			{Name: "__name__", Value: name},
			{Name: "http_request_method", Value: "GET"},
			{Name: "http_response_status_code", Value: "200"},
			{Name: "http_route", Value: "/api/products/{id}"},
			{Name: "instance", Value: HistoryInstance},
			{Name: "job", Value: "demo-edge"},
		}
		for i := 0; i+1 < len(extra); i += 2 {
			ls = append(ls, prompb.Label{Name: extra[i], Value: extra[i+1]})
		}
		return ls
	}
	series := []struct {
		labels []prompb.Label
		per    float64 // value per request
	}{
		{labels(metric + "_count"), 1},
		{labels(metric+"_bucket", "le", "0.25"), 1},
		{labels(metric+"_bucket", "le", "+Inf"), 1},
		{labels(metric + "_sum"), 0.01},
	}
	// Start one step inside the span, so that the oldest sample is not on
	// the edge of what the TSDB accepts.
	start := now.Add(-span + HistoryStep)
	var ts []prompb.TimeSeries
	n := 0
	for _, s := range series {
		var samples []prompb.Sample
		for t := start; !t.After(now); t = t.Add(HistoryStep) {
			v := rate * t.Sub(start).Seconds() * s.per
			samples = append(samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
		}
		n += len(samples)
		ts = append(ts, prompb.TimeSeries{Labels: s.labels, Samples: samples})
	}
	raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("remote write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("remote write: %s: %s (more than an hour of history needs collector.tsdb.out_of_order_window at least as long)",
			resp.Status, strings.TrimSpace(string(b)))
	}
	return n, nil
}

func historyText(span time.Duration, rate float64, samples int) string {
	return fmt.Sprintf("%s of good traffic at %s/s remote-written before the first fault (%d samples, instance=%q)",
		span, strconv.FormatFloat(rate, 'g', -1, 64), samples, HistoryInstance)
}
