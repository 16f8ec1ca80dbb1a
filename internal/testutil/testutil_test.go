package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder captures failures instead of failing the enclosing test, so the
// golden helper's own failure path can be checked.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) FailNow()              { r.failed = true; panic(r) }
func (r *recorder) Helper()               {}

func runGolden(t *testing.T, name string, got []byte) (failed bool) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failed = r.failed
	}()
	Golden(r, name, got)
	return r.failed
}

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "out.golden.txt"), []byte("a\n"), 0o644))

	t.Run("equal output passes", func(t *testing.T) {
		require.False(t, runGolden(t, "out.golden.txt", []byte("a\n")))
	})
	t.Run("different output fails", func(t *testing.T) {
		require.True(t, runGolden(t, "out.golden.txt", []byte("b\n")))
	})
	t.Run("a missing golden file fails", func(t *testing.T) {
		require.True(t, runGolden(t, "missing.golden.txt", []byte("a\n")))
	})
	t.Run("with -update the file is rewritten", func(t *testing.T) {
		*update = true
		defer func() { *update = false }()
		require.False(t, runGolden(t, "new.golden.txt", []byte("c\n")))
		b, err := os.ReadFile(filepath.Join("testdata", "new.golden.txt"))
		require.NoError(t, err)
		require.Equal(t, "c\n", string(b))
	})
}

func TestStartPrometheusBackfillsLoadsRulesAndAnswersQueries(t *testing.T) {
	p := StartPrometheus(t, PromConfig{
		Config:      "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n",
		Files:       map[string][]byte{"rules.yml": []byte("groups:\n- name: g\n  rules:\n  - record: backfilled:sum\n    expr: sum(backfilled)\n")},
		OpenMetrics: "# TYPE backfilled gauge\nbackfilled{a=\"1\"} 7 1700000000\n# EOF\n",
		Args:        []string{"--storage.tsdb.retention.time=10y"},
	})
	code, body := HTTPGet(t, p.URL+"/api/v1/query?query=backfilled&time=1700000000")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"value":[1700000000,"7"]`)
	code, body = HTTPGet(t, p.URL+"/api/v1/rules")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "backfilled:sum")
}
