//go:build e2e

package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

var soakDuration = flag.Duration("soak.duration", 30*time.Minute, "how long TestSoak runs (make soak SOAK_DURATION=...)")

// soakSample is one reading of what could grow without bound.
type soakSample struct {
	at                       time.Duration
	heap, goroutines, outbox float64
	tsdb, traces, sqlite     float64 // bytes
}

// dirBytes is the size of the files under dir whose name matches keep.
func dirBytes(dir string, keep func(string) bool) float64 {
	var n int64
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && keep(fi.Name()) {
			n += fi.Size()
		}
		return nil
	})
	return float64(n)
}

func metricSum(body, name string) float64 {
	sum := 0.0
	for _, m := range regexp.MustCompile(`(?m)^`+name+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func (s *e2eStack) soakSample(data string, start time.Time) soakSample {
	s.t.Helper()
	_, body := testutil.HTTPGet(s.t, s.base+"/metrics")
	return soakSample{
		at:         time.Since(start).Round(time.Second),
		heap:       metricSum(body, "go_memstats_heap_inuse_bytes"),
		goroutines: metricSum(body, "go_goroutines"),
		outbox:     metricSum(body, "burnrate_alerting_outbox_notifications"),
		tsdb:       dirBytes(filepath.Join(data, "tsdb"), func(string) bool { return true }),
		traces:     dirBytes(filepath.Join(data, "traces"), func(string) bool { return true }),
		sqlite: dirBytes(data, func(n string) bool {
			return strings.HasSuffix(n, ".db") || strings.HasSuffix(n, ".db-wal") || strings.HasSuffix(n, ".db-shm")
		}),
	}
}

// TestSoak runs `burnrate up` under mixed load and rotating faults for
// -soak.duration (make soak, not in CI) and reads memory, goroutines,
// TSDB, trace store and SQLite sizes and the outbox depth over time. It
// passes when nothing grows without bound: memory and goroutines level
// off (the last quarter's mean at most 1.5x the second quarter's), the
// outbox drains, and storage grows no faster at the end than in the first
// half (samples keep arriving at the same rate, so it grows linearly).
func TestSoak(t *testing.T) {
	d := *soakDuration
	edge := freeAddr(t)
	s := newE2EStackWith(t, e2eOptions{edge: edge})
	s.start()
	s.setUpOnCall()
	data := s.args[len(s.args)-1]
	start := time.Now()
	end := start.Add(d)
	every := max(d/30, 10*time.Second)

	// Mixed load on top of the background load, one bounded run at a time.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		shapes := []string{"constant", "sine", "spike", "step", "ramp"}
		for i := 0; time.Until(end) > 5*time.Second; i++ {
			run := min(time.Until(end)-2*time.Second, time.Minute)
			_, _, _ = runBinary(t, nil, "load", "--target", "http://"+edge, "--rate", "60", "--shape", shapes[i%len(shapes)],
				"--duration", run.String(), "--quiet")
		}
	}()

	faults := [][]string{
		{"store.shard_down", "1"}, {"api.error_fraction", "0.05"}, {"cache.mode", "leaky"},
		{"store.shard_slow", "2@100ms"}, {"api.latency", "50ms"}, {"dependency.unreachable", "cache"},
	}
	var samples []soakSample
	nextFault := start
	for i := 0; time.Now().Before(end); i++ {
		if !time.Now().Before(nextFault) {
			f := faults[(len(samples)/3)%len(faults)]
			_, _ = s.cli("fault", "clear")
			if (len(samples)/3)%2 == 0 { // every other period is healthy
				code, out := s.cli("fault", "set", f[0], f[1])
				require.Equal(t, 0, code, out)
			}
			nextFault = time.Now().Add(max(d/12, 20*time.Second))
		}
		samples = append(samples, s.soakSample(data, start))
		time.Sleep(min(every, max(time.Until(end), 0)))
	}
	_, _ = s.cli("fault", "clear")
	wg.Wait()
	s.within("the outbox drained", time.Minute, func() bool { return s.soakSample(data, start).outbox == 0 })
	samples = append(samples, s.soakSample(data, start))

	mb := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	var b strings.Builder
	fmt.Fprintf(&b, "| t | heap MB | goroutines | TSDB MB | traces MB | SQLite MB | outbox |\n|---|---|---|---|---|---|---|\n")
	for _, x := range samples {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %.0f |\n", x.at, mb(x.heap), x.goroutines, mb(x.tsdb), mb(x.traces), mb(x.sqlite), x.outbox)
	}
	t.Logf("soak of %s:\n%s", d, b.String())

	require.GreaterOrEqual(t, len(samples), 8, "enough readings to judge growth")
	q := len(samples) / 4
	mean := func(xs []soakSample, f func(soakSample) float64) float64 {
		sum := 0.0
		for _, x := range xs {
			sum += f(x)
		}
		return sum / float64(len(xs))
	}
	second, last := samples[q:2*q], samples[len(samples)-q:]
	heap := func(x soakSample) float64 { return x.heap }
	gor := func(x soakSample) float64 { return x.goroutines }
	require.LessOrEqual(t, mean(last, heap), 1.5*mean(second, heap), "heap levels off")
	require.LessOrEqual(t, mean(last, gor), 1.5*mean(second, gor)+20, "goroutines level off")
	half := len(samples) / 2
	for name, f := range map[string]func(soakSample) float64{
		"TSDB":   func(x soakSample) float64 { return x.tsdb },
		"traces": func(x soakSample) float64 { return x.traces },
		"SQLite": func(x soakSample) float64 { return x.sqlite },
	} {
		rate := func(a, b soakSample) float64 { return (f(b) - f(a)) / math.Max((b.at-a.at).Seconds(), 1) }
		first, late := rate(samples[0], samples[half]), rate(samples[half], samples[len(samples)-1])
		require.LessOrEqual(t, late, 2*first+float64(64<<10), "%s grows no faster at the end (%.0f B/s, first half %.0f B/s)", name, late, first)
	}
	s.stop()
}
