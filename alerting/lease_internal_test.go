package alerting

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// blocking is a receiver whose attempts wait for release.
type blocking struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Notify(ctx context.Context, _ *Notification) error {
	b.calls.Add(1)
	b.started <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func eventManager(t *testing.T, store *Store, rcv Receiver, reg prometheus.Registerer) *Manager {
	t.Helper()
	m, err := New(context.Background(), Options{Config: DefaultConfig(), Store: store, Registerer: reg,
		Receivers: map[string]Receiver{"pager": rcv}})
	require.NoError(t, err)
	return m
}

// A notification is claimed, with a lease, before its attempt: a second
// delivery round while the attempt runs does not take it again.
func TestANotificationClaimedForAnAttemptIsNotTakenAgainWhileItRuns(t *testing.T) {
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	rcv := &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
	m := eventManager(t, store, rcv, nil)
	require.NoError(t, m.Enqueue(ctx, "pager", Event{Stream: "incident/1", ID: "page/1", Body: json.RawMessage(`{}`)}))

	first := make(chan error, 1)
	go func() { _, err := m.Deliver(ctx); first <- err }()
	<-rcv.started
	n, err := m.Deliver(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the second round finds nothing due: the row is leased to the running attempt")
	close(rcv.release)
	require.NoError(t, <-first)
	require.Equal(t, int32(1), rcv.calls.Load())
	counts, err := store.OutboxCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sent": 1}, counts)
}

// A process that dies mid-attempt leaves the row "sending": the next
// process takes it back at start and sends it again, once, counting the
// re-send as a possible duplicate.
func TestANotificationCutShortByACrashIsSentAgainOnceAndCounted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "alerting.db")
	store, err := OpenStore(ctx, path)
	require.NoError(t, err)
	rcv := &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
	m := eventManager(t, store, rcv, nil)
	require.NoError(t, m.Enqueue(ctx, "pager", Event{Stream: "incident/1", ID: "page/1", Body: json.RawMessage(`{}`)}))
	crashed, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _, _ = m.Deliver(crashed) }()
	<-rcv.started
	cancel() // the process dies mid-attempt: the row stays "sending"
	<-done
	counts, err := store.OutboxCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sending": 1}, counts)
	require.NoError(t, store.Close())

	store, err = OpenStore(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	again := &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
	close(again.release)
	reg := prometheus.NewRegistry()
	m = eventManager(t, store, again, reg)
	n, err := m.Deliver(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "taken back at start, not after the lease")
	require.Equal(t, int32(1), again.calls.Load())
	require.InDelta(t, 1, testutil.ToFloat64(m.outbox.resent.WithLabelValues("pager")), 0)
	n, err = m.Deliver(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "sent once")
}
