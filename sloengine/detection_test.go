package sloengine

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestSLOIsEvaluatedWhenItsSamplesArrive: with an hourly ticker, samples
// committed for one SLO's series get that SLO (and only it) evaluated
// TriggerDelay later, and OnEvaluated receives its status.
func TestSLOIsEvaluatedWhenItsSamplesArrive(t *testing.T) {
	db := openTSDB(t, nil)
	spec := `version: burnrate/v1
service: arrive
slos:
  - name: a
    objective: 99
    sli:
      events:
        error_query: sum(rate(a_errors_total[{{.window}}]))
        total_query: sum(rate(a_requests_total[{{.window}}]))
  - name: b
    objective: 99
    sli:
      events:
        error_query: sum(rate(b_errors_total[{{.window}}]))
        total_query: sum(rate(b_requests_total[{{.window}}]))
`
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var hooked [][]string
		e, err := New(Options{SLOs: loadSLOs(t, spec), Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db,
			Config: Config{Interval: time.Hour, History: 10},
			OnEvaluated: func(ss []Status) {
				mu.Lock()
				defer mu.Unlock()
				var ids []string
				for _, s := range ss {
					ids = append(ids, s.ID)
				}
				hooked = append(hooked, ids)
			}})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = e.Run(ctx); close(done) }()
		synctest.Wait()
		start := time.Now()
		evaluatedAt := func() map[string]time.Time {
			out := map[string]time.Time{}
			for _, s := range e.Snapshot() {
				out[s.Name] = s.EvaluatedAt
			}
			return out
		}
		require.Equal(t, map[string]time.Time{"a": start.UTC(), "b": start.UTC()}, evaluatedAt())

		time.Sleep(time.Minute)
		app := e.Appendable(db).Appender(ctx)
		for i := range 3 {
			ts := time.Now().Add(time.Duration(i-2) * time.Second).UnixMilli()
			_, err := app.Append(0, labels.FromStrings("__name__", "a_requests_total"), ts, float64(100*i))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
		arrived := time.Now()
		time.Sleep(e.opts.TriggerDelay)
		synctest.Wait()
		got := evaluatedAt()
		require.Equal(t, arrived.Add(e.opts.TriggerDelay).UTC(), got["a"], "a is evaluated on arrival")
		require.Equal(t, start.UTC(), got["b"], "b's series got nothing")
		mu.Lock()
		require.Equal(t, [][]string{{"arrive-a", "arrive-b"}, {"arrive-a"}}, hooked)
		mu.Unlock()
		cancel()
		<-done
	})
}
