package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/burnrate/burnrate/demoapp/load"
)

// Options configure a drill.
type Options struct {
	// URL is Burnrate's base URL (query API and fault API).
	URL string
	// EdgeURL is where the load goes.
	EdgeURL string
	// Token is the API bearer token, for the fault API.
	Token string
	// Poll is how often signals are checked. Default 2s.
	Poll time.Duration
	// History, when above 0, is the steady state written (remote write)
	// before the drill: that much good traffic at the scenario's rate, so
	// that every alert window up to it is full when the first fault comes.
	History time.Duration
	// TimeScale, above 1, runs the scenario's timeline that many times
	// faster (steps, duration, hand-set within, load shape times): a smoke
	// run that exercises a scenario end to end in seconds. Workbook times are
	// not scaled, so its scores say little; the report says so.
	TimeScale float64
	// Pager finds pages; default AlertsPager on URL.
	Pager  Pager
	Logger *slog.Logger
	Now    func() time.Time
}

// Pager tells when an alert first paged. It is the hook alerting plugs
// into. The default, AlertsPager, reads Burnrate's Alertmanager-compatible
// GET /api/v2/alerts (so it works against a real Alertmanager too);
// QueryPager reads the ALERTS series of a Prometheus ruler instead. The
// acknowledgement and resolution columns come from the incident tracker
// (GET /api/v1/incidents) when the drill ends.
type Pager interface {
	// Paged reports whether a page for name (an SLO id or an alert name)
	// started at or after since.
	Paged(ctx context.Context, name string, since time.Time) (bool, error)
}

// AlertsPager reads GET /api/v2/alerts: a page is an alert with
// severity="page" whose slo or alertname label is the name, not silenced,
// that started at or after the fault.
type AlertsPager struct {
	Base string
	HTTP *http.Client
}

// Paged implements Pager.
func (p AlertsPager) Paged(ctx context.Context, name string, since time.Time) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Base+"/api/v2/alerts", nil)
	if err != nil {
		return false, err
	}
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /api/v2/alerts: %s", resp.Status)
	}
	var alerts []struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		Status   struct {
			State      string   `json:"state"`
			SilencedBy []string `json:"silencedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&alerts); err != nil {
		return false, fmt.Errorf("GET /api/v2/alerts: %w", err)
	}
	for _, a := range alerts {
		if a.Labels["severity"] != "page" || (a.Labels["slo"] != name && a.Labels["alertname"] != name) {
			continue
		}
		// Inhibited (suppressed) pages still count: a longer-window page of
		// the same SLO is what inhibits them. Silenced ones do not page.
		if len(a.Status.SilencedBy) > 0 || a.StartsAt.Before(since.Add(-time.Second)) {
			continue
		}
		return true, nil
	}
	return false, nil
}

// QueryPager reads ALERTS{alertname=..., alertstate="firing"} through the
// Prometheus-compatible query API.
type QueryPager struct{ Q *Querier }

// Paged implements Pager.
func (p QueryPager) Paged(ctx context.Context, alert string, _ time.Time) (bool, error) {
	return p.Q.Nonempty(ctx, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing"}`, alert))
}

// Result is one expectation's outcome.
type Result struct {
	Step     int
	Expect   Expectation
	StepAt   time.Time
	Detected bool
	After    time.Duration // from the step to the signal
	Score    float64       // 0..100
	Err      string
	// Failed is set when a query, the pager or the SLO API failed while
	// watching: the drill measured nothing reliable and scores 0.
	Failed bool
	// Within is the expected time used for the score: the scenario's, or
	// the workbook's (then WithinWhy shows the arithmetic).
	Within    time.Duration
	WithinWhy string
	// ErrorRatio is the bad fraction of the drill's answers from the step
	// to the detection (or the next step); Answers how many there were.
	// NaN when there is no workbook.
	ErrorRatio float64
	Answers    int
	// BurnRate is the SLO's burn rate over the workbook window when the
	// signal came (NaN when unknown).
	BurnRate float64
	// TooEarly flags a detection sooner than TooEarlyFraction of the
	// workbook time.
	TooEarly bool
	// Incident is the drill's incident for this expectation, read from
	// the incident tracker when the drill ended; IncidentWhy says why there
	// is none (tracker not running, no incident, no name to look it up by).
	Incident    *IncidentTimes
	IncidentWhy string
	// condition, from the SLO, for the workbook arithmetic.
	factor float64
	window time.Duration
	budget float64
}

// Report is a drill's outcome.
type Report struct {
	Scenario *Scenario
	Started  time.Time
	Ended    time.Time
	Results  []Result
	Events   []string
	Load     load.Report
	LoadErr  string
	// Void lists why the drill measured nothing reliable (failed queries,
	// pager or SLO API); a void drill scores 0.
	Void []string
	// BudgetConsumed is, per SLO a workbook names, the share of its error
	// budget spent during the drill (NaN when unknown).
	BudgetConsumed map[string]float64
	// FaultEvents are the fault changes recorded by Burnrate's event store
	// during the drill; FailingTraces example failed traces through the edge.
	FaultEvents   []FaultEvent
	FailingTraces []string
	// History says how the steady state before the first fault was made.
	History string
}

// Score is the mean score of the expectations, 0..100; 0 for a void drill.
func (r *Report) Score() float64 {
	if len(r.Results) == 0 || len(r.Void) > 0 {
		return 0
	}
	var s float64
	for _, x := range r.Results {
		s += x.Score
	}
	return s / float64(len(r.Results))
}

// score rates a detection: on time is 100; late loses in proportion (twice
// the expected time scores 50); never detected is 0. For never-expectations,
// not seeing the signal is 100.
func score(e Expectation, detected bool, after time.Duration) float64 {
	if e.Never {
		if detected {
			return 0
		}
		return 100
	}
	if !detected {
		return 0
	}
	if after <= e.Within {
		return 100
	}
	return 100 * float64(e.Within) / float64(after)
}

// Run runs the drill and returns its report. Faults it set are cleared
// before it returns, whatever happens.
func Run(ctx context.Context, s *Scenario, o Options) (*Report, error) {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TimeScale > 1 {
		s = s.scaled(o.TimeScale)
	}
	q := &Querier{Base: strings.TrimSuffix(o.URL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
	if o.Pager == nil {
		o.Pager = AlertsPager{Base: q.Base, HTTP: q.HTTP}
	}
	fc := &faultClient{base: strings.TrimSuffix(o.URL, "/"), token: o.Token, http: &http.Client{Timeout: 10 * time.Second}}
	a := &api{base: q.Base, http: q.HTTP}
	var ans answers
	// The drill starts from a clean platform.
	if err := fc.clear(ctx, ""); err != nil {
		return nil, fmt.Errorf("gameday: cannot reach the fault API at %s: %w", o.URL, err)
	}

	ctx, cancel := context.WithTimeout(ctx, s.Duration+30*time.Second)
	defer cancel()
	rep := &Report{Scenario: s, Started: o.Now(), BudgetConsumed: map[string]float64{}}
	if o.History > 0 {
		n, err := writeHistory(ctx, q, o.Token, s.Load.Rate, o.History, rep.Started)
		if err != nil {
			rep.Void = append(rep.Void, "steady-state history: "+err.Error())
			rep.History = "not written: " + err.Error()
		} else {
			rep.History = historyText(o.History, s.Load.Rate, n)
		}
	}
	consumedAtStart := map[string]float64{}
	for _, id := range s.workbookSLOs() {
		st, err := a.slo(ctx, id)
		switch {
		case err != nil:
			rep.Void = append(rep.Void, fmt.Sprintf("SLO %s: %v", id, err))
		case st.BudgetConsumed != nil:
			consumedAtStart[id] = *st.BudgetConsumed
		default:
			consumedAtStart[id] = 0 // not evaluated yet: nothing spent
		}
	}
	var mu sync.Mutex
	event := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("%s  %s", o.Now().Sub(rep.Started).Round(time.Second), fmt.Sprintf(format, args...))
		rep.Events = append(rep.Events, line)
		o.Logger.Info("gameday", "event", line)
	}

	var wg sync.WaitGroup
	drillEnd := rep.Started.Add(s.Duration)
	wg.Go(func() {
		lo := s.loadOptions(o.EdgeURL)
		lo.OnResult = ans.add
		lr, err := load.Run(ctx, lo, nil)
		mu.Lock()
		rep.Load = lr
		if err != nil {
			rep.LoadErr = err.Error()
		}
		mu.Unlock()
	})
	defer func() {
		// Leave the platform as found, even when the drill was cut short.
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := fc.clear(cctx, ""); err != nil {
			o.Logger.Error("gameday: clearing faults failed", "err", err)
		}
	}()

	results := make([][]Result, len(s.Timeline))
	for i, st := range s.Timeline {
		if !sleepUntil(ctx, rep.Started.Add(st.At), o.Now) {
			break
		}
		at := o.Now()
		names := make([]string, 0, len(st.Set))
		for n := range st.Set {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := fc.set(ctx, n, st.Set[n]); err != nil {
				return nil, fmt.Errorf("gameday: step %d: %w", i, err)
			}
			event("set %s = %s", n, st.Set[n])
		}
		for _, n := range st.Clear {
			if err := fc.clear(ctx, n); err != nil {
				return nil, fmt.Errorf("gameday: step %d: %w", i, err)
			}
			event("cleared %s", n)
		}
		if st.Note != "" {
			event("%s", st.Note)
		}
		results[i] = make([]Result, len(st.Expect))
		for j, e := range st.Expect {
			wg.Go(func() {
				results[i][j] = watch(ctx, o, q, a, i, e, at, drillEnd, event)
			})
		}
	}
	wg.Wait()
	rep.Ended = o.Now()
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	for i, rs := range results {
		end := drillEnd
		if i+1 < len(s.Timeline) {
			end = rep.Started.Add(s.Timeline[i+1].At)
		}
		for j := range rs {
			judge(fctx, a, &rs[j], &ans, end, drillEnd)
			if rs[j].Failed {
				rep.Void = append(rep.Void, fmt.Sprintf("%s: %s", rs[j].Expect.Name, rs[j].Err))
			}
		}
		rep.Results = append(rep.Results, rs...)
	}
	// Response times are a measurement of people, not of the platform: a
	// tracker that does not answer leaves them "not measured", the drill
	// stands.
	attachIncidents(fctx, a, rep.Results, rep.Ended)
	for _, id := range s.workbookSLOs() {
		rep.BudgetConsumed[id] = math.NaN()
		st, err := a.slo(fctx, id)
		if err != nil {
			rep.Void = append(rep.Void, fmt.Sprintf("SLO %s: %v", id, err))
			continue
		}
		if start, ok := consumedAtStart[id]; ok && st.BudgetConsumed != nil {
			rep.BudgetConsumed[id] = *st.BudgetConsumed - start
		}
	}
	var err error
	if rep.FaultEvents, err = a.events(fctx, rep.Started); err != nil {
		rep.Void = append(rep.Void, "fault events: "+err.Error())
	}
	// Example failures are a help, not a measurement: a trace store that
	// does not answer leaves the list empty.
	rep.FailingTraces, _ = a.failingTraces(fctx, rep.Started, rep.Ended, 5)
	return rep, nil
}

// scaled is a copy of s with its times divided by k.
func (s *Scenario) scaled(k float64) *Scenario {
	d := func(x time.Duration) time.Duration { return time.Duration(float64(x) / k) }
	c := *s
	c.Title += fmt.Sprintf(" (time scaled 1/%g: a smoke run, detection times are not comparable)", k)
	c.Duration = d(s.Duration)
	c.Load.Period, c.Load.SpikeAt, c.Load.SpikeLength = d(s.Load.Period), d(s.Load.SpikeAt), d(s.Load.SpikeLength)
	c.Timeline = make([]Step, len(s.Timeline))
	for i, st := range s.Timeline {
		st.At = d(st.At)
		st.Expect = append([]Expectation(nil), st.Expect...)
		for j := range st.Expect {
			st.Expect[j].Within = d(st.Expect[j].Within)
		}
		c.Timeline[i] = st
	}
	return &c
}

// workbookSLOs lists the SLOs the scenario's workbooks name, sorted.
func (s *Scenario) workbookSLOs() []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range s.Timeline {
		for _, e := range st.Expect {
			if e.Workbook != nil && !seen[e.Workbook.SLO] {
				seen[e.Workbook.SLO] = true
				out = append(out, e.Workbook.SLO)
			}
		}
	}
	sort.Strings(out)
	return out
}

// watch polls for an expectation's signal. A positive expectation gives up
// at three times its expected time (or the end of the drill, if later is
// not possible); a never-expectation watches until the drill ends.
func watch(ctx context.Context, o Options, q *Querier, a *api, step int, e Expectation, at, drillEnd time.Time, event func(string, ...any)) Result {
	res := Result{Step: step, Expect: e, StepAt: at, Within: e.Within, ErrorRatio: math.NaN(), BurnRate: math.NaN()}
	deadline := drillEnd
	if !e.Never && e.Workbook == nil {
		deadline = at.Add(3 * e.Within)
		if deadline.After(drillEnd) {
			deadline = drillEnd
		}
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	for {
		var ok bool
		var err error
		if e.Page != "" {
			ok, err = o.Pager.Paged(ctx, e.Page, at)
		} else {
			ok, err = q.Nonempty(ctx, e.Query)
		}
		// A poll that answers clears an earlier failure: the drill is void
		// only when the signal could not be watched, not when one poll of
		// many met a busy server.
		res.Err, res.Failed = "", false
		if err != nil {
			res.Err, res.Failed = err.Error(), true
		}
		now := o.Now()
		if ok {
			res.Detected, res.After = true, now.Sub(at)
			event("signal %q after %s", e.Name, res.After.Round(time.Second))
			if wb := e.Workbook; wb != nil {
				st, err := a.slo(ctx, wb.SLO)
				if err == nil {
					res.factor, res.window, err = wb.condition(st)
					res.budget = st.ErrorBudget
					res.BurnRate = st.burnRate(res.window)
				}
				if err != nil {
					res.Err, res.Failed = "SLO API: "+err.Error(), true
				}
			}
			break
		}
		if !now.Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			res.Err = "drill ended before the signal"
			return res
		case <-t.C:
		}
	}
	return res
}

// judge computes a result's expected time (from the workbook when given)
// and its score. end is when the fault's stretch ended (next step or drill
// end), used for the error ratio when nothing was detected.
func judge(ctx context.Context, a *api, res *Result, ans *answers, end, drillEnd time.Time) {
	e := res.Expect
	if wb := e.Workbook; wb != nil && !e.Never {
		if res.factor == 0 && !res.Failed {
			st, err := a.slo(ctx, wb.SLO)
			if err == nil {
				res.factor, res.window, err = wb.condition(st)
				res.budget = st.ErrorBudget
			}
			if err != nil {
				res.Err, res.Failed = "SLO API: "+err.Error(), true
			}
		}
		to := end
		if res.Detected {
			to = res.StepAt.Add(res.After)
		}
		res.ErrorRatio, res.Answers = ans.ratio(res.StepAt, to, wb.SlowerThan)
		if res.factor > 0 {
			res.Within = detectionTime(res.factor, res.budget, res.ErrorRatio, res.window)
			res.WithinWhy = fmt.Sprintf("%g × %.4g / %.4f × %s", res.factor, res.budget, res.ErrorRatio, res.window)
		}
		if res.Within <= 0 {
			res.Score = 0
			return
		}
		beyond := res.StepAt.Add(res.Within).After(drillEnd)
		switch {
		case res.Detected && res.After < time.Duration(TooEarlyFraction*float64(res.Within)):
			res.TooEarly = true
			res.Score = 0
			return
		case !res.Detected && beyond:
			// The math says the tier cannot fire within the drill at the
			// error ratio the fault caused: not firing is right.
			res.Score = 100
			return
		}
		e.Within = res.Within
	}
	res.Score = score(e, res.Detected, res.After)
}

func sleepUntil(ctx context.Context, t time.Time, now func() time.Time) bool {
	d := t.Sub(now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Querier asks Burnrate's Prometheus-compatible API.
type Querier struct {
	Base string
	HTTP *http.Client
}

// Nonempty runs an instant query and reports whether it returned samples.
func (q *Querier) Nonempty(ctx context.Context, query string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.Base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return false, err
	}
	resp, err := q.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return false, fmt.Errorf("query %q: %s: %w", query, resp.Status, err)
	}
	if body.Status != "success" {
		return false, fmt.Errorf("query %q: %s", query, body.Error)
	}
	return len(body.Data.Result) > 0, nil
}

type faultClient struct {
	base, token string
	http        *http.Client
}

func (c *faultClient) call(ctx context.Context, method, path string, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func (c *faultClient) set(ctx context.Context, name, value string) error {
	b, _ := json.Marshal(map[string]string{"value": value, "source": "gameday"})
	return c.call(ctx, http.MethodPut, "/api/v1/demo/faults/"+url.PathEscape(name), b)
}

func (c *faultClient) clear(ctx context.Context, name string) error {
	p := "/api/v1/demo/faults"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return c.call(ctx, http.MethodDelete, p+"?source=gameday", nil)
}
