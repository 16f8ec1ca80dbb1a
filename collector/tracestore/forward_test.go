package tracestore

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// otlpReceiver is a real OTLP/HTTP traces endpoint: it decodes requests with
// ptraceotlp, as an OpenTelemetry Collector does, and hands them to fn,
// which may answer with an error status instead.
type otlpReceiver struct {
	mu     sync.Mutex
	spans  []string
	header http.Header
}

func newOTLPReceiver(t *testing.T, fn func(n int) int) (*httptest.Server, *otlpReceiver) {
	rcv := &otlpReceiver{}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if code := fn(int(requests.Add(1))); code != http.StatusOK {
			w.Header().Set("Retry-After", "0")
			http.Error(w, http.StatusText(code), code)
			return
		}
		rcv.mu.Lock()
		rcv.spans = append(rcv.spans, spanNames(req.Traces())...)
		rcv.header = r.Header.Clone()
		rcv.mu.Unlock()
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv, rcv
}

func (r *otlpReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.spans...)
}

func forwardConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.Forward.Endpoint = url
	cfg.Forward.Timeout = 5 * time.Second
	cfg.Forward.Headers = map[string]string{"Authorization": "Bearer s3cret"}
	return cfg
}

func runStore(t *testing.T, s *testStore) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = s.Close()
	})
}

func TestForwardRetriesUntilTheReceiverTakesTheSpans(t *testing.T) {
	srv, rcv := newOTLPReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{ForwardWorkers: 1, ForwardBackoff: 10 * time.Millisecond})
	runStore(t, s)
	appendAll(t, s.Store, checkoutBatches()...)

	require.Eventually(t, func() bool { return len(rcv.received()) == 4 }, 10*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{"demo-edge/GET /checkout", "demo-api/checkout", "demo-api/GET /items", "demo-store/SELECT"}, rcv.received())
	require.Equal(t, "Bearer s3cret", rcv.header.Get("Authorization"))
	// The sender counts after the receiver answered.
	require.Eventually(t, func() bool { return counter(t, s.m.fwdSent) == 4 && s.fwd.queued() == 0 }, 5*time.Second, 10*time.Millisecond)
	require.InDelta(t, 2, counter(t, s.m.fwdRetries), 0)
}

func TestForwardDropsWhatTheReceiverRejects(t *testing.T) {
	srv, rcv := newOTLPReceiver(t, func(int) int { return http.StatusBadRequest })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{ForwardBackoff: 10 * time.Millisecond})
	runStore(t, s)
	appendAll(t, s.Store, checkoutBatches()...)
	require.Eventually(t, func() bool { return counter(t, s.m.fwdDropped.WithLabelValues("rejected")) == 4 }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, rcv.received())
	require.Zero(t, counter(t, s.m.fwdRetries), "a 400 is not retried")
}

func TestForwardGivesUpAfterMaxElapsed(t *testing.T) {
	srv, _ := newOTLPReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{
		ForwardWorkers: 1, ForwardBackoff: 5 * time.Millisecond, ForwardMaxElapsed: 100 * time.Millisecond,
	})
	runStore(t, s)
	appendAll(t, s.Store, checkoutBatches()[0])
	require.Eventually(t, func() bool { return counter(t, s.m.fwdDropped.WithLabelValues("retries_exhausted")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Positive(t, counter(t, s.m.fwdRetries))
}

func TestForwardDropsWhenTheQueueIsFullAndIngestGoesOn(t *testing.T) {
	release := make(chan struct{})
	srv, rcv := newOTLPReceiver(t, func(int) int {
		<-release // a receiver that hangs
		return http.StatusOK
	})
	cfg := forwardConfig(srv.URL)
	cfg.Forward.QueueSize = 2
	s := openTest(t, t.TempDir(), cfg, Options{ForwardWorkers: 1})
	runStore(t, s)
	t.Cleanup(func() { close(release) }) // before the store stops: cleanups run last-in first-out

	b := checkoutBatches()
	appendAll(t, s.Store, b[1]) // 2 spans: fills the queue
	appendAll(t, s.Store, b[0], b[2])
	require.InDelta(t, 2, counter(t, s.m.fwdDropped.WithLabelValues("queue_full")), 0)
	require.Equal(t, 2, s.fwd.queued())
	// Every span is stored even though the forward could not take them.
	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Len(t, spanNames(td), 3)

	release <- struct{}{}
	require.Eventually(t, func() bool { return len(rcv.received()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{"demo-api/checkout", "demo-api/GET /items"}, rcv.received())
}

func TestForwardEndpointWithoutPathGetsTheOTLPPath(t *testing.T) {
	srv, rcv := newOTLPReceiver(t, func(int) int { return http.StatusOK })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{})
	runStore(t, s)
	appendAll(t, s.Store, batch(span{service: "demo-api", name: "x", trace: traceC, id: "cccccccccccccccc", status: ptrace.StatusCodeOk}))
	require.Eventually(t, func() bool { return len(rcv.received()) == 1 }, 10*time.Second, 10*time.Millisecond)
}

func TestSelfMetricsAreOnTheInjectedRegistry(t *testing.T) {
	srv, rcv := newOTLPReceiver(t, func(int) int { return http.StatusOK })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{})
	runStore(t, s)
	appendAll(t, s.Store, checkoutBatches()...)
	require.Eventually(t, func() bool { return len(rcv.received()) == 4 }, 10*time.Second, 10*time.Millisecond)
	// The sender counts after the receiver answered.
	require.Eventually(t, func() bool { return counter(t, s.m.fwdSent) == 4 && s.fwd.queued() == 0 }, 10*time.Second, 10*time.Millisecond)

	mfs, err := s.reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"burnrate_collector_spans_accepted_total":                                 4,
		"burnrate_collector_spans_rejected_total{reason=invalid_id}":              0,
		"burnrate_collector_spans_rejected_total{reason=overloaded}":              0,
		"burnrate_collector_trace_store_traces":                                   2,
		"burnrate_collector_trace_store_segments":                                 1,
		"burnrate_collector_trace_forward_sent_spans_total":                       4,
		"burnrate_collector_trace_forward_dropped_spans_total{reason=queue_full}": 0,
		"burnrate_collector_trace_forward_queue_spans":                            0,
		"burnrate_collector_trace_forward_queue_capacity_spans":                   100_000,
	} {
		require.Contains(t, got, name)
		require.InDelta(t, want, got[name], 0, name)
	}
	require.Equal(t, float64(s.Stats().Bytes), got["burnrate_collector_trace_store_bytes"])
}

// TestForwardDrainsOnCleanShutdown queues batches and stops the store at
// once: a clean stop forwards what is queued instead of dropping it.
func TestForwardDrainsOnCleanShutdown(t *testing.T) {
	srv, rcv := newOTLPReceiver(t, func(int) int { return http.StatusOK })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{})
	appendAll(t, s.Store, checkoutBatches()...) // queued; Run is not running yet
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, s.Run(ctx))
	require.NoError(t, s.Close())
	require.Len(t, rcv.received(), 4)
	require.Zero(t, counter(t, s.m.fwdDropped.WithLabelValues("shutdown")))
}

// TestForwardDrainIsBoundedAndCounted stops the store while the receiver
// hangs: the drain ends after ForwardDrainTimeout and what was not sent is
// counted as dropped at shutdown.
func TestForwardDrainIsBoundedAndCounted(t *testing.T) {
	release := make(chan struct{})
	srv, _ := newOTLPReceiver(t, func(int) int {
		<-release
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	s := openTest(t, t.TempDir(), forwardConfig(srv.URL), Options{ForwardWorkers: 1, ForwardDrainTimeout: 50 * time.Millisecond})
	appendAll(t, s.Store, checkoutBatches()...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, s.Run(ctx))
	require.NoError(t, s.Close())
	require.InDelta(t, 4, counter(t, s.m.fwdDropped.WithLabelValues("shutdown")), 0)
	require.Zero(t, s.fwd.queued())
	require.Zero(t, s.fwd.queuedBytes())
}

// TestForwardQueueIsBoundedInBytes fills the forward queue's byte bound
// with one batch and requires the next to be dropped as queue_bytes, while
// the store keeps every span.
func TestForwardQueueIsBoundedInBytes(t *testing.T) {
	srv, _ := newOTLPReceiver(t, func(int) int { return http.StatusOK })
	cfg := forwardConfig(srv.URL)
	b := checkoutBatches()
	var m ptrace.ProtoMarshaler
	first, err := m.MarshalTraces(b[1])
	require.NoError(t, err)
	cfg.Forward.QueueBytes = int64(len(first)) + 10
	s := openTest(t, t.TempDir(), cfg, Options{})
	defer func() { _ = s.Close() }()
	appendAll(t, s.Store, b[1], b[0])
	require.InDelta(t, 1, counter(t, s.m.fwdDropped.WithLabelValues("queue_bytes")), 0)
	require.Equal(t, 2, s.fwd.queued())
	require.Equal(t, int64(len(first)), s.fwd.queuedBytes())
}
