package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// rejectAll rejects every notification for good, as Slack does with
// invalid_blocks.
type rejectAll struct{}

func (rejectAll) Notify(context.Context, *Notification) error {
	return fmt.Errorf("%w: invalid_blocks", ErrPermanent)
}

type okReceiver struct {
	mu  sync.Mutex
	got int
}

func (r *okReceiver) Notify(context.Context, *Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got++
	return nil
}

func TestGarbageCollectionKeepsAResolvedAlertUntilItsResolutionIsDelivered(t *testing.T) {
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ok := &okReceiver{}
	rcv := map[string]Receiver{ReceiverLog: ok}
	m, err := New(ctx, Options{Config: DefaultConfig(), Store: store, Receivers: rcv, Now: clock})
	require.NoError(t, err)
	step := func(d time.Duration) {
		advance(d)
		_, err := m.Tick(ctx)
		require.NoError(t, err)
		_, err = m.Deliver(ctx)
		require.NoError(t, err)
	}
	a := &Alert{Labels: model.LabelSet{"alertname": "A"}, StartsAt: now, EndsAt: now.Add(time.Hour), UpdatedAt: now}
	require.NoError(t, m.Put(ctx, a))
	step(30 * time.Second)
	require.Equal(t, 1, ok.got)

	// The receiver starts rejecting; the alert resolves.
	m.outbox.integrations[ReceiverLog] = rejectAll{}
	r := cloneAlert(a)
	r.EndsAt, r.UpdatedAt = now, now
	require.NoError(t, m.Put(ctx, r))
	for range 4 { // 20 minutes of rejected resolutions
		step(5 * time.Minute)
	}
	require.NoError(t, m.gc(ctx))
	stored, err := store.LoadAlerts(ctx)
	require.NoError(t, err)
	require.Len(t, stored, 1, "the resolution was never delivered: the alert is kept")

	m.outbox.integrations[ReceiverLog] = ok
	step(5 * time.Minute)
	require.Equal(t, 2, ok.got, "the resolution goes out once the receiver accepts it")
	step(5 * time.Minute)
	require.NoError(t, m.gc(ctx))
	stored, err = store.LoadAlerts(ctx)
	require.NoError(t, err)
	require.Empty(t, stored, "once delivered, the resolved alert is forgotten")
}
