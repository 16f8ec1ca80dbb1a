package incidents

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// BudgetSource tells how much of an SLO's error budget had been consumed
// at an instant (a ratio: 0.25 is a quarter of the period's budget).
type BudgetSource interface {
	ConsumedAt(ctx context.Context, slo string, at time.Time) (float64, bool)
}

// budgetConsumedSeries and budgetCoverageSeries are written by the SLO
// engine for every SLO at every evaluation (the first is Sloth's name).
const (
	budgetConsumedSeries = "slo:period_error_budget_consumed:ratio"
	budgetCoverageSeries = "slo:period_coverage:ratio"
)

// budgetLookback is how far before an instant the last evaluation may lie.
const budgetLookback = 5 * time.Minute

// TSDBBudget reads the SLO engine's history from the series it writes back
// (slo:period_error_budget_consumed:ratio{sloth_id="..."}).
type TSDBBudget struct {
	Queryable storage.Queryable
}

// ConsumedAt returns the newest value at or before at, within five
// minutes. The engine counts the budget in complete 5-minute slices and
// writes NaN while the period has none with data (its coverage is 0):
// nothing has been counted as spent yet, so that reads as 0, and an
// incident in a young period (the first minutes after start) consumes
// from 0. Other NaNs (too few events for min_events) stay unknown and are
// skipped.
func (b TSDBBudget) ConsumedAt(ctx context.Context, slo string, at time.Time) (float64, bool) {
	if b.Queryable == nil || slo == "" {
		return 0, false
	}
	mint, maxt := at.Add(-budgetLookback).UnixMilli(), at.UnixMilli()
	q, err := b.Queryable.Querier(mint, maxt)
	if err != nil {
		return 0, false
	}
	defer q.Close()
	set := q.Select(ctx, false, nil,
		labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, budgetConsumedSeries+"|"+budgetCoverageSeries),
		labels.MustNewMatcher(labels.MatchEqual, "sloth_id", slo))
	consumed, coverage := map[int64]float64{}, map[int64]float64{}
	var it chunkenc.Iterator
	for set.Next() {
		dst := consumed
		if set.At().Labels().Get(labels.MetricName) == budgetCoverageSeries {
			dst = coverage
		}
		it = set.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			if t, val := it.At(); t <= maxt {
				dst[t] = val
			}
		}
	}
	var v float64
	var vt int64 = math.MinInt64
	for t, val := range consumed {
		if t <= vt {
			continue
		}
		if c, ok := coverage[t]; math.IsNaN(val) && ok && c == 0 {
			val = 0
		}
		if !math.IsNaN(val) {
			vt, v = t, val
		}
	}
	return v, vt != math.MinInt64
}

// BudgetSpent is the error budget an incident consumed: the SLO's consumed
// ratio at resolution (or now) minus the ratio when the impact started.
// Over a rolling period old errors leave the window as new ones enter, so
// over long incidents this is a lower bound.
type BudgetSpent struct {
	From     float64   `json:"from"`
	To       float64   `json:"to"`
	Consumed float64   `json:"consumed"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
}

// budgetSlice is the SLO engine's slice (sloengine.SliceWidth): it counts
// the budget in 5-minute slices aligned on the Unix epoch, each once it
// has ended.
const budgetSlice = 5 * time.Minute

// budgetCountedBy is the instant at which to read the consumed ratio for a
// resolution at until, as of now: the last instant before the slice after
// until's has ended, so that the evaluation read counted the slice holding
// until (the errors up to the resolution, not only those up to the
// previous slice boundary) and no slice after it; now while that is still
// to come.
func budgetCountedBy(until, now time.Time) time.Time {
	w := budgetSlice.Milliseconds()
	end := (until.UnixMilli() + w - 1) / w * w // the end of the slice (end-5m, end] holding until
	at := time.UnixMilli(end + w - 1).UTC()
	if now.Before(at) {
		return now
	}
	return at
}

func (s *Service) budgetSpent(ctx context.Context, inc *Incident) *BudgetSpent {
	if s.budget == nil || inc.SLO == "" {
		return nil
	}
	since := inc.TriggeredAt
	if inc.ImpactStartedAt != nil {
		since = *inc.ImpactStartedAt
	}
	now := s.now().UTC()
	until := now
	if inc.ResolvedAt != nil {
		until = *inc.ResolvedAt
	}
	// The engine's value at the resolution has not counted the resolution's
	// slice yet: up to five minutes of the incident, a short outage whole.
	// Read it once that slice is counted; the slice holding the impact start
	// is in the difference already (from counted only the slices before it).
	from, ok1 := s.budget.ConsumedAt(ctx, inc.SLO, since)
	to, ok2 := s.budget.ConsumedAt(ctx, inc.SLO, budgetCountedBy(until, now))
	if !ok1 || !ok2 {
		return nil
	}
	return &BudgetSpent{From: from, To: to, Consumed: to - from, Since: since, Until: until}
}
