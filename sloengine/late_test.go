package sloengine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/collector"
)

// lateSpec is one events SLO whose queries are exactly the PromQL the
// tests compare with.
const lateSpec = `version: burnrate/v1
service: late
slos:
  - name: availability
    objective: 99.9
    period: 2d
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
`

// counters generates requests_total and errors_total samples: one a minute
// at second sec, 600 requests a minute, with errRatio(m) of them failing.
type counters struct {
	start    time.Time
	sec      int
	errRatio func(m int) float64
	all, bad float64
	next     int // next minute to emit
}

func (c *counters) ts(m int) time.Time {
	return c.start.Add(time.Duration(m)*time.Minute + time.Duration(c.sec)*time.Second)
}

// upTo returns the samples of every minute not emitted yet whose timestamp
// is at or before t, in order.
func (c *counters) upTo(t time.Time) (out []sample) {
	for ; !c.ts(c.next).After(t); c.next++ {
		c.all += 600
		c.bad += 600 * c.errRatio(c.next)
		ts := c.ts(c.next).UnixMilli()
		out = append(out, sample{"requests_total", ts, c.all}, sample{"errors_total", ts, c.bad})
	}
	return out
}

type sample struct {
	name string
	t    int64
	v    float64
}

// appendSamples appends and commits ss; every refusal is returned, none is
// dropped silently.
func appendSamples(t testing.TB, a storage.Appendable, ss []sample) error {
	t.Helper()
	app := a.Appender(context.Background())
	var errs []error
	for _, s := range ss {
		if _, err := app.Append(0, labels.FromStrings("__name__", s.name), s.t, s.v); err != nil {
			errs = append(errs, fmt.Errorf("%s@%d: %w", s.name, s.t, err))
		}
	}
	require.NoError(t, app.Commit())
	if len(errs) > 0 {
		return fmt.Errorf("%d refused, first: %w", len(errs), errs[0])
	}
	return nil
}

// requireMatchesPromQL holds every window of the SLO to
// sum(rate(errors_total[w])) / sum(rate(requests_total[w])) and its event
// counts to increase(), and the period, as of its newest slice's end, to
// the increase between the first and last samples inside it (the counters
// here never reset), all evaluated by PromQL on the same TSDB.
func requireMatchesPromQL(t *testing.T, q Querier, s Status, msg string) {
	t.Helper()
	require.Empty(t, s.Error, msg)
	ctx := context.Background()
	at := s.EvaluatedAt
	val := func(expr string) float64 {
		v, _, err := scalar(ctx, q, expr, at)
		require.NoError(t, err, expr)
		return v
	}
	for _, w := range s.Windows {
		requireClose(t, val(fmt.Sprintf("sum(rate(errors_total[%s])) / sum(rate(requests_total[%s]))", w.Window, w.Window)),
			float64(w.ErrorRatio), "%s: %s error ratio", msg, w.Window)
		requireClose(t, val(fmt.Sprintf("sum(increase(requests_total[%s]))", w.Window)), float64(w.TotalEvents), "%s: %s events", msg, w.Window)
	}
	at = sliceEnd(sliceKey(at))
	bad := val("max_over_time(errors_total[2d]) - min_over_time(errors_total[2d])")
	all := val("max_over_time(requests_total[2d]) - min_over_time(requests_total[2d])")
	requireClose(t, bad, float64(s.PeriodSLI.BadEvents), "%s: period bad events", msg)
	requireClose(t, all, float64(s.PeriodSLI.TotalEvents), "%s: period events", msg)
	// Not increase(errors_total[2d]) / increase(requests_total[2d]) here:
	// the counters start inside the period, and Prometheus extrapolates
	// errors_total (near zero at its first sample) less far back than
	// requests_total.
	requireClose(t, bad/all, float64(s.PeriodSLI.ErrorRatio), "%s: period error ratio", msg)
}

// remoteWrite posts ss as one remote-write 1.0 request.
func remoteWrite(t *testing.T, url string, ss []sample) {
	t.Helper()
	byName := map[string]int{}
	var req prompb.WriteRequest
	for _, s := range ss {
		i, ok := byName[s.name]
		if !ok {
			i = len(req.Timeseries)
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: s.name}}})
			byName[s.name] = i
		}
		req.Timeseries[i].Samples = append(req.Timeseries[i].Samples, prompb.Sample{Timestamp: s.t, Value: s.v})
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	hr, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "remote write: %s", body)
}

// TestBacklogPushedAfterTheEngineRanCountsInEveryWindow: a sender is down
// for 55 minutes, the engine runs meanwhile, then the sender pushes its
// whole backlog (54% errors) in one remote-write request to the collector.
// The next cycle's windows and period equal PromQL's on the same TSDB.
func TestBacklogPushedAfterTheEngineRanCountsInEveryWindow(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.OTLPListen = ""
	c, err := collector.Open(collector.Options{Dir: t.TempDir(), Config: cfg, Gatherer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	mux := http.NewServeMux()
	c.Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	outage := 180 // minutes of healthy traffic before the sender goes away
	gen := &counters{start: start, sec: 7, errRatio: func(m int) float64 {
		if m >= outage {
			return 0.54
		}
		return 0.001
	}}
	db := c.Storage()
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: q, Queryable: db, Appendable: db})
	require.NoError(t, err)
	ctx := context.Background()

	remoteWrite(t, srv.URL, gen.upTo(start.Add(time.Duration(outage)*time.Minute)))
	back := start.Add(time.Duration(outage+55) * time.Minute)
	for at := start.Add(time.Duration(outage) * time.Minute); at.Before(back); at = at.Add(5 * time.Minute) {
		e.Evaluate(ctx, at) // the sender is silent
	}
	remoteWrite(t, srv.URL, gen.upTo(back)) // 55 minutes in one request
	at := back.Add(5 * time.Second)
	e.Evaluate(ctx, at)
	s := e.Snapshot()[0]
	requireMatchesPromQL(t, q, s, "after the backlog")
	h1, _ := s.Window("1h")
	require.InDelta(t, 0.49, float64(h1.ErrorRatio), 0.06, "the backlog's errors are in the 1h window")
}

// TestSenderSixMinutesBehindIsCounted: every sample arrives six minutes
// after its timestamp; at every cycle the windows and the period equal
// PromQL's.
func TestSenderSixMinutesBehindIsCounted(t *testing.T) {
	db := openTSDB(t, nil)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := &counters{start: start, sec: 7, errRatio: func(m int) float64 {
		if m%40 < 7 {
			return 0.2
		}
		return 0.002
	}}
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: q, Queryable: db})
	require.NoError(t, err)
	ctx := context.Background()
	first := start.Add(2 * time.Hour)
	for i := range 80 {
		at := first.Add(time.Duration(i) * 15 * time.Second)
		require.NoError(t, appendSamples(t, db, gen.upTo(at.Add(-6*time.Minute))))
		e.Evaluate(ctx, at)
		requireMatchesPromQL(t, q, e.Snapshot()[0], fmt.Sprintf("cycle %d at %s", i, at.Format(time.TimeOnly)))
	}
	h1, _ := e.Snapshot()[0].Window("30m")
	require.Greater(t, float64(h1.TotalEvents), 0.0, "a sender behind is traffic, not silence")
}

// TestSamplesThirtySecondsLateAcrossASliceBoundary: samples at second 50
// of each minute arrive 30 s later, so the last sample of every 5-minute
// slice lands after the engine first computed that slice; a burst of
// errors in the minute before a boundary still counts in the period.
func TestSamplesThirtySecondsLateAcrossASliceBoundary(t *testing.T) {
	db := openTSDB(t, nil)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := &counters{start: start, sec: 50, errRatio: func(m int) float64 {
		if m == 64 { // 01:04:50, just before the 01:05 boundary
			return 0.75
		}
		return 0.001
	}}
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: q, Queryable: db})
	require.NoError(t, err)
	ctx := context.Background()
	first := start.Add(time.Hour)
	for i := range 12 * 20 { // every 5s for 20 minutes, across four boundaries
		at := first.Add(time.Duration(i) * 5 * time.Second)
		require.NoError(t, appendSamples(t, db, gen.upTo(at.Add(-30*time.Second))))
		e.Evaluate(ctx, at)
		if i%6 == 0 {
			requireMatchesPromQL(t, q, e.Snapshot()[0], fmt.Sprintf("cycle %d at %s", i, at.Format(time.TimeOnly)))
		}
	}
	s := e.Snapshot()[0]
	requireMatchesPromQL(t, q, s, "last cycle")
	require.Greater(t, float64(s.PeriodSLI.BadEvents), 400.0, "the burst's 450 errors are in the period")
}

// TestRefusedLateSampleIsReported: a sample older than the TSDB's accept
// horizon is refused with ErrOutOfBounds, reported to the sender, and left
// out by PromQL and the engine alike.
func TestRefusedLateSampleIsReported(t *testing.T) {
	db := openTSDB(t, nil)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := &counters{start: start, sec: 7, errRatio: func(int) float64 { return 0.01 }}
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: q, Queryable: db})
	require.NoError(t, err)
	// Three hours of data in a fresh head: it accepts an hour back.
	require.NoError(t, appendSamples(t, db, gen.upTo(start.Add(3*time.Hour))))
	at := start.Add(3*time.Hour + 30*time.Second)
	e.Evaluate(context.Background(), at)
	old := start.Add(90 * time.Minute).UnixMilli()
	err = appendSamples(t, db, []sample{{"extra_total", old, 1}})
	require.ErrorIs(t, err, storage.ErrOutOfBounds)
	minValid, ok := db.Head().AppendableMinValidTime()
	require.True(t, ok)
	require.Equal(t, e.acceptMin(at), minValid, "the engine's horizon is the head's")
	e.Evaluate(context.Background(), at.Add(5*time.Second))
	requireMatchesPromQL(t, q, e.Snapshot()[0], "after the refusal")
}
