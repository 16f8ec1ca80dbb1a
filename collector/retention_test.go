package collector_test

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// writeDailyBlocks writes one TSDB block per day, the newest ending at end,
// each with one sample a minute of a gauge whose value is its day number.
func writeDailyBlocks(t *testing.T, dir string, end time.Time, days int) {
	t.Helper()
	ls := labels.FromStrings("__name__", "retention_probe", "job", "r")
	for d := days; d >= 1; d-- {
		w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, (24 * time.Hour).Milliseconds())
		require.NoError(t, err)
		app := w.Appender(context.Background())
		from := end.Add(-time.Duration(d) * 24 * time.Hour)
		for ts := from; ts.Before(from.Add(24 * time.Hour)); ts = ts.Add(time.Minute) {
			_, err := app.Append(0, ls, ts.UnixMilli(), float64(d))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
		_, err = w.Flush(context.Background())
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
}

// daysPresent returns which day numbers still answer a query.
func daysPresent(t *testing.T, base string, end time.Time, days int) []int {
	t.Helper()
	var present []int
	for d := days; d >= 1; d-- {
		at := end.Add(-time.Duration(d)*24*time.Hour + 12*time.Hour)
		_, r := apiCall(t, base, "/api/v1/query", url.Values{"query": {"retention_probe"}, "time": {strconv.FormatInt(at.Unix(), 10)}}, false)
		require.Equal(t, "success", r.Status)
		if len(r.Data) > 40 { // a non-empty vector
			present = append(present, d)
		}
	}
	return present
}

// TestRetentionDeletesOldBlocks opens a TSDB holding five daily blocks with
// a retention by time, then by size, and requires the oldest days to be gone
// and the newest to stay.
func TestRetentionDeletesOldBlocks(t *testing.T) {
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)

	t.Run("retention by time deletes blocks that ended longer ago than it", func(t *testing.T) {
		dir := t.TempDir()
		writeDailyBlocks(t, dir, end, 5)
		cfg := testConfig()
		cfg.TSDB.Retention = 60 * time.Hour
		br := startCollector(t, cfg, dir)
		// As in Prometheus, a block goes once its end is further than the
		// retention behind the newest data: day 3 ended 48h before, day 4 72h.
		require.Equal(t, []int{3, 2, 1}, daysPresent(t, br.URL, end, 5))
	})

	t.Run("retention by size drops the oldest blocks first", func(t *testing.T) {
		dir := t.TempDir()
		writeDailyBlocks(t, dir, end, 5)
		metas, err := tsdb.OpenDBReadOnly(dir, "", slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		blocks, err := metas.Blocks()
		require.NoError(t, err)
		require.Len(t, blocks, 5)
		var one int64
		for _, b := range blocks {
			one = max(one, b.Size())
		}
		require.NoError(t, metas.Close())

		cfg := testConfig()
		cfg.TSDB.Retention = 30 * 24 * time.Hour
		cfg.TSDB.RetentionBytes = 2*one + one/2
		br := startCollector(t, cfg, dir)
		require.Equal(t, []int{2, 1}, daysPresent(t, br.URL, end, 5))
	})
}
