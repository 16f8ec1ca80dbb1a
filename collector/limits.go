package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// ErrSeriesLimit is returned (wrapped, with the counts) for a sample that
// would create a series beyond collector.limits.max_active_series.
var ErrSeriesLimit = errors.New("active series limit reached")

// ErrMetricSeriesLimit is returned (wrapped) for a sample that would create a
// series beyond collector.limits.max_series_per_metric.
var ErrMetricSeriesLimit = errors.New("per-metric series limit reached")

// ErrInvalidLabels is returned (wrapped) for a sample whose labels break the
// naming rules or the label limits.
var ErrInvalidLabels = errors.New("invalid labels")

// limiter admits or rejects series. It tracks the series of the TSDB head,
// by label hash, so that the check for a known series is one read-locked
// map lookup; only new series take the global lock. Its set follows the
// head: rebuilt from it on start (the WAL replay), and swept of series the
// head no longer has (after the head compaction that follows their last
// sample), so that the limits bound the head itself, across restarts.
type limiter struct {
	cfg    LimitsConfig
	shards [256]limiterShard
	total  atomic.Int64
	gen    atomic.Uint32 // the current sweep's mark

	mu        sync.Mutex
	perMetric map[string]int
}

type limiterShard struct {
	mu sync.RWMutex
	m  map[uint64]*trackedSeries
}

type trackedSeries struct {
	metric   string
	lastSeen atomic.Int64  // unix seconds
	gen      atomic.Uint32 // the last sweep that found it in the head
}

func newLimiter(cfg LimitsConfig) *limiter {
	l := &limiter{cfg: cfg, perMetric: map[string]int{}}
	for i := range l.shards {
		l.shards[i].m = map[uint64]*trackedSeries{}
	}
	return l
}

// headSeries calls fn with the labels of every series in the head.
func headSeries(ctx context.Context, db *tsdb.DB, fn func(labels.Labels)) error {
	ir, err := db.Head().Index()
	if err != nil {
		return fmt.Errorf("head index: %w", err)
	}
	defer func() { _ = ir.Close() }()
	name, value := index.AllPostingsKey()
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return fmt.Errorf("head postings: %w", err)
	}
	var b labels.ScratchBuilder
	for p.Next() {
		if err := ir.Series(p.At(), &b, nil); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // garbage-collected meanwhile
			}
			return fmt.Errorf("head series: %w", err)
		}
		fn(b.Labels())
	}
	return p.Err()
}

// rebuild tracks every series of the head, beyond the limits if need be:
// they are in memory already, and new series wait until enough go.
func (l *limiter) rebuild(ctx context.Context, db *tsdb.DB, now time.Time) error {
	if !l.tracking() {
		return nil
	}
	return headSeries(ctx, db, func(ls labels.Labels) {
		h := ls.Hash()
		sh := &l.shards[h%uint64(len(l.shards))]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if sh.m[h] == nil {
			l.mu.Lock()
			l.track(sh, h, ls.Get(model.MetricNameLabel), now.Unix())
			l.mu.Unlock()
		}
	})
}

// track adds a series; the caller holds sh.mu and l.mu.
func (l *limiter) track(sh *limiterShard, h uint64, metric string, now int64) {
	s := &trackedSeries{metric: metric}
	s.lastSeen.Store(now)
	s.gen.Store(l.gen.Load())
	sh.m[h] = s
	l.perMetric[metric]++
	l.total.Add(1)
}

// untrack removes a series; the caller holds sh.mu.
func (l *limiter) untrack(sh *limiterShard, h uint64, s *trackedSeries) {
	delete(sh.m, h)
	l.total.Add(-1)
	l.mu.Lock()
	if l.perMetric[s.metric]--; l.perMetric[s.metric] <= 0 {
		delete(l.perMetric, s.metric)
	}
	l.mu.Unlock()
}

// release forgets series a failed request created, so that its slots go
// back: the head drops them at its next garbage collection, and the WAL
// never saw them.
func (l *limiter) release(hashes []uint64) {
	for _, h := range hashes {
		sh := &l.shards[h%uint64(len(l.shards))]
		sh.mu.Lock()
		if s := sh.m[h]; s != nil {
			l.untrack(sh, h, s)
		}
		sh.mu.Unlock()
	}
}

// tracking reports whether series are tracked at all: without series limits
// the map would cost memory for nothing.
func (l *limiter) tracking() bool {
	return l.cfg.MaxActiveSeries > 0 || l.cfg.MaxSeriesPerMetric > 0
}

// validate checks the label limits. The naming rules (a metric name, valid
// label names, no duplicates) are enforced before a sample gets here by
// Prometheus's remote-write handler, its OTLP translator and its scrape
// loop, so they are not checked twice on the hot path.
func (l *limiter) validate(ls labels.Labels) (string, error) {
	if m := l.cfg.MaxLabelsPerSeries; m > 0 && ls.Len() > m {
		return reasonInvalidLabels, fmt.Errorf("%w: series of %s has %d labels, more than the limit of %d (collector.limits.max_labels_per_series)", ErrInvalidLabels, ls.Get(model.MetricNameLabel), ls.Len(), m)
	}
	if m := l.cfg.MaxLabelValueLength; m > 0 {
		var (
			bad   labels.Label
			found bool
		)
		ls.Range(func(lb labels.Label) {
			if !found && len(lb.Value) > m {
				bad, found = lb, true
			}
		})
		if found {
			return reasonInvalidLabels, fmt.Errorf("%w: label %q of %s is %d bytes long, more than the limit of %d (collector.limits.max_label_value_length)", ErrInvalidLabels, bad.Name, ls.Get(model.MetricNameLabel), len(bad.Value), m)
		}
	}
	return "", nil
}

// truncatedMarker ends a target_info label value cut to
// collector.limits.max_label_value_length.
const truncatedMarker = "...(truncated)"

// truncateLongValues cuts the label values of ls longer than the value
// length limit to the limit, ending them with truncatedMarker. It is for
// target_info, whose labels are every resource attribute: one long command
// line must not cost a service its target_info.
func (l *limiter) truncateLongValues(ls labels.Labels) labels.Labels {
	m := l.cfg.MaxLabelValueLength
	if m <= 0 {
		return ls
	}
	long := false
	ls.Range(func(lb labels.Label) { long = long || len(lb.Value) > m })
	if !long {
		return ls
	}
	b := labels.NewBuilder(ls)
	ls.Range(func(lb labels.Label) {
		if len(lb.Value) > m {
			b.Set(lb.Name, truncateUTF8(lb.Value, m-len(truncatedMarker))+truncatedMarker)
		}
	})
	return b.Labels()
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// admit returns a reason and an error when a sample of ls must be rejected,
// and the hash of the series when this call began tracking it. now is in
// unix seconds.
func (l *limiter) admit(ls labels.Labels, now int64) (created uint64, reason string, err error) {
	if reason, err := l.validate(ls); err != nil {
		return 0, reason, err
	}
	if !l.tracking() {
		return 0, "", nil
	}
	h := ls.Hash()
	sh := &l.shards[h%uint64(len(l.shards))]
	sh.mu.RLock()
	s := sh.m[h]
	sh.mu.RUnlock()
	if s != nil {
		if s.lastSeen.Load() != now {
			s.lastSeen.Store(now)
		}
		return 0, "", nil
	}

	name := ls.Get(model.MetricNameLabel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[h]; s != nil {
		return 0, "", nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.cfg.MaxActiveSeries; m > 0 && l.total.Load() >= int64(m) {
		return 0, reasonSeriesLimit, fmt.Errorf("%w: %d active series, the limit is %d (collector.limits.max_active_series); new series of %s rejected", ErrSeriesLimit, l.total.Load(), m, name)
	}
	if m := l.cfg.MaxSeriesPerMetric; m > 0 && l.perMetric[name] >= m {
		return 0, reasonMetricSeriesLimit, fmt.Errorf("%w: metric %s has %d active series, the limit is %d (collector.limits.max_series_per_metric)", ErrMetricSeriesLimit, name, l.perMetric[name], m)
	}
	l.track(sh, h, name, now)
	return h, "", nil
}

// sweep forgets the series the head no longer has, so that they no longer
// count against the limits. Series seen since the sweep began are kept:
// their appends may not have reached the head yet.
func (l *limiter) sweep(ctx context.Context, db *tsdb.DB, now time.Time) error {
	if !l.tracking() {
		return nil
	}
	gen := l.gen.Add(1)
	err := headSeries(ctx, db, func(ls labels.Labels) {
		h := ls.Hash()
		sh := &l.shards[h%uint64(len(l.shards))]
		sh.mu.RLock()
		if s := sh.m[h]; s != nil {
			s.gen.Store(gen)
		}
		sh.mu.RUnlock()
	})
	if err != nil {
		return err
	}
	start := now.Unix()
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for h, s := range sh.m {
			if s.gen.Load() != gen && s.lastSeen.Load() < start {
				l.untrack(sh, h, s)
			}
		}
		sh.mu.Unlock()
	}
	return nil
}

// ingestCounts accumulates the outcome of one request or one scrape.
type ingestCounts struct {
	accepted int
	// acceptedHistograms is the part of accepted that were histograms
	// (remote write 2.0 reports them apart).
	acceptedHistograms int
	rejected           map[string]int
	// firstErr is the first rejection, reported to the sender.
	firstErr error
}

func (c *ingestCounts) reject(reason string, n int, err error) {
	if c.rejected == nil {
		c.rejected = map[string]int{}
	}
	c.rejected[reason] += n
	if c.firstErr == nil {
		c.firstErr = err
	}
}

func (c *ingestCounts) add(o ingestCounts) {
	c.accepted += o.accepted
	c.acceptedHistograms += o.acceptedHistograms
	for r, n := range o.rejected {
		c.reject(r, n, o.firstErr)
	}
	if c.firstErr == nil {
		c.firstErr = o.firstErr
	}
}

func (c *ingestCounts) rejectedTotal() int {
	n := 0
	for _, v := range c.rejected {
		n += v
	}
	return n
}

// summary is the message a sender gets for a partly rejected request.
func (c *ingestCounts) summary() string {
	if c.rejectedTotal() == 0 {
		return ""
	}
	var parts []string
	for _, r := range reasons {
		if n := c.rejected[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r, n))
		}
	}
	msg := fmt.Sprintf("%d of %d samples rejected (%s)", c.rejectedTotal(), c.rejectedTotal()+c.accepted, strings.Join(parts, ", "))
	if c.firstErr != nil {
		msg += "; first: " + c.firstErr.Error()
	}
	return msg
}

// requestState travels in the request context from the HTTP handler to the
// appenders, which add their counts at Commit or Rollback.
type requestState struct {
	protocol string
	mu       sync.Mutex
	counts   ingestCounts
}

type requestStateKey struct{}

func withRequestState(ctx context.Context, protocol string) (context.Context, *requestState) {
	st := &requestState{protocol: protocol}
	return context.WithValue(ctx, requestStateKey{}, st), st
}

func requestStateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	return st
}

// classify maps a TSDB append error to a rejection reason.
func classify(err error) string {
	var herr histogram.Error
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return reasonOutOfOrder
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return reasonDuplicate
	case errors.Is(err, storage.ErrTooOldSample):
		return reasonTooOld
	case errors.Is(err, storage.ErrOutOfBounds):
		return reasonOutOfBounds
	case errors.Is(err, ErrSeriesLimit):
		return reasonSeriesLimit
	case errors.Is(err, ErrMetricSeriesLimit):
		return reasonMetricSeriesLimit
	case errors.Is(err, ErrInvalidLabels):
		return reasonInvalidLabels
	case errors.As(err, &herr), errors.Is(err, storage.ErrNativeHistogramsDisabled):
		return reasonInvalidSample
	}
	return reasonOther
}

// guardedStorage puts the limiter and the accounting in front of the TSDB
// for every outside writer (OTLP, remote write, scrape).
type guardedStorage struct {
	db       storage.Storage
	limiter  *limiter
	metrics  *metrics
	protocol string // used when the context carries no request state
	now      func() time.Time
	// observe, when set, is told once per request of every series that a
	// committed request wrote to (the SLO engine evaluates on arrival).
	observe *atomic.Pointer[func(labels.Labels)]
	// health is told of every commit's outcome, for readiness.
	health *storageHealth
}

func (g *guardedStorage) withProtocol(p string) *guardedStorage {
	c := *g
	c.protocol = p
	return &c
}

func (g *guardedStorage) state(ctx context.Context) (*requestState, string) {
	if st := requestStateFrom(ctx); st != nil {
		return st, st.protocol
	}
	return nil, g.protocol
}

func (g *guardedStorage) flush(st *requestState, protocol string, c ingestCounts) {
	if c.accepted > 0 {
		g.metrics.samplesAccepted.WithLabelValues(protocol).Add(float64(c.accepted))
	}
	for r, n := range c.rejected {
		g.metrics.samplesRejected.WithLabelValues(protocol, r).Add(float64(n))
	}
	if st != nil {
		st.mu.Lock()
		st.counts.add(c)
		st.mu.Unlock()
	}
}

// Appender returns a V1 appender (remote-write receive, scrape). Limit
// rejections are counted and swallowed so that the rest of the batch goes
// in; TSDB errors are returned to the caller as the TSDB returns them, so
// that the Prometheus handlers answer as Prometheus does.
func (g *guardedStorage) Appender(ctx context.Context) storage.Appender {
	st, p := g.state(ctx)
	return &guardedAppender{Appender: g.db.Appender(ctx), tally: tally{g: g, st: st, protocol: p, now: g.now().Unix()}}
}

// AppenderV2 returns a V2 appender (OTLP) that writes at most
// targetInfoBudget target_info samples. Every per-sample error of a data
// point is counted and swallowed: the OTLP translator would otherwise drop
// the rest of the metric, and the sender learns the counts as partial
// success. target_info errors are returned, so that the translator's loop
// stops (see targetInfoGuard).
func (g *guardedStorage) AppenderV2(ctx context.Context, targetInfoBudget int) storage.AppenderV2 {
	st, p := g.state(ctx)
	return &guardedAppenderV2{AppenderV2: g.db.AppenderV2(ctx), tally: tally{g: g, st: st, protocol: p, now: g.now().Unix()},
		targetInfo: targetInfoGuard{budget: targetInfoBudget, newestT: math.MinInt64}}
}

// tally is the per-request accounting both appender versions share: what
// was admitted, what was rejected and why, flushed once per request.
type tally struct {
	g        *guardedStorage
	st       *requestState
	protocol string
	now      int64
	pending  ingestCounts
	created  []uint64 // series this appender began tracking
	// written are the series of this request, for the observer.
	written map[uint64]labels.Labels
}

// admit asks the limiter about ls, remembering the series it creates so
// that a failed request gives their slots back.
func (t *tally) admit(ls labels.Labels) (string, error) {
	h, reason, err := t.g.limiter.admit(ls, t.now)
	if h != 0 {
		t.created = append(t.created, h)
	}
	if err == nil && t.g.observe != nil && t.g.observe.Load() != nil {
		if t.written == nil {
			t.written = map[uint64]labels.Labels{}
		}
		k := ls.Hash()
		if _, ok := t.written[k]; !ok {
			t.written[k] = ls
		}
	}
	return reason, err
}

// done ends the request's accounting; failed releases the series it
// created.
func (t *tally) done(failed bool) {
	if failed {
		t.g.limiter.release(t.created)
	}
	t.created = nil
}

// committed records the outcome of Commit: on failure every sample admitted
// so far counts as rolled back.
func (t *tally) committed(err error) error {
	if t.g.health != nil {
		t.g.health.record(err, t.g.now())
	}
	c := t.pending
	if err != nil {
		c.reject(reasonRolledBack, c.accepted, err)
		c.accepted, c.acceptedHistograms = 0, 0
	}
	t.g.flush(t.st, t.protocol, c)
	t.pending = ingestCounts{}
	t.done(err != nil)
	if err == nil && len(t.written) > 0 {
		if fn := t.g.observe.Load(); fn != nil {
			for _, ls := range t.written {
				(*fn)(ls)
			}
		}
	}
	t.written = nil
	return err
}

// rolledBack records a Rollback: every sample admitted so far is rejected.
func (t *tally) rolledBack() {
	c := t.pending
	if c.accepted > 0 {
		c.reject(reasonRolledBack, c.accepted, errors.New("the request was rolled back"))
		c.accepted, c.acceptedHistograms = 0, 0
	}
	t.g.flush(t.st, t.protocol, c)
	t.pending = ingestCounts{}
	t.done(true)
	t.written = nil
}

type guardedAppender struct {
	storage.Appender
	tally
}

func (a *guardedAppender) admitSample(ls labels.Labels) bool {
	if reason, err := a.admit(ls); err != nil {
		a.pending.reject(reason, 1, err)
		return false
	}
	return true
}

func (a *guardedAppender) result(ref storage.SeriesRef, err error) (storage.SeriesRef, error) {
	if err != nil {
		a.pending.reject(classify(err), 1, err)
		return ref, err
	}
	a.pending.accepted++
	return ref, nil
}

func (a *guardedAppender) Append(ref storage.SeriesRef, ls labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if !a.admitSample(ls) {
		return 0, nil
	}
	return a.result(a.Appender.Append(ref, ls, t, v))
}

func (a *guardedAppender) AppendHistogram(ref storage.SeriesRef, ls labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if !a.admitSample(ls) {
		return 0, nil
	}
	ref, err := a.result(a.Appender.AppendHistogram(ref, ls, t, h, fh))
	if err == nil {
		a.pending.acceptedHistograms++
	}
	return ref, err
}

// AppendSTZeroSample admits the series first: remote write 2.0 calls it
// before Append, and it would otherwise create a series the limits refuse.
// A refused zero sample is not counted (the sample after it is).
func (a *guardedAppender) AppendSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if _, err := a.admit(ls); err != nil {
		return 0, nil
	}
	return a.Appender.AppendSTZeroSample(ref, ls, t, st)
}

// AppendHistogramSTZeroSample is AppendSTZeroSample for histograms.
func (a *guardedAppender) AppendHistogramSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if _, err := a.admit(ls); err != nil {
		return 0, nil
	}
	return a.Appender.AppendHistogramSTZeroSample(ref, ls, t, st, h, fh)
}

func (a *guardedAppender) AppendExemplar(ref storage.SeriesRef, ls labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.Appender.AppendExemplar(ref, ls, e)
}

func (a *guardedAppender) Commit() error { return a.committed(a.Appender.Commit()) }

func (a *guardedAppender) Rollback() error {
	a.rolledBack()
	return a.Appender.Rollback()
}

type guardedAppenderV2 struct {
	storage.AppenderV2
	tally
	targetInfo targetInfoGuard
}

// countedError is an append error the appender has already counted, so
// that the caller does not count it again as a translation error.
type countedError struct{ err error }

func (e countedError) Error() string { return e.err.Error() }
func (e countedError) Unwrap() error { return e.err }

// errTargetInfoBudget is returned (wrapped) for a target_info sample beyond
// the request's budget (see targetInfoBudget).
var errTargetInfoBudget = errors.New("target_info sample budget of the request spent")

// targetInfoGuard bounds what the OTLP translator's target_info loop can
// cost. The translator writes a target_info sample every lookback_delta/2
// between a resource's earliest and latest point, so two points years apart
// would mean millions of appends. The guard stops the loop at its first
// error, as Prometheus's own OTLP handler does (it returns the error), and
// after budget samples per request; a stopped loop still gets one sample at
// the resource's newest point, so that joins on target_info keep working
// for the present.
type targetInfoGuard struct {
	budget  int   // samples left in this request
	newestT int64 // newest sample of the resource being translated
	inLoop  bool  // the last append was a target_info sample
	stopped bool  // this resource's loop was stopped
}

// targetInfoBudget is the number of target_info samples a request may
// write: two per resource (its earliest and latest point) and 1,000 more
// (41h40m of span at the default lookback delta) shared by all.
func targetInfoBudget(md pmetric.Metrics) int {
	return 2*md.ResourceMetrics().Len() + 1_000
}

func isTargetInfo(ls labels.Labels) bool {
	return ls.Get(model.MetricNameLabel) == "target_info"
}

func (a *guardedAppenderV2) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	g := &a.targetInfo
	if !isTargetInfo(ls) {
		if g.inLoop {
			// The translator moved on to the next resource.
			*g = targetInfoGuard{budget: g.budget, newestT: math.MinInt64}
		}
		g.newestT = max(g.newestT, t)
		_, _ = a.append(ref, ls, st, t, v, h, fh, opts)
		return ref, nil // counted; the rest of the metric still goes in
	}
	g.inLoop = true
	ls = a.g.limiter.truncateLongValues(ls)
	if g.stopped {
		return 0, countedError{errTargetInfoBudget}
	}
	if g.budget <= 0 {
		err := fmt.Errorf("%w (at most 2 per resource and 1000 more per request)", errTargetInfoBudget)
		a.pending.reject(reasonTargetInfoLimit, 1, err)
		a.stopTargetInfo(ls, t, opts)
		return 0, countedError{err}
	}
	g.budget--
	ref, err := a.append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		a.stopTargetInfo(ls, t, opts)
		return 0, countedError{err}
	}
	return ref, nil
}

// stopTargetInfo ends a resource's target_info loop refused at t with one
// sample at the resource's newest point.
func (a *guardedAppenderV2) stopTargetInfo(ls labels.Labels, t int64, opts storage.AOptions) {
	g := &a.targetInfo
	g.stopped = true
	if g.newestT > t {
		_, _ = a.append(0, ls, 0, g.newestT, 1, nil, nil, opts)
	}
}

// append admits and appends one sample, counting the outcome.
func (a *guardedAppenderV2) append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if reason, err := a.admit(ls); err != nil {
		a.pending.reject(reason, 1, err)
		return 0, err
	}
	ref, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		var partial *storage.AppendPartialError
		if _, herr := partial.Handle(err); herr == nil {
			// Only exemplars failed (out of order, usually); the sample is in.
			a.pending.accepted++
			return ref, nil
		}
		if a.pending.firstErr == nil {
			err = fmt.Errorf("%w (series %s)", err, ls.String())
		}
		a.pending.reject(classify(err), 1, err)
		return 0, err
	}
	a.pending.accepted++
	return ref, nil
}

func (a *guardedAppenderV2) Commit() error { return a.committed(a.AppenderV2.Commit()) }

func (a *guardedAppenderV2) Rollback() error {
	a.rolledBack()
	return a.AppenderV2.Rollback()
}
