package sloengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
)

// Sample is one series of an instant query result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Querier is the query side of a Prometheus-compatible backend. The engine
// only ever needs instant vectors and range results of one series.
type Querier interface {
	// Query evaluates q at ts.
	Query(ctx context.Context, q string, ts time.Time) ([]Sample, error)
	// QueryRange evaluates q from start to end every step and returns the
	// value of its single series by Unix millisecond timestamp.
	QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (map[int64]float64, error)
}

// ErrManySeries is returned when an SLI query yields more than one series:
// SLI queries must aggregate to one (sum(...)).
var ErrManySeries = errors.New("query returns more than one series; SLI queries must aggregate to a single series, e.g. with sum(...)")

// scalar reads the single value of q; ok is false when q returns nothing.
func scalar(ctx context.Context, qr Querier, q string, ts time.Time) (float64, bool, error) {
	res, err := qr.Query(ctx, q, ts)
	if err != nil {
		return 0, false, err
	}
	switch len(res) {
	case 0:
		return math.NaN(), false, nil
	case 1:
		return res[0].Value, true, nil
	}
	return 0, false, fmt.Errorf("%w (%d series for %s)", ErrManySeries, len(res), q)
}

// LocalQuerier queries the embedded TSDB with the PromQL engine.
type LocalQuerier struct {
	Engine    *promql.Engine
	Queryable storage.Queryable
}

// NewPromQLEngine returns a PromQL engine configured as Prometheus runs it.
func NewPromQLEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		MaxSamples:           50_000_000,
		Timeout:              2 * time.Minute,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
}

// Query implements Querier.
func (l LocalQuerier) Query(ctx context.Context, q string, ts time.Time) ([]Sample, error) {
	qry, err := l.Engine.NewInstantQuery(ctx, l.Queryable, nil, q, ts)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				return nil, fmt.Errorf("query %s returns a native histogram; wrap it in histogram_count or histogram_fraction", q)
			}
			out = append(out, Sample{Labels: s.Metric.Map(), Value: s.F})
		}
		return out, nil
	case promql.Scalar:
		return []Sample{{Labels: map[string]string{}, Value: v.V}}, nil
	}
	return nil, fmt.Errorf("query %s returns %s; want an instant vector", q, res.Value.Type())
}

// QueryRange implements Querier.
func (l LocalQuerier) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (map[int64]float64, error) {
	qry, err := l.Engine.NewRangeQuery(ctx, l.Queryable, nil, q, start, end, step)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("range query %s returns %s", q, res.Value.Type())
	}
	if len(m) > 1 {
		return nil, fmt.Errorf("%w (%d series for %s)", ErrManySeries, len(m), q)
	}
	out := map[int64]float64{}
	for _, s := range m {
		for _, p := range s.Floats {
			out[p.T] = p.F
		}
	}
	return out, nil
}

// RemoteQuerier queries an external Prometheus-compatible HTTP API
// (Prometheus, Mimir, Thanos, VictoriaMetrics).
type RemoteQuerier struct {
	URL    string
	Client *http.Client
}

type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (r RemoteQuerier) do(ctx context.Context, path string, form url.Values) (*apiResponse, error) {
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.URL, "/")+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", r.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", r.URL, err)
	}
	var ar apiResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return nil, fmt.Errorf("query %s: HTTP %d: %.200s", r.URL, resp.StatusCode, body)
	}
	if ar.Status != "success" {
		return nil, fmt.Errorf("query %s: %s: %s", r.URL, ar.ErrorType, ar.Error)
	}
	return &ar, nil
}

func parseValue(v [2]any) (int64, float64, error) {
	ts, ok := v[0].(float64)
	s, ok2 := v[1].(string)
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("malformed sample %v", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(math.Round(ts * 1000)), f, err
}

// Query implements Querier.
func (r RemoteQuerier) Query(ctx context.Context, q string, ts time.Time) ([]Sample, error) {
	ar, err := r.do(ctx, "/api/v1/query", url.Values{"query": {q}, "time": {formatTS(ts)}})
	if err != nil {
		return nil, err
	}
	switch ar.Data.ResultType {
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(ar.Data.Result, &v); err != nil {
			return nil, err
		}
		_, f, err := parseValue(v)
		return []Sample{{Labels: map[string]string{}, Value: f}}, err
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(ar.Data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(vec))
		for _, s := range vec {
			_, f, err := parseValue(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Labels: s.Metric, Value: f})
		}
		return out, nil
	}
	return nil, fmt.Errorf("query %s returns %s; want an instant vector", q, ar.Data.ResultType)
}

// QueryRange implements Querier.
func (r RemoteQuerier) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (map[int64]float64, error) {
	ar, err := r.do(ctx, "/api/v1/query_range", url.Values{"query": {q}, "start": {formatTS(start)}, "end": {formatTS(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}})
	if err != nil {
		return nil, err
	}
	var m []struct {
		Values [][2]any `json:"values"`
	}
	if err := json.Unmarshal(ar.Data.Result, &m); err != nil {
		return nil, err
	}
	if len(m) > 1 {
		return nil, fmt.Errorf("%w (%d series for %s)", ErrManySeries, len(m), q)
	}
	out := map[int64]float64{}
	for _, s := range m {
		for _, v := range s.Values {
			t, f, err := parseValue(v)
			if err != nil {
				return nil, err
			}
			out[t] = f
		}
	}
	return out, nil
}

func formatTS(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}
