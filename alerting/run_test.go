package alerting_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/testutil"
)

// hangingReceiver takes a notification and never answers until stopped.
type hangingReceiver struct{ calls atomic.Int32 }

func (h *hangingReceiver) Notify(ctx context.Context, _ *alerting.Notification) error {
	h.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// TestRulesAreEvaluatedWhileAReceiverHangs runs the Manager's loops on
// synctest's clock with a receiver that never answers: the page goes to
// it and hangs there, and the rules go on being evaluated meanwhile (the
// burn ending resolves the page on time).
func TestRulesAreEvaluatedWhileAReceiverHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
		require.NoError(t, err)
		src := &burns{}
		src.set(slo(20))
		var evals atomic.Int32
		counting := alerting.BurnSourceFunc(func() []alerting.SLOBurn { evals.Add(1); return src.Burns() })
		rcv := &hangingReceiver{}
		cfg := pageFastOnly(0)
		cfg.Route.GroupWait = time.Second
		m, err := alerting.New(ctx, alerting.Options{
			Config: cfg, Store: store, Burns: counting, Logger: testutil.Logger(t), Registerer: prometheus.NewRegistry(),
			Receivers: map[string]alerting.Receiver{alerting.ReceiverLog: rcv},
		})
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(ctx) }()
		defer func() {
			cancel()
			<-done
			require.NoError(t, store.Close())
		}()

		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, int32(1), rcv.calls.Load(), "the page is with the hanging receiver")
		require.Equal(t, alerting.StateFiring, pageState(m))

		src.set(slo(0))
		before := evals.Load()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.GreaterOrEqual(t, evals.Load()-before, int32(11), "an evaluation every 5s while the receiver hangs")
		require.Equal(t, alerting.StateResolved, pageState(m), "the end of the burn is seen on time")
	})
}

// TestAlertsAreFlushedWhileAnEvaluationIsSlow blocks the SLO source (a
// slow SLO engine) on synctest's clock: an alert sent by Prometheus
// meanwhile is still flushed and delivered after its group_wait.
func TestAlertsAreFlushedWhileAnEvaluationIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		store, err := alerting.OpenStore(ctx, filepath.Join(t.TempDir(), "alerting.db"))
		require.NoError(t, err)
		release := make(chan struct{})
		var calls atomic.Int32
		slow := alerting.BurnSourceFunc(func() []alerting.SLOBurn {
			if calls.Add(1) > 1 {
				<-release
			}
			return nil
		})
		rcv := &recorder{}
		cfg := testConfig()
		cfg.Route.GroupWait = time.Second
		m, err := alerting.New(ctx, alerting.Options{
			Config: cfg, Store: store, Burns: slow, Logger: testutil.Logger(t), Registerer: prometheus.NewRegistry(),
			Receivers: map[string]alerting.Receiver{alerting.ReceiverLog: rcv},
		})
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(ctx) }()
		defer func() {
			close(release)
			cancel()
			<-done
			require.NoError(t, store.Close())
		}()

		time.Sleep(6 * time.Second) // the second evaluation is stuck
		synctest.Wait()
		require.Equal(t, int32(2), calls.Load())
		now := time.Now()
		require.NoError(t, m.Put(ctx, &alerting.Alert{Labels: map[model.LabelName]model.LabelValue{"alertname": "NodeDown"},
			StartsAt: now, EndsAt: now.Add(time.Hour), UpdatedAt: now}))
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"firing:NodeDown"}, names(rcv.all()), "delivered while the evaluation is stuck")
	})
}
