package sloengine

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Detection on arrival.
//
// Besides its ticker, Run evaluates an SLO as soon as samples for one of
// its series are committed: whoever appends calls SeriesAppended (or
// appends through Engine.Appendable, which does it on Commit), the SLOs
// whose selectors match are marked, and Run evaluates just those after
// TriggerDelay (which batches a burst of commits into one evaluation).
// OnEvaluated then receives their statuses, for alerting to run its rules
// right after.

// watch is one vector selector of one SLO.
type watch struct {
	matchers []*labels.Matcher
	st       *state
}

// watches indexes every SLO's vector selectors by metric name.
type watches struct {
	byName map[string][]watch
	// anyName holds selectors without a fixed metric name.
	anyName []watch

	mu      sync.Mutex
	pending map[*state]bool
	signal  chan struct{}
}

func newWatches(states []*state) *watches {
	w := &watches{byName: map[string][]watch{}, pending: map[*state]bool{}, signal: make(chan struct{}, 1)}
	for _, st := range states {
		for _, q := range st.slo.SLI.queries() {
			expr, err := promqlParser.ParseExpr(q)
			if err != nil {
				continue
			}
			for _, ms := range parser.ExtractSelectors(expr) {
				name := ""
				for _, m := range ms {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
				if name == "" {
					w.anyName = append(w.anyName, watch{ms, st})
				} else {
					w.byName[name] = append(w.byName[name], watch{ms, st})
				}
			}
		}
	}
	return w
}

// queries are the SLI's PromQL expressions over the 5m window.
func (s *SLI) queries() []string {
	if s.Kind == KindRaw {
		return []string{s.ratioExpr(SliceWidth)}
	}
	return []string{s.badExpr(SliceWidth), s.totalExpr(SliceWidth)}
}

func matchAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// SeriesAppended marks the SLOs reading series lset for evaluation on
// arrival and wakes Run. It is cheap and safe to call from any goroutine.
func (e *Engine) SeriesAppended(lset labels.Labels) {
	w := e.watches
	marked := false
	check := func(list []watch) {
		for _, x := range list {
			if matchAll(x.matchers, lset) {
				w.mu.Lock()
				if !w.pending[x.st] {
					w.pending[x.st], marked = true, true
				}
				w.mu.Unlock()
			}
		}
	}
	check(w.byName[lset.Get(labels.MetricName)])
	check(w.anyName)
	if marked {
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// takePending returns the SLOs marked since the last call, in load order.
func (w *watches) takePending(all []*state) []*state {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	var out []*state
	for _, st := range all {
		if w.pending[st] {
			out = append(out, st)
		}
	}
	clear(w.pending)
	return out
}

// EvaluatePending evaluates, at at, only the SLOs whose series received
// samples since the last evaluation (Run calls it on arrival); it reports
// how many it evaluated.
func (e *Engine) EvaluatePending(ctx context.Context, at time.Time) int {
	states := e.watches.takePending(e.states)
	if len(states) > 0 {
		e.evaluateStates(ctx, at, states)
	}
	return len(states)
}

// Appendable wraps next so that every committed append marks the SLOs
// reading the appended series (SeriesAppended): ingest can append through
// it to have SLOs evaluated on arrival.
func (e *Engine) Appendable(next storage.Appendable) storage.Appendable {
	return notifyingAppendable{next: next, e: e}
}

type notifyingAppendable struct {
	next storage.Appendable
	e    *Engine
}

func (n notifyingAppendable) Appender(ctx context.Context) storage.Appender {
	return &notifyingAppender{Appender: n.next.Appender(ctx), e: n.e}
}

type notifyingAppender struct {
	storage.Appender
	e    *Engine
	seen []labels.Labels
	refs map[storage.SeriesRef]bool
}

func (a *notifyingAppender) note(ref storage.SeriesRef, l labels.Labels) {
	if a.refs == nil {
		a.refs = map[storage.SeriesRef]bool{}
	}
	if ref != 0 && a.refs[ref] {
		return
	}
	a.refs[ref] = true
	a.seen = append(a.seen, l)
}

func (a *notifyingAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	r, err := a.Appender.Append(ref, l, t, v)
	if err == nil {
		a.note(r, l)
	}
	return r, err
}

func (a *notifyingAppender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	r, err := a.Appender.AppendHistogram(ref, l, t, h, fh)
	if err == nil {
		a.note(r, l)
	}
	return r, err
}

func (a *notifyingAppender) AppendExemplar(ref storage.SeriesRef, l labels.Labels, x exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.Appender.AppendExemplar(ref, l, x)
}

func (a *notifyingAppender) UpdateMetadata(ref storage.SeriesRef, l labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	return a.Appender.UpdateMetadata(ref, l, m)
}

func (a *notifyingAppender) Commit() error {
	if err := a.Appender.Commit(); err != nil {
		return err
	}
	for _, l := range a.seen {
		a.e.SeriesAppended(l)
	}
	a.seen, a.refs = nil, nil
	return nil
}

func (a *notifyingAppender) Rollback() error {
	a.seen, a.refs = nil, nil
	return a.Appender.Rollback()
}
