package collector

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// TestLimiterFollowsTheHead requires the limiter to keep a series for as
// long as the TSDB head keeps it, however long it has been idle, and to
// forget it once the head garbage-collects it.
func TestLimiterFollowsTheHead(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	l := newLimiter(LimitsConfig{MaxActiveSeries: 10})
	start := time.UnixMilli(10 * time.Hour.Milliseconds())

	app := db.Appender(context.Background())
	for _, s := range []struct {
		name string
		t    time.Time
	}{{"idle", start}, {"busy", start.Add(3 * time.Hour)}} {
		ls := labels.FromStrings("__name__", s.name)
		_, _, err := l.admit(ls, start.Unix())
		require.NoError(t, err)
		_, err = app.Append(0, ls, s.t.UnixMilli(), 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())

	require.NoError(t, l.sweep(context.Background(), db, start.Add(24*time.Hour)))
	require.EqualValues(t, 2, l.total.Load(), "a day idle, but still in the head")

	require.NoError(t, db.Head().Truncate(start.Add(time.Hour).UnixMilli()))
	require.NoError(t, l.sweep(context.Background(), db, start.Add(24*time.Hour)))
	require.EqualValues(t, 1, l.total.Load(), "the head dropped the idle series")
	require.Equal(t, map[string]int{"busy": 1}, l.perMetric)
}

// BenchmarkLimiterSweep measures the once-a-minute sweep of the series
// limits against a head of 100k series.
func BenchmarkLimiterSweep(b *testing.B) {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	l := newLimiter(LimitsConfig{MaxActiveSeries: 1_000_000})
	now := time.Now()
	app := db.Appender(context.Background())
	for i := range 100_000 {
		ls := labels.FromStrings("__name__", "bench_series", "i", strconv.Itoa(i), "job", "bench")
		_, _, err := l.admit(ls, now.Unix())
		require.NoError(b, err)
		_, err = app.Append(0, ls, now.UnixMilli(), 1)
		require.NoError(b, err)
	}
	require.NoError(b, app.Commit())
	b.ResetTimer()
	for b.Loop() {
		require.NoError(b, l.sweep(context.Background(), db, now))
	}
	require.EqualValues(b, 100_000, l.total.Load())
}
