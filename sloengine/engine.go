package sloengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Value is a float that encodes NaN and infinities as JSON null: an SLI
// over a window without traffic is unknown, not zero.
type Value float64

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// UnmarshalJSON implements json.Unmarshaler (null is NaN).
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = Value(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*v = Value(f)
	return err
}

// WindowStatus is the SLI over one window.
type WindowStatus struct {
	Window      string  `json:"window"`
	ErrorRatio  Value   `json:"error_ratio"`
	SLI         Value   `json:"sli"`
	BurnRate    Value   `json:"burn_rate"`
	BadEvents   Value   `json:"bad_events"`
	GoodEvents  Value   `json:"good_events"`
	TotalEvents Value   `json:"total_events"`
	LowTraffic  bool    `json:"low_traffic"`
	Seconds     float64 `json:"-"`
	// Length is the window (zero for the period, whose length varies).
	Length time.Duration `json:"-"`

	// NoData is true when the SLI's series do not exist over the window
	// (the query had no result), as opposed to existing without traffic.
	NoData bool `json:"no_data,omitempty"`

	// Slices and BadSlices are set for a Timeslices SLO: the 5-minute
	// slices with traffic that end inside the window, and those of them
	// whose SLI missed the slice target. ErrorRatio is then their share,
	// BadSlices/Slices, and BurnRate that share over the error budget.
	Slices    int `json:"slices,omitempty"`
	BadSlices int `json:"bad_slices,omitempty"`
	// eventRatio is a Timeslices window's event error ratio.
	eventRatio float64
}

// Forecast is the time left until the budget is spent at one window's burn.
type Forecast struct {
	Window   string `json:"window"`
	BurnRate Value  `json:"burn_rate"`
	// Seconds is null when the budget is not being spent.
	Seconds Value `json:"seconds"`
	// OutlastsPeriod is true when the budget lasts beyond the end of a
	// calendar period, where it resets: Seconds is then the time left in
	// the period.
	OutlastsPeriod bool `json:"outlasts_period,omitempty"`
}

// Status is one evaluation of one SLO.
type Status struct {
	ID          string  `json:"id"`
	Service     string  `json:"service"`
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Objective   float64 `json:"objective"`
	ErrorBudget float64 `json:"error_budget"`
	Period      string  `json:"period"`
	// PeriodLength is the rolling period, or a calendar period's nominal
	// length (what tier factors are scaled to).
	PeriodLength time.Duration  `json:"-"`
	Budgeting    string         `json:"budgeting_method"`
	EvaluatedAt  time.Time      `json:"evaluated_at"`
	PeriodStart  time.Time      `json:"period_start"`
	Windows      []WindowStatus `json:"windows"`
	PeriodSLI    WindowStatus   `json:"period_window"`
	// BudgetConsumed is the share of the whole period's error budget spent
	// so far: bad events over budget x the period's expected total events,
	// extrapolated from the observed traffic (ratio x coverage / budget).
	// Null while the period holds too little data (InsufficientData).
	BudgetConsumed  Value `json:"budget_consumed"`
	BudgetRemaining Value `json:"budget_remaining"`
	// PeriodCoverage is the share of the period that holds data: from the
	// later of the period start and the first slice with data, to the end
	// of the newest complete slice, over the period's length.
	PeriodCoverage Value `json:"period_coverage"`
	// InsufficientData is true while the period has no complete 5-minute
	// slice with traffic (or fewer than min_events events): the budget is
	// unknown then, never shown as spent.
	InsufficientData bool        `json:"insufficient_data"`
	Forecasts        []Forecast  `json:"forecasts"`
	MinEvents        float64     `json:"min_events"`
	Tiers            []TierState `json:"tiers"`
	Error            string      `json:"error,omitempty"`
}

// Window returns the status of window w ("5m", "1h", ...).
func (s Status) Window(w string) (WindowStatus, bool) {
	for _, ws := range s.Windows {
		if ws.Window == w {
			return ws, true
		}
	}
	return WindowStatus{}, false
}

// HadTraffic reports whether the SLI had traffic at some point of the
// period: its error ratio is known once one of its slices had traffic.
func (s Status) HadTraffic() bool {
	return s.Error == "" && !math.IsNaN(float64(s.PeriodSLI.ErrorRatio))
}

// WindowOf returns the status of the window of length d.
func (s Status) WindowOf(d time.Duration) (WindowStatus, bool) {
	for _, ws := range s.Windows {
		if ws.Length == d {
			return ws, true
		}
	}
	return WindowStatus{}, false
}

// Evaluation is one history entry: what GET /api/v1/slos/{id} lists.
type Evaluation struct {
	EvaluatedAt     time.Time      `json:"evaluated_at"`
	Windows         []WindowStatus `json:"windows"`
	BudgetRemaining Value          `json:"budget_remaining"`
	Error           string         `json:"error,omitempty"`
}

// Config is the `slo` configuration section.
type Config struct {
	// Interval between evaluations.
	Interval time.Duration `mapstructure:"interval"`
	// History is how many evaluations per SLO the API keeps.
	History int `mapstructure:"history"`
	// QueryTimeout bounds one SLO's evaluation (all its queries); an SLO
	// that takes longer reports a deadline error and the others go on.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// AllowShortRetention loads SLOs whose period is longer than the
	// TSDB's retention (their budget then covers only the retained data).
	AllowShortRetention bool `mapstructure:"allow_short_retention"`
}

// DefaultConfig evaluates every 5s and keeps 10 minutes of history. The
// interval is on the page's critical path: a 100% outage on a 99.9% SLO
// crosses the 1h/5m threshold after 51.8s, and every second the engine
// waits is added to that (measured by bench/alerting/e2e: 30s missed the
// 60s goal). A cycle of 1,000 SLOs costs about 0.2s (bench/sloengine), so
// 5s is about 4% of a core for 1,000 SLOs.
func DefaultConfig() Config {
	return Config{Interval: 5 * time.Second, History: 120, QueryTimeout: 30 * time.Second}
}

// Validate reports the first invalid key.
func (c Config) Validate() error {
	if c.Interval < time.Second {
		return fmt.Errorf("slo.interval: %s is too short; want at least 1s", c.Interval)
	}
	if c.History < 1 {
		return errors.New("slo.history: want at least 1")
	}
	if c.QueryTimeout < 0 {
		return fmt.Errorf("slo.query_timeout: %s is negative", c.QueryTimeout)
	}
	return nil
}

// MetricsConfig selects where SLIs are queried.
type MetricsConfig struct {
	// Backend is "tsdb" (embedded) or "prometheus" (an external
	// Prometheus-compatible query API at URL).
	Backend string `mapstructure:"backend"`
	URL     string `mapstructure:"url"`
}

// Validate reports the first invalid key.
func (c MetricsConfig) Validate() error {
	switch c.Backend {
	case "tsdb", "":
	case "prometheus":
		if c.URL == "" {
			return errors.New("metrics.url: required when metrics.backend is prometheus")
		}
	default:
		return fmt.Errorf("metrics.backend: %q is not tsdb or prometheus", c.Backend)
	}
	return nil
}

// Options build an Engine.
type Options struct {
	Config
	SLOs    []*SLO
	Querier Querier
	// Appendable receives the slo:* series; nil disables write-back.
	Appendable storage.Appendable
	// Queryable, when set (the embedded TSDB), enables incremental
	// evaluation of sum(rate(...)) SLIs from in-memory samples.
	Queryable  storage.Queryable
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// OutOfOrderWindow is the TSDB's out-of-order window: samples that much
	// older than its newest sample are still accepted, so slices that
	// recent stay provisional.
	OutOfOrderWindow time.Duration
	// AcceptWindow is how far behind the evaluation instant samples may
	// still arrive when the backend cannot say (an external Prometheus, or
	// an empty head); default one hour, half the TSDB's 2h block range.
	AcceptWindow time.Duration
	// MaxBufferedSamples bounds the samples the in-memory path holds
	// (16 bytes each); a selector that would exceed it is dropped from
	// memory and its SLOs are evaluated with PromQL. Default 20,000,000
	// (about 320 MB); negative: no bound.
	MaxBufferedSamples int64
	// StateDir, when set, holds the slice checkpoint (slices.ckpt): final
	// slices saved every CheckpointInterval and on stop, restored by New,
	// so a restart does not recompute the whole period.
	StateDir string
	// CheckpointInterval is how often Run saves the checkpoint; default 5m.
	CheckpointInterval time.Duration
	// OnEvaluated, when set, receives the statuses of the SLOs each cycle
	// evaluated (all of them on the ticker, those whose series received
	// samples on arrival), right after the cycle: the hook for alerting.
	OnEvaluated func([]Status)
	// TriggerDelay is how long Run waits after samples for an SLO arrive
	// before evaluating it, so a burst of commits is one evaluation;
	// default 250ms. Negative disables evaluation on arrival.
	TriggerDelay time.Duration
	// Tiers override the default burn-rate tiers of SLOs that do not list
	// their own (alerting.rules.tiers), so that the tiers the engine
	// evaluates are the tiers alerting pages on.
	Tiers TierOverrides
	// QueryConcurrency is how many SLOs evaluated through queries (PromQL,
	// an external backend) run at once, apart from the CPU-bound workers of
	// the in-memory path; default 8.
	QueryConcurrency int
}

// Engine evaluates SLOs on an interval.
type Engine struct {
	opts   Options
	logger *slog.Logger
	states []*state
	byID   map[string]*state
	bufs   *buffers // nil without a Queryable
	// watches finds the SLOs reading a series that received samples.
	watches *watches

	evalDuration prometheus.Histogram
	evalErrors   prometheus.Counter
}

type state struct {
	slo  *SLO
	ring *ring
	plan *plan // nil: evaluated with PromQL
	// increments is true for an Occurrences SLO with a plan: its slices
	// on the fast path hold counter increments, not 5m rates.
	increments bool
	// checked is true once a latency SLI's bucket bound was checked against
	// the data.
	checked bool
	// leErr holds a bucket mismatch found in the data.
	leErr error

	// final is the newest slice that can no longer change (older than the
	// accept horizon when it was computed); slices after it are
	// recomputed every cycle.
	final int64

	mu      sync.RWMutex
	last    Status
	history []Evaluation
}

// New builds an engine for opts.SLOs.
func New(opts Options) (*Engine, error) {
	if opts.Interval == 0 {
		opts.Config = DefaultConfig()
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Querier == nil {
		return nil, errors.New("sloengine: a Querier is required")
	}
	if err := opts.Tiers.Validate(); err != nil {
		return nil, fmt.Errorf("sloengine: tier overrides: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AcceptWindow == 0 {
		opts.AcceptWindow = time.Hour
	}
	if opts.TriggerDelay == 0 {
		opts.TriggerDelay = 250 * time.Millisecond
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = 5 * time.Minute
	}
	if opts.MaxBufferedSamples == 0 {
		opts.MaxBufferedSamples = 20_000_000
	}
	if opts.QueryConcurrency == 0 {
		opts.QueryConcurrency = 8
	}
	e := &Engine{opts: opts, logger: opts.Logger, byID: map[string]*state{}}
	e.evalDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "burnrate_sloengine_evaluation_duration_seconds",
		Help:    "Time of one evaluation cycle of every SLO.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	e.evalErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "burnrate_sloengine_evaluation_errors_total",
		Help: "SLO evaluations that failed (query errors, bad data).",
	})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(e.evalDuration, e.evalErrors)
	}
	if opts.Queryable != nil {
		e.bufs = newBuffers(opts.Queryable, Windows[len(Windows)-1]+SliceWidth, opts.MaxBufferedSamples, opts.Logger)
		if opts.Registerer != nil {
			opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "burnrate_sloengine_buffered_samples",
				Help: "Samples the SLO engine holds in memory for the incremental path (bounded by MaxBufferedSamples).",
			}, func() float64 { return float64(e.bufs.total.Load()) }))
		}
	}
	opts.Tiers.Apply(opts.SLOs)
	for _, s := range opts.SLOs {
		st := &state{slo: s, final: math.MinInt64}
		if e.bufs != nil {
			if st.plan = newPlan(s); st.plan != nil {
				for _, sel := range st.plan.selectors() {
					e.bufs.add(sel)
				}
			}
		}
		st.increments = st.plan != nil && s.Budgeting == Occurrences
		st.ring = newRing(int(s.ringSpan()/SliceWidth)+2, st.increments)
		if s.SLI.Kind != KindLatency {
			st.checked = true
		}
		e.states = append(e.states, st)
		e.byID[s.ID] = st
	}
	e.watches = newWatches(e.states)
	if n, err := e.readCheckpoint(); err != nil {
		e.logger.Warn("slice checkpoint ignored; slices are recomputed from storage", "err", err)
	} else if n > 0 {
		e.logger.Info("slices restored from the checkpoint", "slos", n)
	}
	return e, nil
}

// SLOs returns the SLOs the engine evaluates.
func (e *Engine) SLOs() []*SLO {
	out := make([]*SLO, len(e.states))
	for i, s := range e.states {
		out[i] = s.slo
	}
	return out
}

// Run evaluates every Interval until ctx is cancelled, saving the slice
// checkpoint every CheckpointInterval and when it stops.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	saved := time.Now()
	save := func() {
		if err := e.SaveCheckpoint(); err != nil {
			e.logger.Warn("save slice checkpoint", "err", err)
		}
		saved = time.Now()
	}
	defer save()
	for {
		e.watches.takePending(nil) // the full cycle covers them
		e.Evaluate(ctx, e.opts.Now())
		if time.Since(saved) >= e.opts.CheckpointInterval {
			save()
		}
		if !e.waitForTick(ctx, t.C) {
			return nil
		}
	}
}

// waitForTick waits for the next tick, evaluating meanwhile the SLOs whose
// series receive samples (TriggerDelay after the first arrival). It
// returns false once ctx is done.
func (e *Engine) waitForTick(ctx context.Context, tick <-chan time.Time) bool {
	var signal <-chan struct{}
	if e.opts.TriggerDelay >= 0 {
		signal = e.watches.signal
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case <-signal:
			select {
			case <-ctx.Done():
				return false
			case <-time.After(e.opts.TriggerDelay):
			}
			e.EvaluatePending(ctx, e.opts.Now())
		}
	}
}

// Evaluate runs one cycle at the instant at: every SLO, every window, the
// period, budgets and forecasts; writes slo:* series back when an
// Appendable is set. SLOs are evaluated in parallel; a failing SLO records
// its error in its Status and does not stop the others.
func (e *Engine) Evaluate(ctx context.Context, at time.Time) {
	e.evaluateStates(ctx, at, e.states)
}

// evaluateStates runs one cycle for states only (every SLO, or those whose
// series just received samples).
func (e *Engine) evaluateStates(ctx context.Context, at time.Time, states []*state) {
	start := time.Now()
	var app storage.Appender
	var appMu sync.Mutex
	if e.opts.Appendable != nil {
		app = e.opts.Appendable.Appender(ctx)
	}
	accept := e.acceptMin(at)
	if e.bufs != nil {
		var sels map[string]bool
		if len(states) < len(e.states) {
			sels = map[string]bool{}
			for _, st := range states {
				if st.plan != nil {
					for _, sel := range st.plan.selectors() {
						sels[sel] = true
					}
				}
			}
		}
		e.bufs.refresh(ctx, at, accept, runtime.GOMAXPROCS(0), sels)
	}
	// SLOs on the in-memory path are CPU-bound and get one worker per core;
	// SLOs that query (PromQL, an external backend) wait on I/O and get
	// their own pool, so a slow backend never holds up the others.
	cpu, io := make(chan *state), make(chan *state)
	var wg sync.WaitGroup
	worker := func(work chan *state) {
		for st := range work {
			status := e.evaluateIsolated(ctx, st, at, accept)
			if status.Error != "" {
				e.evalErrors.Inc()
				e.logger.Warn("SLO evaluation failed", "slo", st.slo.ID, "err", status.Error)
			}
			if app != nil {
				appMu.Lock()
				if err := writeBack(app, st.slo, status); err != nil {
					e.logger.Warn("write back SLO series", "slo", st.slo.ID, "err", err)
				}
				appMu.Unlock()
			}
			st.record(status, e.opts.History)
			// One SLO is a millisecond or two of CPU; yielding between
			// them lets requests that arrived meanwhile (the gate, the
			// query API, ingest) run now instead of after the whole
			// cycle's burst or the scheduler's 10 ms preemption.
			runtime.Gosched()
		}
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() { worker(cpu) })
	}
	for range e.opts.QueryConcurrency {
		wg.Go(func() { worker(io) })
	}
	var queued sync.WaitGroup
	queued.Go(func() {
		for _, st := range states {
			if e.inMemory(st) {
				cpu <- st
			}
		}
		close(cpu)
	})
	for _, st := range states {
		if !e.inMemory(st) {
			io <- st
		}
	}
	close(io)
	queued.Wait()
	wg.Wait()
	if app != nil {
		if err := app.Commit(); err != nil {
			e.logger.Warn("commit SLO series", "err", err)
		}
	}
	e.evalDuration.Observe(time.Since(start).Seconds())
	if e.opts.OnEvaluated != nil {
		out := make([]Status, len(states))
		for i, st := range states {
			st.mu.RLock()
			out[i] = st.last
			st.mu.RUnlock()
		}
		e.opts.OnEvaluated(out)
	}
}

// evaluateIsolated evaluates one SLO under its own deadline and turns a
// panic into that SLO's error, so one SLO cannot stop or stall the rest.
func (e *Engine) evaluateIsolated(ctx context.Context, st *state, at time.Time, accept int64) (status Status) {
	if e.opts.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.QueryTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			e.logger.Error("SLO evaluation panicked", "slo", st.slo.ID, "panic", r, "stack", string(debug.Stack()))
			status = e.failed(st.slo, at, fmt.Errorf("evaluation panicked: %v", r))
		}
	}()
	status = e.evaluate(ctx, st, at, accept)
	if status.Error == "" && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		status = e.failed(st.slo, at, fmt.Errorf("evaluation exceeded slo.query_timeout %s: %w", e.opts.QueryTimeout, ctx.Err()))
	}
	return status
}

// acceptMin is the oldest timestamp (Unix ms) a sample may still be
// accepted with at instant at: from the TSDB head when the queryable is
// the embedded TSDB (its in-order accept bound, half a block range behind
// its newest sample, and the out-of-order window), else at minus
// AcceptWindow and the out-of-order window. Slices ending at or after it
// are provisional and recomputed every cycle.
func (e *Engine) acceptMin(at time.Time) int64 {
	ts := at.UnixMilli()
	ooo := e.opts.OutOfOrderWindow.Milliseconds()
	m := ts - e.opts.AcceptWindow.Milliseconds() - ooo
	if h, ok := e.opts.Queryable.(interface{ Head() *tsdb.Head }); ok && h.Head() != nil {
		if v, ok := h.Head().AppendableMinValidTime(); ok {
			if ooo > 0 {
				v = min(v, h.Head().MaxTime()-ooo)
			}
			m = v
		}
	}
	return min(m, ts)
}

func (st *state) record(s Status, keep int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last = s
	st.history = append(st.history, Evaluation{EvaluatedAt: s.EvaluatedAt, Windows: append(s.Windows, s.PeriodSLI), BudgetRemaining: s.BudgetRemaining, Error: s.Error})
	if len(st.history) > keep {
		st.history = append(st.history[:0:0], st.history[len(st.history)-keep:]...)
	}
}

func baseStatus(s *SLO, at time.Time) Status {
	return Status{
		ID: s.ID, Service: s.Service, Name: s.Name, Description: s.Description,
		Objective: s.Objective, ErrorBudget: s.ErrorBudget(), Period: periodName(s), PeriodLength: s.Period, Budgeting: string(s.Budgeting),
		EvaluatedAt: at.UTC(), MinEvents: s.MinEvents,
	}
}

// failed is the status of an evaluation that failed with err.
func (e *Engine) failed(s *SLO, at time.Time, err error) Status {
	status := baseStatus(s, at)
	status.Error = err.Error()
	status.BudgetRemaining, status.BudgetConsumed, status.PeriodCoverage = Value(math.NaN()), Value(math.NaN()), Value(math.NaN())
	status.PeriodSLI.ErrorRatio = Value(math.NaN())
	return status
}

func (e *Engine) evaluate(ctx context.Context, st *state, at time.Time, accept int64) Status {
	s := st.slo
	eb := s.ErrorBudget()
	status := baseStatus(s, at)
	fail := func(err error) Status { return e.failed(s, at, err) }
	if !st.checked {
		st.leErr = e.checkBuckets(ctx, st, at)
	}
	if st.leErr != nil {
		return fail(st.leErr)
	}
	q := e.opts.Querier
	if err := e.fillSlices(ctx, st, at, accept); err != nil {
		return fail(fmt.Errorf("period slices: %w", err))
	}
	for _, w := range Windows {
		ws, err := e.window(ctx, q, st, w, at)
		if err != nil {
			return fail(fmt.Errorf("window %s: %w", FormatWindow(w), err))
		}
		if s.Budgeting == Timeslices {
			ws.sliceRatio(st.ring, at, s)
		}
		status.Windows = append(status.Windows, ws)
	}
	pstart, plen := s.periodBounds(at)
	status.PeriodStart = pstart
	agg := st.ring.aggregate(sliceKey(pstart), sliceKey(at), 1-s.TimeSliceTarget)
	// Events over the period: slices of 5m rates, of sample counts
	// (bool_gauge) or of counter increments (Occurrences on the fast
	// path), or the period's own increase (Occurrences with PromQL).
	badEv, allEv := agg.bad, agg.all
	if s.SLI.rateBased() && !st.increments {
		badEv, allEv = badEv*SliceWidth.Seconds(), allEv*SliceWidth.Seconds()
	}
	var ratio float64
	switch {
	case s.Budgeting == RatioTimeslices || s.SLI.Kind == KindRaw && s.Budgeting == Occurrences:
		ratio = agg.ratioSum / float64(agg.slices)
	case s.Budgeting == Timeslices:
		ratio = float64(agg.badSlice) / float64(agg.slices)
	case st.increments:
		// Increases between samples inside the period: the first slice's
		// increase from the sample before the period is not one.
		xb, xa := st.ring.cross(sliceKey(pstart) + 1)
		badEv, allEv = badEv-xb, allEv-xa
		ratio = badEv / allEv
	case s.SLI.rateBased():
		var err error
		if badEv, allEv, err = e.periodIncrease(ctx, st, pstart, at); err != nil {
			return fail(fmt.Errorf("period: %w", err))
		}
		ratio = badEv / allEv
	default:
		ratio = agg.bad / agg.all
	}
	ps := WindowStatus{Window: status.Period, ErrorRatio: Value(ratio), SLI: Value(1 - ratio), BurnRate: Value(ratio / eb), Seconds: at.Sub(pstart).Seconds()}
	if s.SLI.Kind != KindRaw {
		ps.BadEvents, ps.TotalEvents = Value(badEv), Value(allEv)
		ps.GoodEvents = ps.TotalEvents - ps.BadEvents
	} else {
		ps.BadEvents, ps.TotalEvents, ps.GoodEvents = Value(math.NaN()), Value(math.NaN()), Value(math.NaN())
	}
	if s.Budgeting == Timeslices {
		ps.Slices, ps.BadSlices = agg.slices, agg.badSlice
	}
	status.PeriodSLI = ps
	// Budget consumed is what was spent of the whole period's budget: bad
	// events over budget x the events the period is expected to hold,
	// extrapolated from the traffic observed, i.e. ratio x coverage /
	// budget. A full rolling period has coverage 1 (Sloth's formula); a
	// young period, or a calendar period under way, has spent only its
	// share.
	coverage := 0.0
	if agg.firstData >= 0 {
		// In whole slices: the period's slices are (pkey, to].
		covered := sliceKey(at) - max(sliceKey(pstart), agg.firstData-1)
		coverage = min(1, max(0, (time.Duration(covered)*SliceWidth).Seconds()/plen.Seconds()))
	}
	status.PeriodCoverage = Value(coverage)
	consumed := ratio * coverage / eb
	status.InsufficientData = agg.slices == 0 || (s.SLI.Kind != KindRaw && float64(ps.TotalEvents) < s.MinEvents)
	if agg.slices == 0 && agg.firstData >= 0 {
		// Data but no traffic: nothing was spent.
		consumed, status.InsufficientData = 0, false
	}
	if status.InsufficientData {
		consumed = math.NaN()
	}
	status.BudgetConsumed = Value(consumed)
	status.BudgetRemaining = Value(1 - consumed)
	for _, w := range []string{"1h", "6h", "1d"} {
		ws, _ := status.Window(w)
		f := Forecast{Window: w, BurnRate: ws.BurnRate, Seconds: Value(math.NaN())}
		b := float64(ws.BurnRate)
		switch {
		case math.IsNaN(consumed):
		case consumed >= 1:
			f.Seconds = 0
		case b > 0:
			f.Seconds = Value((1 - consumed) * plen.Seconds() / b)
			if left := pstart.Add(plen).Sub(at).Seconds(); s.Calendar != nil && float64(f.Seconds) > left {
				f.Seconds, f.OutlastsPeriod = Value(left), true
			}
		}
		status.Forecasts = append(status.Forecasts, f)
	}
	status.Tiers = EvaluateTiers(s.Tiers, status.Windows, eb)
	return status
}

func periodName(s *SLO) string {
	if s.Calendar != nil {
		return s.Calendar.Unit
	}
	return FormatWindow(s.Period)
}

// withEvents fills ws from the window's bad and total events (counts, or
// per-second rates for rate-based SLIs).
func withEvents(ws WindowStatus, s *SLO, bad, all float64) WindowStatus {
	r := bad / all
	ws.ErrorRatio, ws.SLI, ws.BurnRate = Value(r), Value(1-r), Value(r/s.ErrorBudget())
	scale := 1.0
	if s.SLI.rateBased() {
		scale = ws.Length.Seconds()
	}
	ws.BadEvents, ws.TotalEvents = Value(bad*scale), Value(all*scale)
	ws.GoodEvents = ws.TotalEvents - ws.BadEvents
	// Without traffic (NaN) or below min_events the burn rate is noise.
	ws.LowTraffic = !(float64(ws.TotalEvents) > 0) || float64(ws.TotalEvents) < s.MinEvents
	ws.NoData = math.IsNaN(all) // the total query had no result
	return ws
}

// window evaluates the SLI over w with the same expressions the exported
// recording rules use.
func (e *Engine) window(ctx context.Context, q Querier, st *state, w time.Duration, at time.Time) (WindowStatus, error) {
	s := st.slo
	eb := s.ErrorBudget()
	ws := WindowStatus{Window: FormatWindow(w), Seconds: w.Seconds(), Length: w}
	nan := Value(math.NaN())
	if s.SLI.Kind == KindRaw {
		r, ok, err := scalar(ctx, q, s.SLI.ratioExpr(w), at)
		if err != nil {
			return ws, err
		}
		ws.ErrorRatio, ws.SLI, ws.BurnRate = Value(r), Value(1-r), Value(r/eb)
		ws.BadEvents, ws.GoodEvents, ws.TotalEvents = nan, nan, nan
		ws.NoData = !ok
		return ws, nil
	}
	bad, all, err := e.badAll(ctx, q, st, w, at)
	if err != nil {
		return ws, err
	}
	return withEvents(ws, s, bad, all), nil
}

// inMemory reports whether st is evaluated from the sample buffers: it has
// a plan and none of its selectors was dropped for the memory bound.
func (e *Engine) inMemory(st *state) bool { return st.plan != nil && e.bufs.usable(st.plan) }

// badAll returns the error and total values over w at at, NaN when the
// query has no result: from memory on the fast path, else with PromQL.
func (e *Engine) badAll(ctx context.Context, q Querier, st *state, w time.Duration, at time.Time) (float64, float64, error) {
	if e.inMemory(st) {
		ts := at.UnixMilli()
		bad, ok1, err := e.bufs.eval(st.plan.bad[w], ts, w)
		if err != nil {
			return 0, 0, err
		}
		all, ok2, err := e.bufs.eval(st.plan.all[w], ts, w)
		if err != nil {
			return 0, 0, err
		}
		if !ok1 {
			bad = math.NaN()
			if st.slo.SLI.Kind == KindEvents && st.slo.SLI.ErrorQuery != "" {
				bad = 0 // as badExpr's "or on() vector(0)"
			}
		}
		if !ok2 {
			all = math.NaN()
		}
		return bad, all, nil
	}
	bad, _, err := scalar(ctx, q, st.slo.SLI.badExpr(w), at)
	if err != nil {
		return 0, 0, err
	}
	all, _, err := scalar(ctx, q, st.slo.SLI.totalExpr(w), at)
	return bad, all, err
}

// fillSlices brings the period's 5-minute slices up to date at at: on the
// first cycle every slice of the period; afterwards every slice that is
// still provisional, i.e. ends at or after accept, the oldest timestamp the
// TSDB still accepts a sample with. A late sample can only fall in a
// provisional slice, so a slice is final (never recomputed) once it is
// older than the accept horizon, and a restart that recomputes every slice
// from storage gets the same values.
func (e *Engine) fillSlices(ctx context.Context, st *state, at time.Time, accept int64) error {
	s := st.slo
	to := sliceKey(at)
	from := sliceKey(at.Add(-s.ringSpan())) // oldest slice worth holding
	if st.final > from {
		from = st.final
	}
	if to <= from {
		return nil
	}
	newest := to
	defer func() {
		// Slices ending before accept are complete in storage for good.
		st.final = max(st.final, min(newest, sliceKey(time.UnixMilli(accept))-1))
	}()
	if e.inMemory(st) {
		// Slices whose 5 minutes are in memory come from there; only older
		// ones (the first cycle's fill) need a range query. Increments
		// also need the sample before the slice: one slice more margin.
		oldest := at.Add(-e.bufs.keep + SliceWidth)
		if st.increments {
			oldest = oldest.Add(SliceWidth)
		}
		for k := to; k > from; k-- {
			end := time.UnixMilli(k * SliceWidth.Milliseconds())
			if end.Before(oldest) {
				break
			}
			if st.increments {
				if err := e.memoryIncrements(st, k); err != nil {
					return err
				}
			} else {
				b, a, err := e.badAll(ctx, e.opts.Querier, st, SliceWidth, end)
				if err != nil {
					return err
				}
				st.ring.put(k, b, a)
			}
			to = k - 1
		}
		if to <= from {
			return nil
		}
	}
	if st.increments {
		// From storage: the slices older than the buffers, or all of them
		// once the SLO's selectors were dropped from memory.
		return e.fillIncrements(ctx, st, from, to)
	}
	start := time.UnixMilli((from + 1) * SliceWidth.Milliseconds())
	end := time.UnixMilli(to * SliceWidth.Milliseconds())
	var bad, all map[int64]float64
	var err error
	if s.SLI.Kind == KindRaw {
		bad, err = e.rangeOrInstant(ctx, s.SLI.ratioExpr(SliceWidth), start, end)
		all = map[int64]float64{}
		for k := range bad {
			all[k] = 1
		}
	} else {
		if bad, err = e.rangeOrInstant(ctx, s.SLI.badExpr(SliceWidth), start, end); err == nil {
			all, err = e.rangeOrInstant(ctx, s.SLI.totalExpr(SliceWidth), start, end)
		}
	}
	if err != nil {
		return err
	}
	for k := from + 1; k <= to; k++ {
		ms := k * SliceWidth.Milliseconds()
		b, ok1 := bad[ms]
		a, ok2 := all[ms]
		if !ok1 || !ok2 {
			b, a = math.NaN(), math.NaN()
		}
		st.ring.put(k, b, a)
	}
	return nil
}

// memoryIncrements computes slice k's increments from the buffers.
func (e *Engine) memoryIncrements(st *state, k int64) error {
	ts := k * SliceWidth.Milliseconds()
	b, xb, ok1, err := e.bufs.evalIncrements(st.plan.bad[SliceWidth], ts)
	if err != nil {
		return err
	}
	a, xa, ok2, err := e.bufs.evalIncrements(st.plan.all[SliceWidth], ts)
	if err != nil {
		return err
	}
	st.putIncrements(k, b, xb, ok1, a, xa, ok2)
	return nil
}

// fillIncrements computes the increments of slices (from, to] from storage.
func (e *Engine) fillIncrements(ctx context.Context, st *state, from, to int64) error {
	bad, err := storageIncrements(ctx, e.opts.Queryable, st.plan.bad[SliceWidth], from, to)
	if err != nil {
		return err
	}
	all, err := storageIncrements(ctx, e.opts.Queryable, st.plan.all[SliceWidth], from, to)
	if err != nil {
		return err
	}
	for k := from + 1; k <= to; k++ {
		b, ok1 := bad[k]
		a, ok2 := all[k]
		st.putIncrements(k, b[0], b[1], ok1, a[0], a[1], ok2)
	}
	return nil
}

// putIncrements stores one slice's increments. Missing error series count
// zero errors, as badExpr's "or on() vector(0)"; a slice without total
// samples holds no data.
func (st *state) putIncrements(k int64, b, xb float64, okBad bool, a, xa float64, okAll bool) {
	if !okBad {
		b, xb = math.NaN(), math.NaN()
		if st.slo.SLI.Kind == KindEvents && st.slo.SLI.ErrorQuery != "" {
			b, xb = 0, 0
		}
	}
	if !okAll {
		b, a, xb, xa = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	st.ring.put(k, b, a)
	st.ring.putCross(k, xb, xa)
}

// periodIncrease is the Occurrences period of an SLO evaluated with
// PromQL: its bad and total events over the period's slices (pstart, the
// newest slice's end], the SLI's own expressions over that range, as
// increase(bad[P]) / increase(total[P]) reads them.
func (e *Engine) periodIncrease(ctx context.Context, st *state, pstart, at time.Time) (bad, all float64, err error) {
	end := sliceEnd(sliceKey(at))
	rng := end.Sub(sliceEnd(sliceKey(pstart)))
	if rng <= 0 {
		return math.NaN(), math.NaN(), nil
	}
	s := st.slo.SLI
	if bad, _, err = scalar(ctx, e.opts.Querier, s.badExpr(rng), end); err != nil {
		return 0, 0, err
	}
	if all, _, err = scalar(ctx, e.opts.Querier, s.totalExpr(rng), end); err != nil {
		return 0, 0, err
	}
	return bad * rng.Seconds(), all * rng.Seconds(), nil
}

// maxRangePoints keeps every range query under Prometheus's limit of
// 11,000 points per series (a 90-day period at 5m is 25,920).
const maxRangePoints = 10_000

func (e *Engine) rangeOrInstant(ctx context.Context, q string, start, end time.Time) (map[int64]float64, error) {
	if start.Equal(end) {
		v, ok, err := scalar(ctx, e.opts.Querier, q, start)
		if err != nil || !ok {
			return map[int64]float64{}, err
		}
		return map[int64]float64{start.UnixMilli(): v}, nil
	}
	out := map[int64]float64{}
	for from := start; !from.After(end); from = from.Add(maxRangePoints * SliceWidth) {
		to := from.Add((maxRangePoints - 1) * SliceWidth)
		if to.After(end) {
			to = end
		}
		var part map[int64]float64
		var err error
		if from.Equal(to) {
			part, err = e.rangeOrInstant(ctx, q, from, to)
		} else {
			part, err = e.opts.Querier.QueryRange(ctx, q, from, to, SliceWidth)
		}
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			out[k] = v
		}
	}
	return out, nil
}

// checkBuckets verifies against the data that a classic-histogram latency
// threshold is one of the histogram's `le` bounds, and adopts the label
// value as written in the data. No data yet is not an error.
func (e *Engine) checkBuckets(ctx context.Context, st *state, at time.Time) error {
	s := st.slo.SLI
	res, err := e.opts.Querier.Query(ctx, fmt.Sprintf("count by (le) (%s)", sel(s.Metric+"_bucket", s.Selector, "")), at)
	if err != nil || len(res) == 0 {
		return nil
	}
	st.checked = true
	var bounds []float64
	for _, r := range res {
		v, err := strconv.ParseFloat(r.Labels["le"], 64)
		if err != nil {
			continue
		}
		if v == s.Threshold {
			st.slo.SLI.Le = r.Labels["le"]
			return nil
		}
		bounds = append(bounds, v)
	}
	sort.Float64s(bounds)
	names := make([]string, len(bounds))
	for i, b := range bounds {
		names[i] = FormatLe(b)
	}
	return fmt.Errorf("%s:%d: latency threshold %v is not a bucket bound of %s; the data has le=%v", st.slo.File, st.slo.Line, s.Threshold, s.Metric, names)
}

// Snapshot returns the latest status of every SLO, for alerting and the
// deploy gate: per-window SLI, burn rate and event counts and the tier
// thresholds, without querying again.
func (e *Engine) Snapshot() []Status {
	out := make([]Status, 0, len(e.states))
	for _, st := range e.states {
		st.mu.RLock()
		if !st.last.EvaluatedAt.IsZero() {
			out = append(out, st.last)
		}
		st.mu.RUnlock()
	}
	return out
}

// Get returns the latest status and history of one SLO.
func (e *Engine) Get(id string) (Status, []Evaluation, error) {
	st, ok := e.byID[id]
	if !ok {
		return Status{}, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.last, append([]Evaluation(nil), st.history...), nil
}

// sloLabels are Sloth's identifying labels plus the SLO's own.
func sloLabels(s *SLO) map[string]string {
	m := map[string]string{}
	for k, v := range s.Labels {
		m[k] = v
	}
	m["sloth_id"], m["sloth_service"], m["sloth_slo"] = s.ID, s.Service, s.Name
	return m
}

func writeBack(app storage.Appender, s *SLO, st Status) error {
	ts := st.EvaluatedAt.UnixMilli()
	base := sloLabels(s)
	add := func(name string, extra map[string]string, v float64) error {
		b := labels.NewBuilder(labels.FromMap(base))
		b.Set(labels.MetricName, name)
		for k, val := range extra {
			b.Set(k, val)
		}
		_, err := app.Append(0, b.Labels(), ts, v)
		return err
	}
	var errs []error
	if st.Error == "" {
		for _, w := range st.Windows {
			errs = append(errs,
				add("slo:sli_error:ratio_rate"+w.Window, map[string]string{"sloth_window": w.Window}, float64(w.ErrorRatio)),
				add("slo:burn_rate:ratio", map[string]string{"sloth_window": w.Window}, float64(w.BurnRate)))
		}
		p := st.PeriodSLI
		w5, _ := st.Window("5m")
		errs = append(errs,
			add("slo:sli_error:ratio_rate"+FormatWindow(s.Period), map[string]string{"sloth_window": FormatWindow(s.Period)}, float64(p.ErrorRatio)),
			add("slo:current_burn_rate:ratio", nil, float64(w5.BurnRate)),
			add("slo:period_burn_rate:ratio", nil, float64(p.BurnRate)),
			add("slo:period_error_budget_remaining:ratio", nil, float64(st.BudgetRemaining)),
			add("slo:period_error_budget_consumed:ratio", nil, float64(st.BudgetConsumed)),
			add("slo:period_coverage:ratio", nil, float64(st.PeriodCoverage)))
		if s.Budgeting == Timeslices && !math.IsNaN(w5.eventRatio) {
			// The event ratio of the slice ending now, which the exported
			// Timeslices period rule samples at every slice's end.
			errs = append(errs, add("slo:slice_error:ratio_rate5m", nil, w5.eventRatio))
		}
		for _, f := range st.Forecasts {
			if !math.IsNaN(float64(f.Seconds)) {
				errs = append(errs, add("slo:error_budget_exhaustion:seconds", map[string]string{"sloth_window": f.Window}, float64(f.Seconds)))
			}
		}
	}
	errs = append(errs,
		add("slo:objective:ratio", nil, s.Objective),
		add("slo:error_budget:ratio", nil, s.ErrorBudget()),
		add("slo:time_period:days", nil, s.Period.Hours()/24),
		add("sloth_slo_info", map[string]string{"sloth_mode": "burnrate", "sloth_objective": strconv.FormatFloat(round15(s.Objective*100), 'f', -1, 64),
			"sloth_spec": "prometheus/v1", "sloth_version": "burnrate"}, 1))
	return errors.Join(errs...)
}

var nan = math.NaN()
