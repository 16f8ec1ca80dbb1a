package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
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
//
// The series continue across drills: a drill after another writes only the
// time since the last history sample, carrying its counters on, so two
// histories never stack in one window (that would halve the burn rates).
func writeHistory(ctx context.Context, q *Querier, token string, rate float64, span time.Duration, now time.Time) (int, error) {
	base := q.Base
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
	// the edge of what the TSDB accepts; or after the last history sample.
	start, base0 := now.Add(-span+HistoryStep), 0.0
	lastAt, lastV, ok, err := q.last(ctx, metric+`_count{instance="`+HistoryInstance+`"}`, span)
	if err != nil {
		return 0, fmt.Errorf("read the last history sample: %w", err)
	}
	if ok && lastAt.After(start.Add(-HistoryStep)) {
		start, base0 = lastAt.Add(HistoryStep), lastV+rate*HistoryStep.Seconds()
	}
	var ts []prompb.TimeSeries
	n := 0
	for _, s := range series {
		var samples []prompb.Sample
		for t := start; !t.After(now); t = t.Add(HistoryStep) {
			v := (base0 + rate*t.Sub(start).Seconds()) * s.per
			samples = append(samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
		}
		n += len(samples)
		ts = append(ts, prompb.TimeSeries{Labels: s.labels, Samples: samples})
	}
	if n == 0 {
		return 0, nil
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

// last returns the newest raw sample of the series selector within span
// (the highest when several match).
func (q *Querier) last(ctx context.Context, selector string, span time.Duration) (time.Time, float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		q.Base+"/api/v1/query?query="+url.QueryEscape(selector+"["+model.Duration(span).String()+"]"), nil)
	if err != nil {
		return time.Time{}, 0, false, err
	}
	resp, err := q.HTTP.Do(req)
	if err != nil {
		return time.Time{}, 0, false, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return time.Time{}, 0, false, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return time.Time{}, 0, false, errors.New(body.Error)
	}
	var at time.Time
	var v float64
	found := false
	for _, r := range body.Data.Result {
		if len(r.Values) == 0 {
			continue
		}
		p := r.Values[len(r.Values)-1]
		var secs float64
		var val string
		if json.Unmarshal(p[0], &secs) != nil || json.Unmarshal(p[1], &val) != nil {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		t := time.UnixMilli(int64(secs * 1000))
		if !found || t.After(at) {
			at, v, found = t, f, true
		}
	}
	return at, v, found, nil
}
