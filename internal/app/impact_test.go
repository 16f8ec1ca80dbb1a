package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/incidents"
	"github.com/burnrate/burnrate/sloengine"
)

// incidentJSON is what GET /api/v1/incidents/{id} answers, as far as these
// tests read it.
type incidentJSON struct {
	Status           string     `json:"status"`
	ImpactStartedAt  time.Time  `json:"impact_started_at"`
	TriggeredAt      time.Time  `json:"triggered_at"`
	ResolvedAt       *time.Time `json:"resolved_at"`
	DetectionSeconds *float64   `json:"detection_seconds"`
	ImpactSeconds    *float64   `json:"impact_duration_seconds"`
	Budget           *struct {
		From     float64 `json:"from"`
		To       float64 `json:"to"`
		Consumed float64 `json:"consumed"`
	} `json:"budget"`
}

// outagePipeline is the path of a page from data to postmortem, each part
// real and wired as internal/app wires it: counters in a TSDB, the SLO
// engine evaluating incrementally from it and writing its slo:* series
// back, the alert rules and dispatcher on SQLite, the incidents service
// (resolving when the alert does) reading the budget from the TSDB. The
// clock is pinned and stepped.
type outagePipeline struct {
	t   *testing.T
	clk *pinned
	eng *sloengine.Engine
	m   *alerting.Manager
	svc *incidents.Service
	api http.Handler
	// statuses are the engine's evaluations, oldest first.
	statuses []sloengine.Status
}

func newOutagePipeline(t *testing.T, db *tsdb.DB, start time.Time) *outagePipeline {
	ctx := context.Background()
	l := sloengine.NewLoader()
	l.Add("checkout.yml", []byte(eventsSpec))
	slos, err := l.Result()
	require.NoError(t, err)
	p := &outagePipeline{t: t, clk: &pinned{t: start}}
	p.eng, err = sloengine.New(sloengine.Options{
		SLOs:       slos,
		Querier:    sloengine.LocalQuerier{Engine: sloengine.NewPromQLEngine(), Queryable: db},
		Queryable:  db,
		Appendable: db,
		Now:        p.clk.now,
	})
	require.NoError(t, err)

	ic := incidents.Config{OnAlertResolved: incidents.AlertResolvedResolve}
	p.svc, err = incidents.Open(ctx, incidents.Options{Config: ic, Path: filepath.Join(t.TempDir(), "incidents.db"),
		Budget: incidents.TSDBBudget{Queryable: db}, Now: p.clk.now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.svc.Close() })
	p.api = p.svc.Handler()

	cfg := alerting.DefaultConfig().WithDefaults()
	cfg.Route.Receiver = alerting.ReceiverLog
	cfg = withIncidentsRoute(cfg, ic)
	store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	p.m, err = alerting.New(ctx, alerting.Options{
		Config: cfg, Store: store, Now: p.clk.now,
		Receivers:  map[string]alerting.Receiver{incidents.ReceiverName: p.svc},
		Burns:      sloBurns{engine: p.eng, baseURL: "http://127.0.0.1:8080"},
		Appendable: db,
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	return p
}

// step evaluates the SLO and its rules at `at`, then, a second later (the
// incidents route's group wait), flushes and delivers what is due.
func (p *outagePipeline) step(at time.Time) {
	t, ctx := p.t, context.Background()
	p.clk.set(at)
	p.eng.Evaluate(ctx, at)
	p.statuses = append(p.statuses, p.eng.Snapshot()[0])
	require.NoError(t, p.m.Evaluate(ctx))
	p.clk.set(at.Add(time.Second))
	_, err := p.m.Tick(ctx)
	require.NoError(t, err)
	for {
		n, err := p.m.Deliver(ctx)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
}

// incident reads incident 1 from the API; ok is false while there is none.
func (p *outagePipeline) incident() (incidentJSON, bool) {
	w := httptest.NewRecorder()
	p.api.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/incidents/1", nil))
	var inc incidentJSON
	if w.Code == http.StatusNotFound {
		return inc, false
	}
	require.Equal(p.t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(p.t, json.Unmarshal(w.Body.Bytes(), &inc))
	return inc, true
}

// postmortemBudget is the consumed budget the postmortem of incident 1
// states, as a ratio; ok is false when it states none.
func (p *outagePipeline) postmortemBudget() (float64, bool) {
	w := httptest.NewRecorder()
	p.api.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/incidents/1/postmortem", nil))
	require.Equal(p.t, http.StatusOK, w.Code, w.Body.String())
	m := regexp.MustCompile(`Error budget consumed: (-?[0-9.]+)% of the period's budget`).FindStringSubmatch(w.Body.String())
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(p.t, err)
	return v / 100, true
}

// consumedAt is the engine's consumed budget at its last evaluation at or
// before at. Before the period holds a complete slice with data (coverage
// 0) the engine has counted nothing spent yet: 0.
func (p *outagePipeline) consumedAt(at time.Time) float64 {
	for i := len(p.statuses) - 1; i >= 0; i-- {
		st := p.statuses[i]
		if st.EvaluatedAt.After(at) {
			continue
		}
		if st.PeriodCoverage == 0 {
			return 0
		}
		return float64(st.BudgetConsumed)
	}
	p.t.Fatalf("no evaluation at or before %s", at)
	return 0
}

// counters appends checkout_requests_total and checkout_errors_total every
// 15s from next on, integrating tr, as a scrape would.
type counters struct {
	db         *tsdb.DB
	next       time.Time
	tr         func(at time.Time) (reqs, errs float64)
	reqs, errs float64
}

// writeUntil appends the samples up to and including `to`.
func (c *counters) writeUntil(t *testing.T, to time.Time) {
	t.Helper()
	const step = 15 * time.Second
	app := c.db.Appender(context.Background())
	reqL := labels.FromStrings("__name__", "checkout_requests_total", "job", "checkout")
	errL := labels.FromStrings("__name__", "checkout_errors_total", "job", "checkout")
	for ; !c.next.After(to); c.next = c.next.Add(step) {
		r, e := c.tr(c.next)
		c.reqs += r * step.Seconds()
		c.errs += e * step.Seconds()
		_, err := app.Append(0, reqL, c.next.UnixMilli(), c.reqs)
		require.NoError(t, err)
		_, err = app.Append(0, errL, c.next.UnixMilli(), c.errs)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

// workbookDetection is the SRE Workbook's detection time of a window w
// with threshold ratio th (factor x budget) for a constant error ratio e
// that starts after `history` of error-free traffic: th / e x w when the
// window is full of good traffic, else the x at which e x / (history + x)
// crosses th (a young install's window holds only the history).
func workbookDetection(th, e float64, w, history time.Duration) time.Duration {
	full := time.Duration(th / e * float64(w))
	if history >= w-full {
		return full
	}
	return time.Duration(th * float64(history) / (e - th))
}

// TestAnOutagesIncidentStartsWhenTheBurnDidAndConsumesWhatTheEngineCounted
// drives an outage through the whole path: a constant error ratio e from
// t0 until t1 at 10 requests/s on a 99.9% SLO. The incident's impact start
// is t0 (within one evaluation interval), it triggers after the detection
// time the SRE Workbook predicts for the 1h/5m tier (F x budget / e x 1h,
// within one evaluation interval plus the incidents route's 1 s group
// wait), and the budget its API and postmortem report equals the engine's
// consumed ratio over [impact start, resolve] (within 1e-3) and what the
// outage's errors spent (e x (t1-t0) / (budget x 30d)). In a young period
// (the first minutes after `burnrate up`) the budget counts from 0 before
// the first complete 5-minute slice, and is a number, never absent.
func TestAnOutagesIncidentStartsWhenTheBurnDidAndConsumesWhatTheEngineCounted(t *testing.T) {
	const (
		interval = 30 * time.Second
		rps      = 10.0
		eb       = 0.001
		period   = 30 * 24 * time.Hour
	)
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a 5-minute slice boundary
	cases := []struct {
		name string
		// trafficFrom is when the counters start; e the error ratio from
		// t0 to t1.
		trafficFrom, t0, t1 time.Time
		e                   float64
		young               bool
	}{
		{name: "5% errors for 25 minutes after three quiet hours", trafficFrom: base.Add(-3 * time.Hour), t0: base, e: 0.05,
			t1: base.Add(25 * time.Minute)},
		{
			name: "a full outage for 3 minutes in the first minutes of a fresh install",
			// The first slice with data ends at 10:05: until then the engine
			// has counted nothing, and the page fires about a minute in.
			trafficFrom: base.Add(30 * time.Second), t0: base.Add(time.Minute), e: 1, t1: base.Add(4 * time.Minute), young: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := tc.t0
			opts := tsdb.DefaultOptions()
			opts.RetentionDuration = 0
			db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			end := tc.t1.Add(40 * time.Minute) // the 6h/30m page resolves half an hour after the errors stop
			c := &counters{db: db, next: tc.trafficFrom, tr: func(at time.Time) (float64, float64) {
				if !at.Before(t0) && at.Before(tc.t1) {
					return rps, rps * tc.e
				}
				return rps, 0
			}}

			p := newOutagePipeline(t, db, t0.Add(-10*time.Minute))
			sawYoungBudget := false
			first := t0.Add(-10 * time.Minute)
			if tc.trafficFrom.After(first) {
				first = tc.trafficFrom
			}
			for at := first; !at.After(end); at = at.Add(interval) {
				c.writeUntil(t, at) // data arrives as time passes
				p.step(at)
				inc, ok := p.incident()
				if !ok || inc.Status == "resolved" {
					continue
				}
				if tc.young && p.statuses[len(p.statuses)-1].PeriodCoverage == 0 {
					// Open, and no 5-minute slice complete yet.
					require.NotNil(t, inc.Budget, "the API states the budget consumed before the first complete slice")
					require.Zero(t, inc.Budget.Consumed, "nothing counted yet")
					v, ok := p.postmortemBudget()
					require.True(t, ok, "the postmortem states it too")
					require.Zero(t, v)
					sawYoungBudget = true
				}
			}
			require.Equal(t, tc.young, sawYoungBudget, "the incident was open before the first complete slice")

			inc, ok := p.incident()
			require.True(t, ok, "the page opened an incident")
			require.Equal(t, "resolved", inc.Status, "and resolved it with the alert")

			impact := inc.ImpactStartedAt
			require.False(t, impact.Before(t0.Add(-interval)), "impact start %s", impact)
			require.LessOrEqual(t, impact.Sub(t0), interval, "impact start %s is within one evaluation of t0", impact)
			detection := workbookDetection(14.4*eb, tc.e, time.Hour, t0.Sub(tc.trafficFrom))
			require.NotNil(t, inc.DetectionSeconds)
			got := time.Duration(*inc.DetectionSeconds * float64(time.Second))
			require.Equal(t, inc.TriggeredAt.Sub(impact), got)
			require.InDelta(t, detection.Seconds(), got.Seconds(), (interval + time.Second).Seconds(),
				"detection %s, the workbook says %s", got, detection)
			require.NotNil(t, inc.ImpactSeconds)
			require.InDelta(t, inc.ResolvedAt.Sub(impact).Seconds(), *inc.ImpactSeconds, 1e-9)

			// The budget: the API's, the postmortem's, the engine's.
			require.NotNil(t, inc.Budget, "a resolved SLO incident states its budget")
			want := p.consumedAt(*inc.ResolvedAt) - p.consumedAt(impact)
			t.Logf("impact start t0+%s, detection %s (workbook %s), resolved t1+%s, budget consumed %.5f (engine %.5f)",
				impact.Sub(t0), got, detection, inc.ResolvedAt.Sub(tc.t1), inc.Budget.Consumed, want)
			require.InDelta(t, want, inc.Budget.Consumed, 1e-3, "API budget against the engine's")
			pm, ok := p.postmortemBudget()
			require.True(t, ok, "the postmortem states the budget")
			require.InDelta(t, want, pm, 1e-3, "postmortem budget against the engine's")
			spent := tc.e * tc.t1.Sub(t0).Seconds() / (eb * period.Seconds())
			require.InEpsilon(t, spent, inc.Budget.Consumed, 0.05, "what the outage's errors spent of a 30d budget")
			require.False(t, math.IsNaN(inc.Budget.Consumed))
		})
	}
}

// TestAnIncidentResolvedMidSliceCountsTheBudgetUpToItsResolution: the SLO
// engine counts the budget in 5-minute slices, each once it has ended, so
// its consumed ratio at the resolution leaves out the errors since the
// last slice boundary: a whole 90-second outage on a fresh install,
// resolved by a person at 10:02:30, before the first slice ends at 10:05.
// Until then the incident's budget is 0 (a number: nothing counted yet);
// once the engine has counted the slice holding the resolution, it is
// what the outage spent, 1.0 x 90 s / (0.001 x 30d) = 3.5%, and it stays
// that as later slices are counted.
func TestAnIncidentResolvedMidSliceCountsTheBudgetUpToItsResolution(t *testing.T) {
	const interval = 30 * time.Second
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	t0, resolve := base.Add(time.Minute), base.Add(2*time.Minute+30*time.Second)
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	// Counters from 10:00 on (the slice ending at 10:00 holds one sample:
	// no rate, no data), failing every request of the samples after t0 up
	// to the resolution: 90 s of errors.
	c := &counters{db: db, next: base, tr: func(at time.Time) (float64, float64) {
		if at.After(t0) && !at.After(resolve) {
			return 10, 10
		}
		return 10, 0
	}}
	p := newOutagePipeline(t, db, c.next)
	var settled float64
	for at := c.next; !at.After(base.Add(11 * time.Minute)); at = at.Add(interval) {
		c.writeUntil(t, at)
		p.step(at)
		if at.Equal(resolve) {
			w := httptest.NewRecorder()
			p.api.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/incidents/1/resolve", strings.NewReader(`{"by":"ann"}`)))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		}
		inc, ok := p.incident()
		if !ok {
			continue
		}
		require.NotNil(t, inc.Budget, "at %s", at)
		pm, ok := p.postmortemBudget()
		require.True(t, ok)
		require.InDelta(t, inc.Budget.Consumed, pm, 1e-4, "the postmortem states the API's budget")
		switch {
		case at.Before(base.Add(5 * time.Minute)):
			require.Zero(t, inc.Budget.Consumed, "at %s no slice is counted yet", at)
		case at.Before(base.Add(10 * time.Minute)):
			require.Equal(t, "resolved", inc.Status)
			require.InEpsilon(t, 1.0*90/(0.001*30*86400), inc.Budget.Consumed, 0.05, "at %s: the outage, counted whole", at)
			settled = inc.Budget.Consumed
		default:
			require.InDelta(t, settled, inc.Budget.Consumed, 1e-12, "at %s: later slices do not move it", at)
		}
	}
	require.NotZero(t, settled)
}
