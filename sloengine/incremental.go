package sloengine

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/kahansum"
)

// Incremental evaluation.
//
// Most SLIs are sums and differences of sum(rate(<selector>[w])) terms
// (Sloth events, classic-histogram latency). For those, on the embedded
// TSDB, the engine keeps every matching series' raw samples of the longest
// window (3d) in memory and each cycle reads only the samples that arrived
// since the previous one, re-reading everything the TSDB may still accept
// late (its accept horizon), so a late sample reaches every window. Window
// rates, and the 5m rates of slices that just ended, are then computed from
// memory with Prometheus's own rate() arithmetic: the same range (t-w, t],
// counter-reset correction, extrapolation and zero clamp, and the same
// Kahan summation across series in label order. Any other SLI is evaluated
// with the PromQL engine.

// rereadMargin is re-read every cycle at least, on top of the accept
// horizon, so samples that arrive a little late are counted even where the
// horizon is not known exactly.
const rereadMargin = 5 * time.Minute

// linear is a sum of ±sum(rate(selector[w])) terms.
type linear []term

type term struct {
	sign float64
	sel  string // the vector selector, also the key of its buffer
}

// parseLinear recognises the expression shapes the fast path evaluates.
func parseLinear(q string, w time.Duration) (linear, bool) {
	e, err := promqlParser.ParseExpr(q)
	if err != nil {
		return nil, false
	}
	var walk func(e parser.Expr, sign float64) (linear, bool)
	walk = func(e parser.Expr, sign float64) (linear, bool) {
		switch n := e.(type) {
		case *parser.ParenExpr:
			return walk(n.Expr, sign)
		case *parser.BinaryExpr:
			if (n.Op != parser.ADD && n.Op != parser.SUB) || n.ReturnBool ||
				(n.VectorMatching != nil && (len(n.VectorMatching.MatchingLabels) > 0 || n.VectorMatching.On || len(n.VectorMatching.Include) > 0)) {
				return nil, false
			}
			l, ok := walk(n.LHS, sign)
			if !ok {
				return nil, false
			}
			rs := sign
			if n.Op == parser.SUB {
				rs = -sign
			}
			r, ok := walk(n.RHS, rs)
			if !ok {
				return nil, false
			}
			return append(l, r...), true
		case *parser.AggregateExpr:
			if n.Op != parser.SUM || len(n.Grouping) > 0 || n.Without || n.Param != nil {
				return nil, false
			}
			call, ok := n.Expr.(*parser.Call)
			if !ok || call.Func.Name != "rate" {
				return nil, false
			}
			ms, ok := call.Args[0].(*parser.MatrixSelector)
			if !ok || ms.Range != w {
				return nil, false
			}
			vs, ok := ms.VectorSelector.(*parser.VectorSelector)
			if !ok || vs.OriginalOffset != 0 || vs.Timestamp != nil || vs.StartOrEnd != 0 || vs.Anchored || vs.Smoothed {
				return nil, false
			}
			c := *vs
			c.PosRange = vs.PosRange
			return linear{{sign: sign, sel: c.String()}}, true
		}
		return nil, false
	}
	return walk(e, 1)
}

// plan is an SLO's fast-path form: error and total terms per window.
type plan struct {
	bad, all map[time.Duration]linear
}

func newPlan(s *SLO) *plan {
	if s.SLI.Kind == KindRaw || !s.SLI.rateBased() {
		return nil
	}
	p := &plan{bad: map[time.Duration]linear{}, all: map[time.Duration]linear{}}
	for _, w := range append([]time.Duration{SliceWidth}, Windows...) {
		b, ok1 := parseLinear(s.SLI.errorExpr(w), w)
		a, ok2 := parseLinear(s.SLI.totalExpr(w), w)
		if !ok1 || !ok2 {
			return nil
		}
		p.bad[w], p.all[w] = b, a
	}
	return p
}

func (p *plan) selectors() []string {
	var out []string
	for _, l := range []linear{p.bad[SliceWidth], p.all[SliceWidth]} {
		for _, t := range l {
			out = append(out, t.sel)
		}
	}
	return out
}

type point struct {
	t int64
	f float64
}

// seriesBuf holds one series' samples of the last maxWindow.
type seriesBuf struct {
	lset labels.Labels
	pts  []point
	// resets are indexes i where pts[i].f < pts[i-1].f.
	resets []int
	seen   int64 // cycle in which the series last matched
}

// selBuf is every series of one selector, in label order.
type selBuf struct {
	matchers []*labels.Matcher
	series   []*seriesBuf
	readTo   int64 // samples are complete up to this timestamp
	held     int64 // samples held
	// dropped is set once holding the selector would exceed the memory
	// bound; its SLOs are evaluated with PromQL from then on.
	dropped bool
}

type buffers struct {
	q      storage.Queryable
	keep   time.Duration
	mu     sync.Mutex
	sels   map[string]*selBuf
	cycle  int64
	failed map[string]error
	// total is the samples held; max bounds it (<= 0: no bound).
	total  atomic.Int64
	max    int64
	logger *slog.Logger
}

func newBuffers(q storage.Queryable, keep time.Duration, maxSamples int64, logger *slog.Logger) *buffers {
	return &buffers{q: q, keep: keep, sels: map[string]*selBuf{}, max: maxSamples, logger: logger}
}

// usable reports whether every selector of p is held in memory.
func (b *buffers) usable(p *plan) bool {
	for _, l := range []linear{p.bad[SliceWidth], p.all[SliceWidth]} {
		for _, t := range l {
			if b.sels[t.sel].dropped {
				return false
			}
		}
	}
	return true
}

func (b *buffers) add(sel string) {
	if _, ok := b.sels[sel]; ok {
		return
	}
	m, err := promqlParser.ParseMetricSelector(sel)
	if err != nil {
		return
	}
	b.sels[sel] = &selBuf{matchers: m, readTo: math.MinInt64}
}

// refresh reads, for every selector, the samples up to at that are not in
// memory yet, and drops those older than the longest window.
//
// refresh reads new samples for every selector, or for only those in
// only when it is not nil (a triggered evaluation of some SLOs).
func (b *buffers) refresh(ctx context.Context, at time.Time, accept int64, workers int, only map[string]bool) {
	b.cycle++
	keys := make([]string, 0, len(b.sels))
	for k := range b.sels {
		if only == nil || only[k] {
			keys = append(keys, k)
		}
	}
	failed := map[string]error{}
	if only != nil {
		for k, err := range b.failed {
			if !only[k] {
				failed[k] = err
			}
		}
	}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range work {
				if err := b.refreshOne(ctx, b.sels[k], at, accept); err != nil {
					mu.Lock()
					failed[k] = err
					mu.Unlock()
				}
				runtime.Gosched() // as the evaluation workers: requests first
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	b.failed = failed
}

func (b *buffers) refreshOne(ctx context.Context, sb *selBuf, at time.Time, accept int64) error {
	if sb.dropped {
		return nil
	}
	end := at.UnixMilli()
	oldest := end - b.keep.Milliseconds()
	from := oldest
	if sb.readTo != math.MinInt64 {
		from = max(oldest, min(sb.readTo-rereadMargin.Milliseconds(), accept))
	}
	if sb.readTo >= end && accept >= sb.readTo {
		return nil
	}
	qr, err := b.q.Querier(from, end)
	if err != nil {
		return err
	}
	defer qr.Close()
	ss := qr.Select(ctx, true, &storage.SelectHints{Start: from, End: end, Func: "rate"}, sb.matchers...)
	byLabels := make(map[uint64]*seriesBuf, len(sb.series))
	for _, s := range sb.series {
		byLabels[s.lset.Hash()] = s
	}
	added := false
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		lset := s.Labels()
		buf, ok := byLabels[lset.Hash()]
		if !ok {
			buf = &seriesBuf{lset: lset}
			sb.series = append(sb.series, buf)
			byLabels[lset.Hash()] = buf
			added = true
		}
		// Replace the re-read margin with what storage has now.
		cut := sort.Search(len(buf.pts), func(i int) bool { return buf.pts[i].t >= from })
		buf.pts = buf.pts[:cut]
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue // native histograms never take this path
			}
			t, f := it.At()
			if t > end || value.IsStaleNaN(f) {
				continue
			}
			buf.pts = append(buf.pts, point{t, f})
		}
		if err := it.Err(); err != nil {
			return err
		}
		buf.trim(oldest)
	}
	if err := ss.Err(); err != nil {
		return err
	}
	// Series that fell out of the window entirely are forgotten.
	kept := sb.series[:0]
	for _, s := range sb.series {
		s.trim(oldest)
		if len(s.pts) > 0 {
			kept = append(kept, s)
		}
	}
	sb.series = kept
	if added {
		sort.Slice(sb.series, func(i, j int) bool { return labels.Compare(sb.series[i].lset, sb.series[j].lset) < 0 })
	}
	sb.readTo = end
	var held int64
	for _, s := range sb.series {
		held += int64(len(s.pts))
	}
	if total := b.total.Add(held - sb.held); b.max > 0 && total > b.max {
		b.total.Add(-held)
		sb.series, sb.held, sb.dropped = nil, 0, true
		b.logger.Warn("SLO sample buffers are full; the SLOs reading this selector are evaluated with PromQL",
			"selector", sb.matchers, "samples", held, "max_buffered_samples", b.max)
		return nil
	}
	sb.held = held
	return nil
}

// trim drops samples at or before oldest and recomputes reset indexes.
func (s *seriesBuf) trim(oldest int64) {
	cut := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > oldest })
	if cut > len(s.pts)/2 && cut > 0 {
		// Copy down only when it frees half the slice, to amortise.
		s.pts = append(s.pts[:0:0], s.pts[cut:]...)
	} else if cut > 0 {
		s.pts = s.pts[cut:]
	}
	s.resets = s.resets[:0]
	for i := 1; i < len(s.pts); i++ {
		if s.pts[i].f < s.pts[i-1].f {
			s.resets = append(s.resets, i)
		}
	}
}

// rate is Prometheus 3's rate() of one series over (ts-w, ts].
func (s *seriesBuf) rate(ts int64, w time.Duration) (float64, bool) {
	start := ts - w.Milliseconds()
	lo := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > start })
	hi := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > ts }) - 1
	if hi-lo < 1 {
		return 0, false
	}
	first, last := s.pts[lo], s.pts[hi]
	result := last.f - first.f
	r := sort.SearchInts(s.resets, lo+1)
	for ; r < len(s.resets) && s.resets[r] <= hi; r++ {
		result += s.pts[s.resets[r]-1].f
	}
	durationToStart := float64(first.t-start) / 1000
	durationToEnd := float64(ts-last.t) / 1000
	sampledInterval := float64(last.t-first.t) / 1000
	avg := sampledInterval / float64(hi-lo)
	threshold := avg * 1.1
	if durationToStart >= threshold {
		durationToStart = avg / 2
	}
	durationToZero := durationToStart
	if result > 0 && first.f >= 0 {
		durationToZero = sampledInterval * (first.f / result)
	}
	if durationToZero < durationToStart {
		durationToStart = durationToZero
	}
	if durationToEnd >= threshold {
		durationToEnd = avg / 2
	}
	factor := (sampledInterval + durationToStart + durationToEnd) / sampledInterval
	factor /= w.Seconds()
	return result * factor, true
}

// sumRate is sum(rate(sel[w])) at ts: Kahan summation in label order, and
// no result when no series has two samples in the range.
func (sb *selBuf) sumRate(ts int64, w time.Duration) (float64, bool) {
	var sum, c float64
	any := false
	for _, s := range sb.series {
		r, ok := s.rate(ts, w)
		if !ok {
			continue
		}
		if !any {
			sum, any = r, true
			continue
		}
		sum, c = kahansum.Inc(r, sum, c)
	}
	return sum + c, any
}

// eval evaluates a linear form at ts; a missing term makes it missing, as
// a binary operation with an empty side is empty.
func (b *buffers) eval(l linear, ts int64, w time.Duration) (float64, bool, error) {
	var v float64
	for i, t := range l {
		if err := b.failed[t.sel]; err != nil {
			return 0, false, err
		}
		x, ok := b.sels[t.sel].sumRate(ts, w)
		if !ok {
			return 0, false, nil
		}
		if i == 0 {
			v = t.sign * x
		} else if t.sign > 0 {
			v += x
		} else {
			v -= x
		}
	}
	return v, true, nil
}

// Slice increments.
//
// An Occurrences period is increase(bad[P]) / increase(total[P]): per
// series, the counter's increase between consecutive samples inside the
// period (resets corrected), extrapolated to the period's edges. Summing
// 5-minute rates instead loses the increase between each slice's last
// sample and the next slice's first one and extrapolates every slice:
// with samples on the slice boundaries and errors in every fifth minute
// that reads 0.25 where the period holds 0.20. So an Occurrences slice on
// the fast path holds the increase from each series' last sample before
// the slice to its last sample in it (inc: these add up over any run of
// slices), and the part of it from that earlier sample to the slice's
// first sample (cross: subtracted for the period's first slice, whose
// earlier sample lies outside the period). The extrapolation factor is the
// same for every series scraped at the same instants, and cancels in the
// ratio.

// incDelta is a counter's increase from a to b, a reset when b < a.
func incDelta(a, b float64) float64 {
	if b < a {
		return b
	}
	return b - a
}

// increments returns the series' inc and cross for the slice (ts-w, ts];
// ok is false when no increase ends in the slice (no sample in it, or only
// the series' first).
func (s *seriesBuf) increments(ts int64, w time.Duration) (inc, cross float64, ok bool) {
	start := ts - w.Milliseconds()
	lo := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > start })
	hi := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > ts }) - 1
	if hi < lo || (lo == 0 && hi == lo) {
		return 0, 0, false
	}
	if lo > 0 {
		cross = incDelta(s.pts[lo-1].f, s.pts[lo].f)
	}
	inc = cross
	for i := lo + 1; i <= hi; i++ {
		inc += incDelta(s.pts[i-1].f, s.pts[i].f)
	}
	return inc, cross, true
}

// sumIncrements sums increments over the selector's series in label order;
// ok is false when no increase of any series ends in the slice.
func (sb *selBuf) sumIncrements(ts int64, w time.Duration) (inc, cross float64, ok bool) {
	var ic, cc float64
	for _, s := range sb.series {
		i, c, has := s.increments(ts, w)
		if !has {
			continue
		}
		inc, ic = kahansum.Inc(i, inc, ic)
		cross, cc = kahansum.Inc(c, cross, cc)
		ok = true
	}
	return inc + ic, cross + cc, ok
}

// evalIncrements is eval for slice increments: the linear form of the
// terms' inc and cross sums over the slice ending at ts.
func (b *buffers) evalIncrements(l linear, ts int64) (inc, cross float64, ok bool, err error) {
	for _, t := range l {
		if err := b.failed[t.sel]; err != nil {
			return 0, 0, false, err
		}
		i, c, has := b.sels[t.sel].sumIncrements(ts, SliceWidth)
		if !has {
			return 0, 0, false, nil
		}
		inc += t.sign * i
		cross += t.sign * c
	}
	return inc, cross, true, nil
}

// incrementLookback is how far before the first slice storageIncrements
// looks for each series' earlier sample.
const incrementLookback = time.Hour

// sliceIncrements are the inc and cross sums of one linear form per slice
// key; a key is absent when no increase of any series of some term ends in
// the slice.
type sliceIncrements map[int64][2]float64

// storageIncrements computes the slice increments of l for the slices
// (from, to] from the samples in storage, for the slices older than the
// buffers hold (the first cycle, a restart without a checkpoint).
func storageIncrements(ctx context.Context, q storage.Queryable, l linear, from, to int64) (sliceIncrements, error) {
	width := SliceWidth.Milliseconds()
	mint, maxt := from*width-incrementLookback.Milliseconds(), to*width
	qr, err := q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	var out sliceIncrements
	for ti, t := range l {
		m, err := promqlParser.ParseMetricSelector(t.sel)
		if err != nil {
			return nil, err
		}
		sums := map[int64][2]float64{}
		ss := qr.Select(ctx, true, &storage.SelectHints{Start: mint, End: maxt, Func: "rate"}, m...)
		var it chunkenc.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it)
			var prev point
			havePrev := false
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				if vt != chunkenc.ValFloat {
					continue
				}
				ts, f := it.At()
				if ts > maxt || value.IsStaleNaN(f) {
					continue
				}
				k := floorDiv(ts-1, width) + 1 // the slice (end-5m, end] holding ts
				if k > from && havePrev {
					v := sums[k]
					d := incDelta(prev.f, f)
					v[0] += d
					if prev.t <= (k-1)*width {
						v[1] += d
					}
					sums[k] = v
				}
				prev, havePrev = point{ts, f}, true
			}
			if err := it.Err(); err != nil {
				return nil, err
			}
		}
		if err := ss.Err(); err != nil {
			return nil, err
		}
		if ti == 0 {
			out = sliceIncrements{}
			for k, v := range sums {
				out[k] = [2]float64{t.sign * v[0], t.sign * v[1]}
			}
			continue
		}
		for k, v := range out {
			x, ok := sums[k]
			if !ok {
				delete(out, k) // a term without samples leaves the form without a value
				continue
			}
			out[k] = [2]float64{v[0] + t.sign*x[0], v[1] + t.sign*x[1]}
		}
	}
	return out, nil
}
