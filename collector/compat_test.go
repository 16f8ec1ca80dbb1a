package collector_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// compatSeries is the data both Burnrate and the real Prometheus receive:
// counters (with a reset), a classic histogram and a gauge, two hours at a
// 15s interval. Sample timestamps sit 7.3s off the minute grid so that no
// evaluation time or range boundary falls on a sample: Prometheus 3 (the
// embedded library) excludes a sample exactly at t-range, 2.42 includes it,
// and this comparison is about everything else.
func compatSeries(base time.Time) []*prompb.WriteRequest {
	const (
		steps   = 480
		perReq  = 40
		offset  = 7300 * time.Millisecond
		spacing = 15 * time.Second
	)
	rng := rand.New(rand.NewPCG(1, 2))
	type counter struct {
		labels []prompb.Label
		v      float64
		rate   float64
		reset  int // step at which the counter restarts from zero, or -1
	}
	var counters []*counter
	for _, inst := range []string{"a", "b"} {
		for _, code := range []string{"200", "500"} {
			r := 20.0
			if code == "500" {
				r = 0.4
			}
			reset := -1
			if inst == "b" && code == "200" {
				reset = 300
			}
			counters = append(counters, &counter{
				labels: labelsOf("__name__", "http_requests_total", "job", "api", "instance", inst, "code", code, "method", "GET"),
				rate:   r, reset: reset,
			})
		}
	}
	bounds := []string{"0.05", "0.1", "0.25", "0.5", "1", "+Inf"}
	type hist struct {
		inst    string
		buckets []float64
		sum     float64
	}
	hists := []*hist{{inst: "a", buckets: make([]float64, len(bounds))}, {inst: "b", buckets: make([]float64, len(bounds))}}
	rooms := []string{"attic", "hall", "kitchen"}
	temps := []float64{12, 19, 22}

	var reqs []*prompb.WriteRequest
	series := map[string]*prompb.TimeSeries{}
	var order []string
	add := func(lbls []prompb.Label, ts int64, v float64) {
		key := fmt.Sprint(lbls)
		s, ok := series[key]
		if !ok {
			s = &prompb.TimeSeries{Labels: lbls}
			series[key] = s
			order = append(order, key)
		}
		s.Samples = append(s.Samples, prompb.Sample{Timestamp: ts, Value: v})
	}
	flush := func() {
		req := &prompb.WriteRequest{}
		for _, k := range order {
			req.Timeseries = append(req.Timeseries, *series[k])
		}
		reqs = append(reqs, req)
		series = map[string]*prompb.TimeSeries{}
		order = nil
	}
	for i := range steps {
		ts := base.Add(time.Duration(i)*spacing + offset).UnixMilli()
		for _, c := range counters {
			if i == c.reset {
				c.v = 0
			}
			c.v += float64(rng.IntN(int(c.rate*30) + 1))
			add(c.labels, ts, c.v)
		}
		for _, h := range hists {
			for range 25 {
				d := rng.ExpFloat64() * 0.12
				h.sum += d
				for bi, b := range bounds {
					bf, _ := strconv.ParseFloat(b, 64)
					if d <= bf {
						h.buckets[bi]++
					}
				}
			}
			for bi, b := range bounds {
				add(labelsOf("__name__", "http_request_duration_seconds_bucket", "job", "api", "instance", h.inst, "le", b), ts, h.buckets[bi])
			}
			add(labelsOf("__name__", "http_request_duration_seconds_sum", "job", "api", "instance", h.inst), ts, h.sum)
			add(labelsOf("__name__", "http_request_duration_seconds_count", "job", "api", "instance", h.inst), ts, h.buckets[len(bounds)-1])
		}
		for ri, room := range rooms {
			temps[ri] += rng.Float64() - 0.5
			add(labelsOf("__name__", "temperature_celsius", "job", "sensors", "room", room), ts, temps[ri])
		}
		if (i+1)%perReq == 0 {
			flush()
		}
	}
	if len(order) > 0 {
		flush()
	}
	return reqs
}

// normalised is an API answer with results sorted by labels, so that two
// servers that list the same series in another order compare equal.
type normalised struct {
	Code      int
	Status    string
	ErrorType string
	Error     string
	Type      string
	Result    []resultItem
}

type resultItem struct {
	Labels string
	Points [][2]any // [timestamp, value string]
}

func normalise(t *testing.T, code int, r apiResponse) normalised {
	t.Helper()
	n := normalised{Code: code, Status: r.Status, ErrorType: r.ErrorType, Error: r.Error}
	if r.Status != "success" {
		return n
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	n.Type = d.ResultType
	switch d.ResultType {
	case "vector", "matrix":
		var items []struct {
			Metric map[string]string `json:"metric"`
			Value  *[2]any           `json:"value"`
			Values [][2]any          `json:"values"`
		}
		require.NoError(t, json.Unmarshal(d.Result, &items))
		for _, it := range items {
			keys := make([]string, 0, len(it.Metric))
			for k := range it.Metric {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var sb strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&sb, "%s=%q,", k, it.Metric[k])
			}
			ri := resultItem{Labels: sb.String(), Points: it.Values}
			if it.Value != nil {
				ri.Points = [][2]any{*it.Value}
			}
			n.Result = append(n.Result, ri)
		}
		sort.Slice(n.Result, func(i, j int) bool { return n.Result[i].Labels < n.Result[j].Labels })
	default:
		var p [2]any
		require.NoError(t, json.Unmarshal(d.Result, &p))
		n.Result = []resultItem{{Points: [][2]any{p}}}
	}
	return n
}

// requireSameAnswer compares a Prometheus answer (want) with Burnrate's.
// Two differences between Prometheus 2.42 and the embedded Prometheus 3
// library are allowed, and only these: sum and avg use Kahan summation since
// Prometheus 2.50, which can change the last digit of a float (values must
// agree to 1e-12 relative); and Prometheus 3 prefixes a few range-query
// parse errors with `invalid parameter "query": ` (the 2.42 message must be
// contained in Burnrate's). Everything else (status codes, error types,
// series, labels, timestamps, NaN/Inf) must be identical.
func requireSameAnswer(t *testing.T, want, got normalised, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want.Code, got.Code, msgAndArgs...)
	require.Equal(t, want.Status, got.Status, msgAndArgs...)
	require.Equal(t, want.ErrorType, got.ErrorType, msgAndArgs...)
	require.Contains(t, got.Error, want.Error, msgAndArgs...)
	require.Equal(t, want.Type, got.Type, msgAndArgs...)
	if want.Status == "success" {
		require.NotEmpty(t, want.Result, msgAndArgs...) // a comparison of nothing proves nothing
	}
	require.Len(t, got.Result, len(want.Result), msgAndArgs...)
	for i := range want.Result {
		w, g := want.Result[i], got.Result[i]
		require.Equal(t, w.Labels, g.Labels, msgAndArgs...)
		require.Len(t, g.Points, len(w.Points), msgAndArgs...)
		for j := range w.Points {
			require.Equal(t, w.Points[j][0], g.Points[j][0], msgAndArgs...)
			ws, gs := w.Points[j][1].(string), g.Points[j][1].(string)
			if ws == gs {
				continue
			}
			wf, err1 := strconv.ParseFloat(ws, 64)
			gf, err2 := strconv.ParseFloat(gs, 64)
			require.NoError(t, err1)
			require.NoError(t, err2)
			require.InEpsilon(t, wf, gf, 1e-12, msgAndArgs...)
		}
	}
}

// TestQueriesMatchRealPrometheus loads the same series into Burnrate and into
// the Debian prometheus (2.42) over remote write, then requires identical
// answers, errors included, for instant and range queries over GET and POST.
func TestQueriesMatchRealPrometheus(t *testing.T) {
	promURL := startPrometheus(t)
	br := startCollector(t, testConfig(), "")

	// A base per run keeps the shared Prometheus free of earlier runs' data
	// in the queried window; recent enough for its head.
	base := time.Now().Add(-150 * time.Minute).Truncate(time.Minute)
	for _, req := range compatSeries(base) {
		remoteWrite(t, promURL, req)
		remoteWrite(t, br.URL, req)
	}
	at := func(d time.Duration) string { return strconv.FormatInt(base.Add(d).Unix(), 10) }
	run := func(d time.Duration) string { return fmt.Sprintf("%d.5", base.Add(d).Unix()) }

	instant := []struct {
		name, query string
	}{
		{"a per-series rate", `rate(http_requests_total[5m])`},
		{"a rate over a counter reset", `rate(http_requests_total{instance="b"}[10m])`},
		{"an increase over an hour", `increase(http_requests_total[1h])`},
		{"an irate", `irate(http_requests_total[2m])`},
		{"an error ratio of sums", `sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))`},
		{"a sum by label", `sum by (code) (rate(http_requests_total[5m]))`},
		{"a p99 over aggregated buckets", `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`},
		{"a per-instance median", `histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[10m]))`},
		{"a mean latency", `rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])`},
		{"a gauge average over time", `avg_over_time(temperature_celsius[10m])`},
		{"a gauge quantile over time", `quantile_over_time(0.9, temperature_celsius[30m])`},
		{"a topk", `topk(2, temperature_celsius)`},
		{"a count and a max", `count(http_requests_total) + max(temperature_celsius)`},
		{"a comparison filter", `temperature_celsius > 15`},
		{"a delta and a deriv", `delta(temperature_celsius[15m]) + deriv(temperature_celsius[15m])`},
		{"an absent series", `absent(no_such_metric)`},
		{"a label_replace", `label_replace(temperature_celsius, "floor", "$1", "room", "(.).*")`},
		{"a scalar", `1+1`},
		{"a subquery", `max_over_time(rate(http_requests_total[5m])[30m:1m])`},
		{"a parse error", `sum(`},
		{"a type error", `rate(temperature_celsius)`},
		{"an unknown function", `no_such_function(temperature_celsius)`},
		{"an empty selector", `{}`},
	}
	for _, tc := range instant {
		t.Run("instant query gives the same answer for "+tc.name, func(t *testing.T) {
			for _, ts := range []string{at(30 * time.Minute), at(61 * time.Minute), run(119 * time.Minute)} {
				vals := url.Values{"query": {tc.query}, "time": {ts}}
				for _, usePost := range []bool{false, true} {
					pc, pr := apiCall(t, promURL, "/api/v1/query", vals, usePost)
					bc, brr := apiCall(t, br.URL, "/api/v1/query", vals, usePost)
					requireSameAnswer(t, normalise(t, pc, pr), normalise(t, bc, brr), "query %q at %s (POST %v)", tc.query, ts, usePost)
				}
			}
		})
	}

	ranges := []struct {
		name, query, step string
	}{
		{"a rate on a minute grid", `sum by (instance) (rate(http_requests_total[5m]))`, "60"},
		{"a p95 on an odd step", `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`, "17"},
		{"a gauge on a fractional step", `temperature_celsius`, "42.5"},
		{"a ratio", `sum(rate(http_requests_total{code="500"}[10m])) / sum(rate(http_requests_total[10m]))`, "300"},
		{"a step of zero", `temperature_celsius`, "0"},
		{"a parse error", `rate(`, "60"},
	}
	for _, tc := range ranges {
		t.Run("range query gives the same answer for "+tc.name, func(t *testing.T) {
			vals := url.Values{"query": {tc.query}, "start": {at(10 * time.Minute)}, "end": {at(115 * time.Minute)}, "step": {tc.step}}
			for _, usePost := range []bool{false, true} {
				pc, pr := apiCall(t, promURL, "/api/v1/query_range", vals, usePost)
				bc, brr := apiCall(t, br.URL, "/api/v1/query_range", vals, usePost)
				requireSameAnswer(t, normalise(t, pc, pr), normalise(t, bc, brr), "range query %q (POST %v)", tc.query, usePost)
			}
		})
	}

	t.Run("metadata endpoints list the same series, labels and values", func(t *testing.T) {
		window := url.Values{"start": {at(0)}, "end": {at(130 * time.Minute)}}
		for _, c := range []struct {
			path string
			vals url.Values
		}{
			{"/api/v1/labels", window},
			{"/api/v1/label/room/values", window},
			{"/api/v1/label/__name__/values", window},
			{"/api/v1/series", url.Values{"match[]": {`temperature_celsius`, `http_requests_total{code="500"}`}, "start": window["start"], "end": window["end"]}},
			{"/api/v1/series", url.Values{}},
		} {
			pc, pr := apiCall(t, promURL, c.path, c.vals, false)
			bc, brr := apiCall(t, br.URL, c.path, c.vals, false)
			require.Equal(t, pc, bc, c.path)
			require.Equal(t, pr.Status, brr.Status, c.path)
			require.Equal(t, pr.ErrorType, brr.ErrorType, c.path)
			if pr.Status == "success" {
				var pd, bd []any
				require.NoError(t, json.Unmarshal(pr.Data, &pd))
				require.NoError(t, json.Unmarshal(brr.Data, &bd))
				sortAny(pd)
				sortAny(bd)
				require.Equal(t, pd, bd, c.path)
			}
		}
	})

	t.Run("promtool queries Burnrate as it queries Prometheus", func(t *testing.T) {
		const promtool = "/usr/bin/promtool"
		if _, err := os.Stat(promtool); err != nil {
			t.Skipf("%s is not installed (apt-get install prometheus): needed to query with promtool", promtool)
		}
		for _, args := range [][]string{
			{"query", "instant", "--time", at(61 * time.Minute), "URL", `sum by (code) (rate(http_requests_total[5m]))`},
			{"query", "range", "--start", at(60 * time.Minute), "--end", at(70 * time.Minute), "--step", "1m", "URL", `histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`},
			{"query", "series", "--match", "temperature_celsius", "URL"},
			{"query", "labels", "URL", "room"},
		} {
			outs := map[string]string{}
			for name, u := range map[string]string{"prometheus": promURL, "burnrate": br.URL} {
				a := slices.Clone(args)
				a[slices.Index(a, "URL")] = u
				out, err := exec.Command(promtool, a...).CombinedOutput()
				require.NoError(t, err, "promtool %v against %s: %s", a, name, out)
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				sort.Strings(lines)
				outs[name] = strings.Join(lines, "\n")
			}
			require.NotEmpty(t, outs["burnrate"])
			require.Equal(t, outs["prometheus"], outs["burnrate"], "promtool %v", args)
		}
	})
}

func sortAny(v []any) {
	sort.Slice(v, func(i, j int) bool {
		a, _ := json.Marshal(v[i])
		b, _ := json.Marshal(v[j])
		return string(a) < string(b)
	})
}
