package tracestore

import (
	"context"
	"fmt"
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
	defer func() { _ = s.Close() }()
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
	defer func() { _ = s.Close() }()
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
	defer func() { _ = s.Close() }()
	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	require.Equal(t, before, s.Search(Query{}))
}

func TestAppendPushesBackWhenTooManyBatchesWait(t *testing.T) {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{MaxPendingAppends: 2, AppendWait: 20 * time.Millisecond})
	defer func() { _ = s.Close() }()
	// Two batches are being written (the write lock is held, as a slow disk
	// would hold it).
	s.mu.Lock()
	results := make(chan error, 2)
	for _, td := range checkoutBatches()[:2] {
		go func() {
			_, err := s.Append(context.Background(), td)
			results <- err
		}()
	}
	require.Eventually(t, func() bool { return len(s.pending) == 2 }, 5*time.Second, time.Millisecond)

	td := checkoutBatches()[2]
	rejected, err := s.Append(context.Background(), td)
	require.ErrorIs(t, err, ErrOverloaded)
	require.Equal(t, 1, rejected)
	require.InDelta(t, 1, counter(t, s.m.rejected.WithLabelValues("overloaded")), 0)

	s.mu.Unlock()
	require.NoError(t, <-results)
	require.NoError(t, <-results)
	appendAll(t, s.Store, td)
	require.Equal(t, map[string]bool{traceA: true, traceB: true}, present(s.Store, traceA, traceB))
}

func TestAppendAfterCloseFails(t *testing.T) {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is harmless")
	rejected, err := s.Append(context.Background(), checkoutBatches()[0])
	require.ErrorIs(t, err, ErrClosed)
	require.Equal(t, 1, rejected)
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"the defaults are valid", func(*Config) {}, ""},
		{"a retention under a minute is refused", func(c *Config) { c.Retention = time.Second }, "retention: "},
		{"max_bytes under 1 MiB is refused", func(c *Config) { c.MaxBytes = 1000 }, "max_bytes: "},
		{"a forward endpoint must be a URL", func(c *Config) { c.Forward.Endpoint = "tempo:4318" }, "forward.endpoint: "},
		{"a forward endpoint needs a host", func(c *Config) { c.Forward.Endpoint = "http:///v1/traces" }, "forward.endpoint: "},
		{"a forward timeout must be positive", func(c *Config) { c.Forward.Endpoint = "http://tempo:4318"; c.Forward.Timeout = 0 }, "forward.timeout: "},
		{"a forward queue must hold a span", func(c *Config) { c.Forward.Endpoint = "http://tempo:4318"; c.Forward.QueueSize = 0 }, "forward.queue_size: "},
		{"a disabled forward is not checked", func(c *Config) { c.Forward.Timeout = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.modify(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.Regexp(t, "^"+tc.want, err.Error())
		})
	}
}

// TestIndexStaysConsistentAsSegmentsGo deletes segments in the middle of
// many traces' lives and checks every index entry against a fresh rebuild
// from disk.
func TestIndexStaysConsistentAsSegmentsGo(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.MaxBytes = 1 << 20
	s := openTest(t, dir, cfg, Options{SegmentBytes: 32 << 10})
	svcs := []string{"demo-edge", "demo-api", "demo-store"}
	for i := range 1500 {
		var spans []span
		// Each batch continues traces of the last few batches, so traces
		// straddle segments.
		for j := range 6 {
			tr := max(i-j%3, 0)
			spans = append(spans, span{
				service: svcs[i%3], name: fmt.Sprintf("op-%d", j), trace: fmt.Sprintf("%032x", tr+1), id: fmt.Sprintf("%08x%08x", i+1, j+1),
				start: time.Duration(i) * time.Millisecond, dur: time.Duration(j) * time.Millisecond, status: ptrace.StatusCode(j % 3),
			})
		}
		appendAll(t, s.Store, batch(spans...))
	}
	require.Positive(t, counter(t, s.m.deleted.WithLabelValues("size")))
	live := s.Search(Query{Limit: maxLimit})
	require.Len(t, s.traces, len(s.entries))
	for id, i := range s.traces {
		require.Equal(t, id, s.entries[i].id)
	}
	require.NoError(t, s.Close())

	r := openTest(t, dir, cfg, Options{SegmentBytes: 32 << 10})
	defer func() { _ = r.Close() }()
	require.Equal(t, live, r.Search(Query{Limit: maxLimit}), "the index after deletions equals one rebuilt from the files")
}
