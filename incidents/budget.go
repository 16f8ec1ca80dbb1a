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

// budgetConsumedSeries is written by the SLO engine for every SLO at every
// evaluation (Sloth's name).
const budgetConsumedSeries = "slo:period_error_budget_consumed:ratio"

// budgetLookback is how far before an instant the last evaluation may lie.
const budgetLookback = 5 * time.Minute

// TSDBBudget reads the SLO engine's history from the series it writes back
// (slo:period_error_budget_consumed:ratio{sloth_id="..."}).
type TSDBBudget struct {
	Queryable storage.Queryable
}

// ConsumedAt returns the last value at or before at, within five minutes.
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
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, budgetConsumedSeries),
		labels.MustNewMatcher(labels.MatchEqual, "sloth_id", slo))
	var v float64
	var vt int64 = math.MinInt64
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, val := it.At()
			if t <= maxt && t > vt && !math.IsNaN(val) {
				vt, v = t, val
			}
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

func (s *Service) budgetSpent(ctx context.Context, inc *Incident) *BudgetSpent {
	if s.budget == nil || inc.SLO == "" {
		return nil
	}
	since := inc.TriggeredAt
	if inc.ImpactStartedAt != nil {
		since = *inc.ImpactStartedAt
	}
	until := s.now().UTC()
	if inc.ResolvedAt != nil {
		until = *inc.ResolvedAt
	}
	from, ok1 := s.budget.ConsumedAt(ctx, inc.SLO, since)
	to, ok2 := s.budget.ConsumedAt(ctx, inc.SLO, until)
	if !ok1 || !ok2 {
		return nil
	}
	return &BudgetSpent{From: from, To: to, Consumed: to - from, Since: since, Until: until}
}
