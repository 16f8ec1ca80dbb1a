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
