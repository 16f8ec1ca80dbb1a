// Package sloenginebench measures one SLO engine evaluation cycle for 1,000
// SLOs over 30 days of 1-minute data, side by side with evaluating the
// equivalent exported Prometheus rules with the PromQL engine.
//
// The data set (2 counters per SLO, 86.4M samples, plus the recorded 5m
// series the exported period rule reads) is built once into a TSDB under
// $BURNRATE_BENCH_DIR (default: the system temp dir) and reused.
//
//	go test ./bench/sloengine -run '^$' -bench . -benchtime 20x -count 3 -timeout 60m
package sloenginebench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/sloengine"
)

const (
	numSLOs = 1000
	days    = 30
)

// epoch anchors the data so a cached data set stays valid.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	once   sync.Once
	db     *tsdb.DB
	slos   []*sloengine.SLO
	setErr error
)

func dataDir() string {
	base := os.Getenv("BURNRATE_BENCH_DIR")
	if base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, fmt.Sprintf("burnrate-bench-sloengine-%d-%dd", numSLOs, days))
}

// traffic is the per-minute increment of SLO i's counters at minute m: a
// daily cycle of traffic and, for one SLO in ten, a 20-minute outage a day.
func traffic(i, m int) (all, bad float64) {
	all = float64(100 + i%50 + (m/60)%24*3)
	bad = all * 0.001
	if i%10 == 0 && m%1440 >= 600 && m%1440 < 620 {
		bad = all * 0.5
	}
	return all, bad
}

func setup(b *testing.B) {
	once.Do(func() {
		dir := dataDir()
		_, statErr := os.Stat(filepath.Join(dir, "complete"))
		if _, err := os.Stat(filepath.Join(dir, "compacted")); statErr == nil && err != nil {
			// A Prometheus holding 30 days has merged its 2h blocks into
			// larger ones; so does the data set, once.
			if setErr = compactBlocks(dir); setErr != nil {
				return
			}
		}
		opts := tsdb.DefaultOptions()
		opts.RetentionDuration = 0
		db, setErr = tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
		if setErr != nil {
			return
		}
		spec := "version: burnrate/v1\nservice: bench\nslos:\n"
		for i := range numSLOs {
			spec += fmt.Sprintf("  - name: s%04d\n    objective: 99.9\n    sli:\n      events:\n"+
				"        error_query: sum(rate(errors_total{slo=\"%d\"}[{{.window}}]))\n"+
				"        total_query: sum(rate(requests_total{slo=\"%d\"}[{{.window}}]))\n", i, i, i)
		}
		l := sloengine.NewLoader()
		l.Add("bench.yml", []byte(spec))
		slos, setErr = l.Result()
		if setErr != nil || statErr == nil {
			return
		}
		start := time.Now()
		b.Logf("building %d SLOs x %d days of 1-minute data in %s (once)", numSLOs, days, dir)
		setErr = build()
		if setErr == nil {
			setErr = os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
		}
		b.Logf("built in %s", time.Since(start).Round(time.Second))
		if setErr == nil {
			if setErr = db.Close(); setErr == nil {
				if setErr = compactBlocks(dir); setErr == nil {
					db, setErr = tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
				}
			}
			b.Logf("built and compacted in %s", time.Since(start).Round(time.Second))
		}
	})
	if setErr != nil {
		b.Fatal(setErr)
	}
}

func build() error {
	ctx := context.Background()
	db.DisableCompactions()
	all := make([]labels.Labels, numSLOs)
	bad := make([]labels.Labels, numSLOs)
	recBad := make([]labels.Labels, numSLOs)
	recAll := make([]labels.Labels, numSLOs)
	va, vb := make([]float64, numSLOs), make([]float64, numSLOs)
	for i := range numSLOs {
		s := slos[i]
		id := []string{"sloth_id", s.ID, "sloth_service", s.Service, "sloth_slo", s.Name}
		all[i] = labels.FromStrings("__name__", "requests_total", "slo", strconv.Itoa(i))
		bad[i] = labels.FromStrings("__name__", "errors_total", "slo", strconv.Itoa(i))
		recBad[i] = labels.FromStrings(append([]string{"__name__", "slo:sli_bad_events:rate5m"}, id...)...)
		recAll[i] = labels.FromStrings(append([]string{"__name__", "slo:sli_total_events:rate5m"}, id...)...)
	}
	minutes := days * 24 * 60
	for m := range minutes {
		app := db.Appender(ctx)
		// Samples at second 7 of each minute, as a scrape would land.
		ts := epoch.Add(time.Duration(m)*time.Minute + 7*time.Second).UnixMilli()
		for i := range numSLOs {
			da, dbd := traffic(i, m)
			va[i] += da
			vb[i] += dbd
			if _, err := app.Append(0, all[i], ts, va[i]); err != nil {
				return err
			}
			if _, err := app.Append(0, bad[i], ts, vb[i]); err != nil {
				return err
			}
			if m%5 == 4 {
				// What the exported recording rules would have stored
				// every 5m: the per-second rates over the last 5 minutes.
				ra, rb := 0.0, 0.0
				for k := m - 4; k <= m; k++ {
					x, y := traffic(i, k)
					ra, rb = ra+x, rb+y
				}
				rts := epoch.Add(time.Duration(m+1) * time.Minute).UnixMilli()
				if _, err := app.Append(0, recAll[i], rts, ra/300); err != nil {
					return err
				}
				if _, err := app.Append(0, recBad[i], rts, rb/300); err != nil {
					return err
				}
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
		if m%(6*60) == 0 && m > 0 {
			db.EnableCompactions()
			if err := db.Compact(ctx); err != nil {
				return err
			}
			db.DisableCompactions()
		}
	}
	db.EnableCompactions()
	return db.Compact(ctx)
}

// compactBlocks merges the 2h blocks into 54h blocks, the size
// Prometheus's leveled compaction reaches for this retention.
func compactBlocks(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type blk struct {
		dir      string
		min, max int64
	}
	var blocks []blk
	for _, e := range entries {
		m, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var meta tsdb.BlockMeta
		if err := json.Unmarshal(m, &meta); err != nil {
			return err
		}
		blocks = append(blocks, blk{filepath.Join(dir, e.Name()), meta.MinTime, meta.MaxTime})
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].min < blocks[j].min })
	span := (54 * time.Hour).Milliseconds()
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, slog.New(slog.DiscardHandler), []int64{span}, nil, nil)
	if err != nil {
		return err
	}
	for i := 0; i < len(blocks); {
		j := i
		var dirs []string
		for j < len(blocks) && blocks[j].min/span == blocks[i].min/span {
			dirs = append(dirs, blocks[j].dir)
			j++
		}
		if len(dirs) > 1 {
			if _, err := c.Compact(dir, dirs, nil); err != nil {
				return err
			}
			for _, d := range dirs {
				if err := os.RemoveAll(d); err != nil {
					return err
				}
			}
		}
		i = j
	}
	return os.WriteFile(filepath.Join(dir, "compacted"), nil, 0o644)
}

// end is just after the last sample; cycles advance from here.
func end() time.Time { return epoch.Add(days*24*time.Hour - 30*time.Second) }

// BenchmarkEngineCycle is one full evaluation cycle of 1,000 SLOs: seven
// windows each, the 30-day period from 5-minute slices (only the slices
// that ended since the last cycle are queried), budgets, forecasts, tiers
// and the write-back of slo:* series. The first cycle (the initial 30-day
// slice fill) runs before the timer starts.
func BenchmarkEngineCycle(b *testing.B) {
	setup(b)
	ng := sloengine.NewPromQLEngine()
	// With BURNRATE_BENCH_CHECKPOINT=1 the engine starts from the slice
	// checkpoint BenchmarkFirstEvaluation keeps with the data set, which
	// skips the minute-long fill; the timed cycles are the same.
	state := ""
	if os.Getenv("BURNRATE_BENCH_CHECKPOINT") == "1" {
		state = filepath.Join(dataDir(), "sloengine-state")
	}
	e, err := sloengine.New(sloengine.Options{SLOs: slos, Querier: sloengine.LocalQuerier{Engine: ng, Queryable: db}, Appendable: db, Queryable: db,
		Config: sloengine.Config{Interval: 30 * time.Second, History: 10}, StateDir: state})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	at := end().Add(-10 * time.Hour)
	fill := time.Now()
	e.Evaluate(ctx, at)
	b.Logf("initial cycle with the 30-day slice fill: %s", time.Since(fill).Round(time.Millisecond))
	for _, s := range e.Snapshot() {
		if s.Error != "" {
			b.Fatal(s.ID, s.Error)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		e.Evaluate(ctx, at.Add(time.Duration(i+1)*30*time.Second))
	}
	b.StopTimer()
	// The engine's resident state (sample buffers, slices, history) with
	// the TSDB's own memory, after a collection.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(numSLOs), "SLOs")
	runtime.KeepAlive(e)
}

// BenchmarkExportedRules evaluates, for the same 1,000 SLOs at the same
// instants, the recording rules `burnrate slo rules` exports (seven window
// ratios, the 5m event rates and the 30-day period over the recorded 5m
// series) with the same PromQL engine, two workers as the engine uses.
func BenchmarkExportedRules(b *testing.B) {
	setup(b)
	files, err := sloengine.RuleFiles(slos, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(files["bench.rules.yml"], &rf); err != nil {
		b.Fatal(err)
	}
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if len(r.Record) > 16 && r.Record[:16] == "slo:sli_error:ra" || r.Record == "slo:sli_bad_events:rate5m" || r.Record == "slo:sli_total_events:rate5m" {
				exprs = append(exprs, r.Expr)
			}
		}
	}
	b.Logf("%d rule expressions per cycle", len(exprs))
	ng := sloengine.NewPromQLEngine()
	ctx := context.Background()
	at := end().Add(-10 * time.Hour)
	runtime.GC()
	b.ResetTimer()
	for i := range b.N {
		ts := at.Add(time.Duration(i+1) * 30 * time.Second)
		work := make(chan string)
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for q := range work {
					qry, err := ng.NewInstantQuery(ctx, db, nil, q, ts)
					if err != nil {
						b.Error(err)
						continue
					}
					if res := qry.Exec(ctx); res.Err != nil {
						b.Error(res.Err)
					} else if v, ok := res.Value.(promql.Vector); !ok || len(v) != 1 {
						b.Errorf("%s: %v", q, res.Value)
					}
					qry.Close()
				}
			})
		}
		for _, q := range exprs {
			work <- q
		}
		close(work)
		wg.Wait()
	}
}

// BenchmarkFirstEvaluation is a restart: a new engine for the 1,000 SLOs on
// the already open 30-day TSDB with the slice checkpoint its predecessor
// saved, timed from New until every SLO has its first evaluation (the 3
// days of samples the windows need read into memory, the slices after the
// checkpoint computed). The checkpoint is written once, untimed, by an
// engine that filled the 30 days from storage (BenchmarkEngineCycle logs
// that fill's time).
func BenchmarkFirstEvaluation(b *testing.B) {
	setup(b)
	ng := sloengine.NewPromQLEngine()
	ctx := context.Background()
	at := end().Add(-10 * time.Hour)
	// The checkpoint is kept with the data set (same SLOs, same instant).
	state := filepath.Join(dataDir(), "sloengine-state")
	opts := sloengine.Options{SLOs: slos, Querier: sloengine.LocalQuerier{Engine: ng, Queryable: db}, Queryable: db,
		Config: sloengine.Config{Interval: 5 * time.Second, History: 10}, StateDir: state}
	if _, err := os.Stat(filepath.Join(state, "slices.ckpt")); err != nil {
		prev, err := sloengine.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		fill := time.Now()
		prev.Evaluate(ctx, at)
		b.Logf("first evaluation without a checkpoint (30-day slice fill from storage): %s", time.Since(fill).Round(time.Millisecond))
		if err := prev.SaveCheckpoint(); err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(state, "slices.ckpt")); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "checkpoint-MiB")
	}
	runtime.GC()
	b.ResetTimer()
	for i := range b.N {
		e, err := sloengine.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		e.Evaluate(ctx, at.Add(time.Duration(i+1)*5*time.Second))
		snap := e.Snapshot()
		if len(snap) != numSLOs {
			b.Fatalf("%d of %d SLOs evaluated", len(snap), numSLOs)
		}
		for _, s := range snap {
			if s.Error != "" {
				b.Fatal(s.ID, s.Error)
			}
		}
	}
}
