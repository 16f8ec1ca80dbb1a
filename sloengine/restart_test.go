package sloengine

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// TestRestartGivesTheSameAnswers: an engine runs on a TSDB while a sender
// two minutes behind keeps appending (with an error burst just before the
// stop); the TSDB is closed and reopened on the same directory and a new
// engine's first evaluation at the same instant gives the same windows,
// period and budget.
func TestRestartGivesTheSameAnswers(t *testing.T) {
	dir := t.TempDir()
	open := func() *tsdb.DB {
		opts := tsdb.DefaultOptions()
		opts.RetentionDuration = 0
		db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
		require.NoError(t, err)
		return db
	}
	db := open()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := &counters{start: start, sec: 7, errRatio: func(m int) float64 {
		if m%300 < 10 || m > 3*24*60-20 {
			return 0.3
		}
		return 0.001
	}}
	state := t.TempDir()
	newEngine := func(db *tsdb.DB, stateDir string) *Engine {
		e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db, Appendable: db,
			StateDir: stateDir})
		require.NoError(t, err)
		return e
	}
	ctx := context.Background()
	last := start.Add(3 * 24 * time.Hour)
	require.NoError(t, appendSamples(t, db, gen.upTo(last.Add(-2*time.Hour))))
	e := newEngine(db, state)
	var at time.Time
	for at = last.Add(-2 * time.Hour); at.Before(last); at = at.Add(30 * time.Second) {
		require.NoError(t, appendSamples(t, db, gen.upTo(at.Add(-2*time.Minute))))
		e.Evaluate(ctx, at)
	}
	at = at.Add(-30 * time.Second)
	before := e.Snapshot()[0]
	require.Empty(t, before.Error)
	require.NoError(t, e.SaveCheckpoint())
	require.NoError(t, db.Close())

	db = open()
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	// From the slice checkpoint, and recomputing every slice from storage.
	fromCheckpoint, fromStorage := newEngine(db, state), newEngine(db, "")
	require.Greater(t, fromCheckpoint.states[0].final, int64(0), "the checkpoint's final slices are restored")
	fromCheckpoint.Evaluate(ctx, at)
	fromStorage.Evaluate(ctx, at)
	for _, after := range []Status{fromCheckpoint.Snapshot()[0], fromStorage.Snapshot()[0]} {
		requireSameStatus(t, before, after)
	}

	// An SLO whose SLI changed does not take the old slices.
	changed, err := New(Options{SLOs: loadSLOs(t, strings.ReplaceAll(lateSpec, "errors_total", "failures_total")),
		Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db, StateDir: state})
	require.NoError(t, err)
	require.Equal(t, int64(math.MinInt64), changed.states[0].final)
}

func requireSameStatus(t *testing.T, before, after Status) {
	t.Helper()
	require.Empty(t, after.Error)
	for i, w := range before.Windows {
		requireClose(t, float64(w.ErrorRatio), float64(after.Windows[i].ErrorRatio), "%s error ratio", w.Window)
		requireClose(t, float64(w.TotalEvents), float64(after.Windows[i].TotalEvents), "%s events", w.Window)
	}
	for name, v := range map[string][2]Value{
		"period ratio":  {before.PeriodSLI.ErrorRatio, after.PeriodSLI.ErrorRatio},
		"period bad":    {before.PeriodSLI.BadEvents, after.PeriodSLI.BadEvents},
		"period events": {before.PeriodSLI.TotalEvents, after.PeriodSLI.TotalEvents},
		"consumed":      {before.BudgetConsumed, after.BudgetConsumed},
		"coverage":      {before.PeriodCoverage, after.PeriodCoverage},
	} {
		requireClose(t, float64(v[0]), float64(v[1]), "%s after a restart", name)
	}
	require.Greater(t, float64(before.BudgetConsumed), 0.0)
}
