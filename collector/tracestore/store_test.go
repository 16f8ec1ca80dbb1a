package tracestore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	traceA = "0af7651916cd43dd8448eb211c80319c"
	traceB = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceC = "00000000000000000000000000c0ffee"
)

// checkout is a request through three services, each of which exports its
// own batch, as separate processes do.
func checkoutBatches() []ptrace.Traces {
	return []ptrace.Traces{
		batch(span{service: "demo-edge", name: "GET /checkout", trace: traceA, id: "00f067aa0ba902b7", start: 0, dur: 250 * time.Millisecond}),
		batch(
			span{service: "demo-api", name: "checkout", trace: traceA, id: "00f067aa0ba902b8", parent: "00f067aa0ba902b7", start: 10 * time.Millisecond, dur: 200 * time.Millisecond},
			span{service: "demo-api", name: "GET /items", trace: traceB, id: "1111111111111111", start: time.Second, dur: 5 * time.Millisecond},
		),
		batch(span{service: "demo-store", name: "SELECT", trace: traceA, id: "00f067aa0ba902b9", parent: "00f067aa0ba902b8", start: 20 * time.Millisecond, dur: 150 * time.Millisecond, status: ptrace.StatusCodeError}),
	}
}

func appendAll(t testing.TB, s *Store, batches ...ptrace.Traces) {
	t.Helper()
	for _, td := range batches {
		rejected, err := s.Append(context.Background(), td)
		require.NoError(t, err)
		require.Zero(t, rejected)
	}
}

func TestAppendFromSeveralServicesReturnsTheWholeTrace(t *testing.T) {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	defer s.Close()
	appendAll(t, s.Store, checkoutBatches()...)

	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	// Each span keeps its own resource and attributes.
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	v, ok := sp.Attributes().Get("http.route")
	require.True(t, ok)
	require.Equal(t, "/items/{id}", v.Str())

	td, err = s.Trace(context.Background(), traceID(traceB))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/GET /items"}, spanNames(td))

	_, err = s.Trace(context.Background(), traceID(traceC))
	require.ErrorIs(t, err, ErrNotFound)

	require.InDelta(t, 4, counter(t, s.m.accepted), 0)
	require.Equal(t, 2, s.Stats().Traces)
}

func TestAppendRejectsSpansWithoutIDs(t *testing.T) {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	defer s.Close()
	td := batch(
		span{service: "demo-api", name: "ok", trace: traceA, id: "00f067aa0ba902b7"},
		span{service: "demo-api", name: "no trace ID", trace: "00000000000000000000000000000000", id: "00f067aa0ba902b7"},
		span{service: "demo-api", name: "no span ID", trace: traceB},
	)
	rejected, err := s.Append(context.Background(), td)
	require.NoError(t, err)
	require.Equal(t, 2, rejected)
	require.InDelta(t, 2, counter(t, s.m.rejected.WithLabelValues("invalid_id")), 0)
	require.InDelta(t, 1, counter(t, s.m.accepted), 0)
	_, err = s.Trace(context.Background(), traceID(traceB))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestDataAppendedBeforeCloseIsThereAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	appendAll(t, s.Store, checkoutBatches()...)
	before := s.Search(Query{})
	require.NoError(t, s.Close())

	s = openTest(t, dir, DefaultConfig(), Options{})
	defer s.Close()
	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	require.Equal(t, before, s.Search(Query{}))
}
