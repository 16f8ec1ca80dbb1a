package sloengine

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/require"
)

// faultyQuerier hangs on queries of slow_total until the caller's deadline
// and panics on queries of panic_total; everything else goes to next.
type faultyQuerier struct{ next Querier }

func (f faultyQuerier) fault(ctx context.Context, q string) error {
	switch {
	case strings.Contains(q, "slow_total"):
		<-ctx.Done()
		return ctx.Err()
	case strings.Contains(q, "panic_total"):
		var m map[string]int
		m["boom"]++ // a nil map write, as a bug would
	}
	return nil
}

func (f faultyQuerier) Query(ctx context.Context, q string, ts time.Time) ([]Sample, error) {
	if err := f.fault(ctx, q); err != nil {
		return nil, err
	}
	return f.next.Query(ctx, q, ts)
}

func (f faultyQuerier) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (map[int64]float64, error) {
	if err := f.fault(ctx, q); err != nil {
		return nil, err
	}
	return f.next.QueryRange(ctx, q, start, end, step)
}

// TestSlowAndPanickingSLOsDoNotHurtTheOthers: one SLO's backend query
// hangs and another's panics; each reports its own error, and the healthy
// SLOs beside them are evaluated as usual, cycle after cycle.
func TestSlowAndPanickingSLOsDoNotHurtTheOthers(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  requests_total 0+600x120
  errors_total   0+6x120
  slow_total     0+1x120
  panic_total    0+1x120
`)
	t.Cleanup(func() { st.Close() })
	spec := `version: burnrate/v1
service: iso
slos:
  - name: healthy-a
    objective: 99.9
    sli: &ok
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: slow
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(slow_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: panics
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(panic_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: healthy-b
    objective: 99.9
    sli: *ok
`
	// In a synctest bubble the deadline passes only when every goroutine is
	// blocked, i.e. for the hanging query alone, however loaded the machine.
	synctest.Test(t, func(t *testing.T) {
		e, err := New(Options{SLOs: loadSLOs(t, spec), Querier: faultyQuerier{LocalQuerier{Engine: NewPromQLEngine(), Queryable: st}},
			Config: Config{Interval: time.Minute, History: 3, QueryTimeout: 10 * time.Second}})
		require.NoError(t, err)
		for i := range 2 {
			before := time.Now()
			e.Evaluate(context.Background(), time.Unix(0, 0).Add(time.Hour+time.Duration(i)*time.Minute))
			require.Equal(t, 10*time.Second, time.Since(before), "the cycle waits for the slow SLO's deadline, no longer")
			got := map[string]Status{}
			for _, s := range e.Snapshot() {
				got[s.Name] = s
			}
			require.Contains(t, got["slow"].Error, "context deadline exceeded")
			require.Contains(t, got["panics"].Error, "evaluation panicked: assignment to entry in nil map")
			for _, name := range []string{"healthy-a", "healthy-b"} {
				require.Empty(t, got[name].Error, name)
				w, _ := got[name].Window("30m")
				require.InDelta(t, 0.01, float64(w.ErrorRatio), 1e-9, name)
			}
		}
	})
}

// TestBufferedSamplesStayUnderTheirBound: with room for 150 samples, the
// second selector (121 more) is dropped from memory; its SLO is evaluated
// with PromQL and still gives PromQL's numbers.
func TestBufferedSamplesStayUnderTheirBound(t *testing.T) {
	st := promqltest.LoadedStorage(t, `
load 1m
  requests_total 0+600x120
  errors_total   0+6x120
`)
	t.Cleanup(func() { st.Close() })
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: st}
	e, err := New(Options{SLOs: loadSLOs(t, lateSpec), Querier: q, Queryable: st, MaxBufferedSamples: 150})
	require.NoError(t, err)
	e.Evaluate(context.Background(), time.Unix(0, 0).Add(119*time.Minute+30*time.Second))
	require.LessOrEqual(t, e.bufs.total.Load(), int64(150))
	require.False(t, e.inMemory(e.states[0]), "the SLO left the in-memory path")
	requireMatchesPromQL(t, q, e.Snapshot()[0], "bounded buffers")
}
