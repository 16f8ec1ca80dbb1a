package sloengine

import (
	"time"
)

// periodBounds returns the start of the period that holds at and the full
// length of that period. Rolling periods start at at-Period; calendar
// periods start at the last week, month or quarter boundary in the SLO's
// zone, which is when the budget resets. Lengths are real durations, so a
// month with a DST change is 1h shorter or longer.
func (s *SLO) periodBounds(at time.Time) (start time.Time, length time.Duration) {
	if s.Calendar == nil {
		return at.Add(-s.Period), s.Period
	}
	loc := s.Calendar.Location
	t := at.In(loc)
	var from, to time.Time
	switch s.Calendar.Unit {
	case "week":
		// ISO weeks start on Monday.
		back := (int(t.Weekday()) + 6) % 7
		from = time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, loc)
		to = time.Date(from.Year(), from.Month(), from.Day()+7, 0, 0, 0, 0, loc)
	case "quarter":
		m := time.Month((int(t.Month())-1)/3*3 + 1)
		from = time.Date(t.Year(), m, 1, 0, 0, 0, 0, loc)
		to = from.AddDate(0, 3, 0)
	default: // month
		from = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		to = from.AddDate(0, 1, 0)
	}
	return from.UTC(), to.Sub(from)
}

// maxPeriod bounds how many slices the ring must hold.
func (s *SLO) maxPeriod() time.Duration {
	if s.Calendar == nil {
		return s.Period
	}
	switch s.Calendar.Unit {
	case "week":
		return 7*24*time.Hour + time.Hour
	case "quarter":
		return 92*24*time.Hour + time.Hour
	}
	return 31*24*time.Hour + time.Hour
}

// ringSpan is how far back the slice ring reaches: the longest period,
// and for a Timeslices SLO at least the longest window too, whose burn rate
// is counted in slices.
func (s *SLO) ringSpan() time.Duration {
	if s.Budgeting == Timeslices {
		return max(s.maxPeriod(), Windows[len(Windows)-1])
	}
	return s.maxPeriod()
}

// sliceRatio makes w a Timeslices window: its error ratio is the share of
// the 5-minute slices ending inside it (those with traffic) that missed the
// slice target, the unit the budget is counted in, so its burn rate, the
// tiers that compare it and the forecasts that divide by it are in slices
// too. The event ratio over the window is kept for the slo:slice_error
// series.
func (w *WindowStatus) sliceRatio(r *ring, at time.Time, s *SLO) {
	w.eventRatio = float64(w.ErrorRatio)
	agg := r.aggregate(sliceKey(at.Add(-w.Length)), sliceKey(at), 1-s.TimeSliceTarget)
	ratio := float64(agg.badSlice) / float64(agg.slices) // NaN without slices
	w.Slices, w.BadSlices = agg.slices, agg.badSlice
	w.ErrorRatio, w.SLI, w.BurnRate = Value(ratio), Value(1-ratio), Value(ratio/s.ErrorBudget())
}

// sliceKey is the index of the 5-minute slice that ends at or before t.
func sliceKey(t time.Time) int64 { return floorDiv(t.UnixMilli(), SliceWidth.Milliseconds()) }

// sliceEnd is the end of slice k; the slice covers (end-5m, end].
func sliceEnd(k int64) time.Time { return time.UnixMilli(k * SliceWidth.Milliseconds()).UTC() }

// sliceStart is the start of slice k.
func sliceStart(k int64) time.Time { return sliceEnd(k - 1) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// ring keeps one entry per 5-minute slice: the error and total values of
// the SLI's 5m expressions evaluated at the slice's end. A period is a sum
// over the slices whose end lies inside it, so each cycle only queries the
// slices that ended since the previous cycle. Keys are implied by position:
// the engine writes every key between the oldest it needs and the newest,
// so the ring holds keys [max(first, last-n+1), last].
type ring struct {
	bad, all []float64
	// xbad and xall, kept for Occurrences slices of counter increments
	// (see storageIncrements), hold each slice's increase before its first
	// sample; nil otherwise. float32 halves their memory (69 MB for 1,000
	// 30-day SLOs): a slice's share of a period sum needs no more digits.
	xbad, xall  []float32
	first, last int64 // last < first while empty
}

func newRing(n int, increments bool) *ring {
	r := &ring{bad: make([]float64, n), all: make([]float64, n), first: 0, last: -1}
	if increments {
		r.xbad, r.xall = make([]float32, n), make([]float32, n)
	}
	return r
}

// width is how many values the ring keeps per slice.
func (r *ring) width() uint8 {
	if r.xbad != nil {
		return 4
	}
	return 2
}

// putCross sets slice k's increase before its first sample; put k first.
func (r *ring) putCross(k int64, bad, all float64) {
	if r.xbad != nil && r.holds(k) {
		i := r.index(k)
		r.xbad[i], r.xall[i] = float32(bad), float32(all)
	}
}

// cross is slice k's increase before its first sample, zero when the ring
// does not hold the slice or it has no traffic.
func (r *ring) cross(k int64) (bad, all float64) {
	if r.xbad == nil || !r.holds(k) {
		return 0, 0
	}
	i := r.index(k)
	if t := r.all[i]; t != t || r.bad[i] != r.bad[i] || t <= 0 {
		return 0, 0 // skipped by aggregate too
	}
	return float64(r.xbad[i]), float64(r.xall[i])
}

func (r *ring) index(k int64) int {
	n := int64(len(r.bad))
	return int(((k % n) + n) % n)
}

func (r *ring) empty() bool { return r.last < r.first }

// newest is the newest key held; ok is false while the ring is empty.
func (r *ring) newest() (int64, bool) { return r.last, !r.empty() }

func (r *ring) holds(k int64) bool {
	return !r.empty() && k >= r.first && k <= r.last && r.last-k < int64(len(r.bad))
}

func (r *ring) put(k int64, bad, all float64) {
	if !r.empty() && r.last-k >= int64(len(r.bad)) {
		return // older than the ring holds; it would overwrite a newer slice
	}
	switch {
	case r.empty():
		r.first, r.last = k, k
	case k > r.last:
		r.last = k
	case k < r.first:
		r.first = k
	}
	i := r.index(k)
	r.bad[i], r.all[i] = bad, all
}

// periodAgg sums slices with keys in (from, to].
type periodAgg struct {
	bad, all float64 // Occurrences: sums of values (NaN slices skipped)
	ratioSum float64 // RatioTimeslices: sum of per-slice ratios
	slices   int     // slices with traffic
	badSlice int     // Timeslices: slices whose SLI missed the target
	// firstData is the oldest slice holding data (traffic or not), -1
	// when none does.
	firstData int64
}

func (r *ring) aggregate(from, to int64, sliceMaxRatio float64) periodAgg {
	a := periodAgg{firstData: -1}
	for k := from + 1; k <= to; k++ {
		if !r.holds(k) {
			continue
		}
		i := r.index(k)
		b, t := r.bad[i], r.all[i]
		if a.firstData < 0 && t == t {
			a.firstData = k
		}
		if t != t || b != b || t <= 0 {
			continue // no traffic in this slice
		}
		a.bad += b
		a.all += t
		ratio := b / t
		a.ratioSum += ratio
		a.slices++
		if ratio > sliceMaxRatio {
			a.badSlice++
		}
	}
	return a
}
