package tracestore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	traceHealth  = "3333333333333333333333333333aaaa"
	traceCache   = "4444444444444444444444444444bbbb"
	traceNoRoot  = "5555555555555555555555555555cccc"
	traceUnknown = "6666666666666666666666666666dddd"
)

// searchFixture holds five traces with distinct services, statuses,
// durations and start times (see each comment).
func searchFixture(t *testing.T) *testStore {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	t.Cleanup(func() { _ = s.Close() })
	// traceA: edge -> api -> store, 250ms at t0, the store span failed.
	// traceB: api only, 5ms at t0+1s, status unset.
	appendAll(t, s.Store, checkoutBatches()...)
	appendAll(t, s.Store,
		// 300ms at t0+2s, explicitly Ok.
		batch(span{service: "demo-api", name: "GET /health", trace: traceHealth, id: "3333333333333331", start: 2 * time.Second, dur: 300 * time.Millisecond, status: ptrace.StatusCodeOk}),
		// 1ms at t0+1h, unset.
		batch(span{service: "demo-cache", name: "GET", trace: traceCache, id: "4444444444444441", start: time.Hour, dur: time.Millisecond}),
		// A child whose root has not arrived: 50ms at t0+3s, failed.
		batch(span{service: "demo-store", name: "UPDATE", trace: traceNoRoot, id: "5555555555555552", parent: "5555555555555551", start: 3 * time.Second, dur: 50 * time.Millisecond, status: ptrace.StatusCodeError}),
	)
	return s
}

func ids(sums []TraceSummary) []string {
	out := []string{}
	for _, s := range sums {
		out = append(out, s.TraceID)
	}
	return out
}

func TestSearchFilters(t *testing.T) {
	s := searchFixture(t)
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"no filter returns every trace, newest first", Query{}, []string{traceCache, traceNoRoot, traceHealth, traceB, traceA}},
		{"service matches any span of a trace, not only the root", Query{Service: "demo-store"}, []string{traceNoRoot, traceA}},
		{"an unknown service matches nothing", Query{Service: "demo-nope"}, []string{}},
		{"status error matches traces with a failed span", Query{Status: StatusError}, []string{traceNoRoot, traceA}},
		{"status ok matches traces marked ok without failures", Query{Status: StatusOK}, []string{traceHealth}},
		{"status unset matches the rest", Query{Status: StatusUnset}, []string{traceCache, traceB}},
		{"min duration keeps traces at least that long", Query{MinDuration: 250 * time.Millisecond}, []string{traceHealth, traceA}},
		{"max duration keeps traces at most that long", Query{MaxDuration: 10 * time.Millisecond}, []string{traceCache, traceB}},
		{"a time range keeps traces that overlap it", Query{Start: t0.Add(500 * time.Millisecond), End: t0.Add(2100 * time.Millisecond)}, []string{traceHealth, traceB}},
		{"a range ending at a trace's start includes it", Query{End: t0}, []string{traceA}},
		{"a range starting after every trace matches nothing", Query{Start: t0.Add(2 * time.Hour)}, []string{}},
		{"filters combine", Query{Service: "demo-api", Status: StatusError, MinDuration: 200 * time.Millisecond}, []string{traceA}},
		{"limit keeps the newest", Query{Limit: 2}, []string{traceCache, traceNoRoot}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ids(s.Search(tc.q)))
		})
	}
}

func TestSearchSummarizesTheTrace(t *testing.T) {
	s := searchFixture(t)
	got := s.Search(Query{Service: "demo-edge"})
	require.Equal(t, []TraceSummary{{
		TraceID:         traceA,
		RootServiceName: "demo-edge",
		RootSpanName:    "GET /checkout",
		StartTime:       t0,
		DurationSeconds: 0.25,
		SpanCount:       3,
		Status:          StatusError,
		Error:           true,
		Services:        []string{"demo-api", "demo-edge", "demo-store"},
	}}, got)

	got = s.Search(Query{Service: "demo-store", Start: t0.Add(time.Second)})
	require.Len(t, got, 1)
	require.Empty(t, got[0].RootServiceName, "the root span of this trace never arrived")
	require.Empty(t, got[0].RootSpanName)
}

func TestSearchSeesSpansThatArriveLater(t *testing.T) {
	s := searchFixture(t)
	// The root of traceNoRoot arrives, from another service, and makes the
	// trace longer.
	appendAll(t, s.Store, batch(span{service: "demo-edge", name: "PUT /cart", trace: traceNoRoot, id: "5555555555555551", start: 2900 * time.Millisecond, dur: 400 * time.Millisecond}))
	got := s.Search(Query{Service: "demo-edge", MinDuration: 400 * time.Millisecond})
	require.Equal(t, []string{traceNoRoot}, ids(got))
	require.Equal(t, "demo-edge", got[0].RootServiceName)
	require.Equal(t, "PUT /cart", got[0].RootSpanName)
	require.Equal(t, 2, got[0].SpanCount)
	require.True(t, got[0].Error)

	td, err := s.Trace(context.Background(), traceID(traceNoRoot))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-edge/PUT /cart", "demo-store/UPDATE"}, spanNames(td))
}
