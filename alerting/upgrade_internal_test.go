package alerting

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestGroupKeysOfOlderVersionsAreRenamedOnStart(t *testing.T) {
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a := &Alert{Labels: model.LabelSet{"alertname": "Down", "severity": "page"}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), UpdatedAt: now}

	// What an older version left: the page was announced under the
	// position-based key of the default page route, with its Slack thread.
	legacy := `0.0:{alertname="Down",severity="page"}`
	_, err = store.db.ExecContext(ctx, `INSERT INTO nflog(group_key, receiver, firing, resolved, sent_at) VALUES (?, 'log', ?, '[]', ?)`,
		legacy, mustJSON([]string{a.Fingerprint().String()}), ms(now.Add(-time.Minute)))
	require.NoError(t, err)
	require.NoError(t, store.ReceiverState(ReceiverSlack).Put(ctx, legacy, `{"channel":"C0","ts":"1.000001","status":"firing"}`))

	ok := &okReceiver{}
	m, err := New(ctx, Options{Config: DefaultConfig(), Store: store, Receivers: map[string]Receiver{ReceiverLog: ok}, Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.NoError(t, m.Put(ctx, a))
	_, err = m.Tick(ctx)
	require.NoError(t, err)
	_, err = m.Deliver(ctx)
	require.NoError(t, err)
	require.Zero(t, ok.got, "the page announced before the upgrade is not paged again")

	key := `{}/{severity="page"}:{alertname="Down",severity="page"}`
	th, found, err := store.ReceiverState(ReceiverSlack).Get(ctx, key)
	require.NoError(t, err)
	require.True(t, found, "the Slack thread moved to the new key, so later updates find their message")
	require.Contains(t, th, `"ts":"1.000001"`)
}

// indexing is a receiver that, as the Slack renderer did, reads the first
// alert of every notification.
type indexing struct{ calls int }

func (r *indexing) Notify(_ context.Context, n *Notification) error {
	r.calls++
	_ = n.Alerts[0]
	return nil
}

func TestAnEmptyNotificationLeftSendingByACrashIsFailedOnStart(t *testing.T) {
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// What a crashed older version left: an empty "resolved" notification
	// in the middle of its delivery.
	n := &Notification{Receiver: ReceiverLog, Status: StatusResolved, GroupKey: `0:{alertname="A"}`, CreatedAt: now}
	require.NoError(t, store.enqueue(ctx, []*Notification{n}, []*nflogEntry{nil}, now))
	require.NoError(t, store.markSending(ctx, []int64{n.ID}, now.Add(attemptLease)))

	rcv := &indexing{}
	m, err := New(ctx, Options{Config: DefaultConfig(), Store: store, Receivers: map[string]Receiver{ReceiverLog: rcv}, Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = m.Deliver(ctx)
	require.NoError(t, err)
	require.Zero(t, rcv.calls, "the receiver is not handed a notification without alerts")
	counts, err := store.OutboxCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{outboxFailed: 1}, counts)
}
