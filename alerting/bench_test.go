package alerting_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

type nop struct{}

func (nop) Notify(context.Context, *alerting.Notification) error { return nil }

// BenchmarkPipeline measures one batch of 64 new alerts (Prometheus's
// batch size) through Put (SQLite), routing, a group flush into the outbox
// (SQLite) and delivery to a receiver that does nothing.
//
//	go test ./alerting -run '^$' -bench Pipeline -count 6
func BenchmarkPipeline(b *testing.B) {
	cfg := testConfig()
	cfg.Route.GroupBy = []string{"alertname", "service"}
	f := &fixture{t: b, dir: b.TempDir(), cfg: cfg, clock: newClock(t0), rcv: &recorder{}, extra: map[string]alerting.Receiver{}}
	f.open()
	ctx := context.Background()
	// The recorder would keep every notification; deliver to nop instead.
	f.extra["log"] = nop{}
	require.NoError(b, f.store.Close())
	f.open()
	seq := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		alerts := make([]*alerting.Alert, 64)
		for i := range alerts {
			seq++
			alerts[i] = &alerting.Alert{
				Labels: model.LabelSet{"alertname": model.LabelValue(fmt.Sprintf("A%d", seq%20)),
					"service": model.LabelValue(fmt.Sprintf("s%d", seq%50)), "seq": model.LabelValue(fmt.Sprint(seq))},
				StartsAt: f.clock.Now(), EndsAt: f.clock.Now().Add(time.Hour), UpdatedAt: f.clock.Now(),
			}
		}
		if err := f.m.Put(ctx, alerts...); err != nil {
			b.Fatal(err)
		}
		f.clock.Advance(30 * time.Second)
		if _, err := f.m.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := f.m.Deliver(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkRuleEvaluation measures one evaluation of the SLO rules of 100
// SLOs with the four default tiers, every 5 s: quiet (burn rate 0.5
// everywhere: nothing to write) and burning (2 everywhere: every tier's
// short window above 1, so each evaluation advances and saves 400 burn
// runs; the ticket-slow tier, factor 1, fires).
//
//	go test ./alerting -run '^$' -bench RuleEvaluation -count 6
func BenchmarkRuleEvaluation(b *testing.B) {
	for _, tc := range []struct {
		name string
		rate float64
	}{{"quiet", 0.5}, {"burning", 2}} {
		b.Run(tc.name, func(b *testing.B) {
			var all []alerting.SLOBurn
			for i := range 100 {
				s := slo(tc.rate)
				s.ID = fmt.Sprintf("slo-%03d", i)
				all = append(all, s)
			}
			f := &fixture{t: b, dir: b.TempDir(), cfg: testConfig(), clock: newClock(t0), rcv: &recorder{},
				extra: map[string]alerting.Receiver{"log": nop{}}}
			f.burns = alerting.BurnSourceFunc(func() []alerting.SLOBurn {
				for i := range all {
					all[i].LastData = f.clock.Now() // data keeps arriving: no SLODataAbsent
				}
				return all
			})
			f.open()
			ctx := context.Background()
			require.NoError(b, f.m.Evaluate(ctx))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				f.clock.Advance(5 * time.Second)
				if err := f.m.Evaluate(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
