package sloengine

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// series is one counter: its labels and its value at each sample time.
type series struct {
	labels map[string]string
	ts     []int64 // Unix ms
	vals   []float64
}

// openTSDB opens a real TSDB in a temporary directory and appends ss.
func openTSDB(t testing.TB, ss []series) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for i, s := range ss {
		l := labels.FromMap(s.labels)
		for j := range s.ts {
			_, err := app.Append(0, l, s.ts[j], s.vals[j])
			require.NoError(t, err)
		}
		if i%50 == 49 {
			require.NoError(t, app.Commit())
			app = db.Appender(context.Background())
		}
	}
	require.NoError(t, app.Commit())
	return db
}

// openMetrics renders ss (all of family name) for promtool's backfill.
func openMetrics(family string, ss []series) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE %s counter\n", family)
	for _, s := range ss {
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			if k != "__name__" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var lb []string
		for _, k := range keys {
			lb = append(lb, fmt.Sprintf("%s=%q", k, s.labels[k]))
		}
		for j := range s.ts {
			fmt.Fprintf(&b, "%s{%s} %s %s\n", s.labels["__name__"], strings.Join(lb, ","),
				fmtFloat(s.vals[j]), fmtFloat(float64(s.ts[j])/1000))
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

// startPrometheus backfills openmetrics text into a fresh data directory and
// starts the Debian prometheus on a free loopback port with ruleFiles.
// It returns the base URL.
func startPrometheus(t *testing.T, om string, ruleFiles map[string][]byte) string {
	t.Helper()
	var names []string
	for name := range ruleFiles {
		names = append(names, fmt.Sprintf("%q", name))
	}
	return testutil.StartPrometheus(t, testutil.PromConfig{
		Config:      fmt.Sprintf("global:\n  evaluation_interval: 1m\nrule_files: [%s]\n", strings.Join(names, ", ")),
		Files:       ruleFiles,
		OpenMetrics: om,
		Args:        []string{"--storage.tsdb.retention.time=10y"},
	}).URL
}

// requireClose requires relative error <= 1e-6 (both NaN counts as equal).
// Values that cancel to nearly zero (a budget spent exactly, 1 - 1) are
// compared with an absolute tolerance of 1e-9 instead.
func requireClose(t testing.TB, want, got float64, msg string, args ...any) {
	t.Helper()
	if math.IsNaN(want) || math.IsNaN(got) {
		require.True(t, math.IsNaN(want) && math.IsNaN(got), "%s: want %v, got %v", fmt.Sprintf(msg, args...), want, got)
		return
	}
	if want == got || math.Abs(want-got) <= 1e-9 {
		return
	}
	rel := math.Abs(want-got) / math.Max(math.Abs(want), math.Abs(got))
	require.LessOrEqual(t, rel, 1e-6, "%s: want %v, got %v", fmt.Sprintf(msg, args...), want, got)
}
