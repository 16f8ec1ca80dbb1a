package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/sloengine"
)

// pipeline is one configuration of the path from SLI data to a page.
type pipeline struct {
	name string
	// dataEvery is how often new SLI data becomes visible (scrape or OTLP
	// export interval); sloEvery how often burn rates are computed;
	// ruleEvery how often alert rules run; groupWait the page route's wait.
	dataEvery, sloEvery, ruleEvery, groupWait time.Duration
}

// firstPage returns when the first page notification for a 100% outage
// that starts at offset into the evaluation cycles is delivered, running
// Burnrate's real rule evaluation, dispatcher and outbox on a pinned clock.
// Burn rates follow the workbook: steady traffic, every window full of
// good history, then every request failing; a window of length W has an
// error ratio of min(t, W)/W at t after the fault.
func firstPage(t testing.TB, p pipeline, offset time.Duration) time.Duration {
	epoch := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	fault := epoch.Add(offset)
	var mu sync.Mutex
	now := epoch
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var snapMu sync.Mutex
	var snapshot []alerting.SLOBurn
	burnsAt := func(dataAt time.Time) alerting.SLOBurn {
		b := alerting.SLOBurn{ID: "demo-edge-availability", Service: "demo-edge", Objective: 0.999,
			Period: 30 * 24 * time.Hour, BudgetRemaining: 0.9, LastData: dataAt, Windows: map[time.Duration]alerting.WindowBurn{}}
		var windows []sloengine.WindowStatus
		for _, w := range sloengine.Windows {
			bad := min(max(dataAt.Sub(fault), 0), w)
			ratio := float64(bad) / float64(w)
			b.Windows[w] = alerting.WindowBurn{BurnRate: ratio / 0.001, Errors: ratio * 100, Total: 100}
			windows = append(windows, sloengine.WindowStatus{Length: w, ErrorRatio: sloengine.Value(ratio), BurnRate: sloengine.Value(ratio / 0.001), TotalEvents: 100})
		}
		// The tiers fire as the SLO engine decides.
		b.Tiers = sloengine.EvaluateTiers(sloengine.DefaultTiers(b.Period), windows, 0.001)
		return b
	}
	src := alerting.BurnSourceFunc(func() []alerting.SLOBurn {
		snapMu.Lock()
		defer snapMu.Unlock()
		return snapshot
	})

	first := make(chan time.Time, 1)
	rcv := receiverFunc(func(n *alerting.Notification) {
		if n.CommonLabels["severity"] == "page" {
			select {
			case first <- clock():
			default:
			}
		}
	})
	store, err := alerting.OpenStore(context.Background(), filepath.Join(t.TempDir(), "alerting.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := alerting.DefaultConfig()
	cfg.EvaluationInterval = p.ruleEvery
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}, GroupWait: p.groupWait}}
	m, err := alerting.New(context.Background(), alerting.Options{Config: cfg, Store: store, Burns: src, Now: clock,
		Receivers: map[string]alerting.Receiver{alerting.ReceiverLog: rcv},
		Logger:    slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := 100 * time.Millisecond
	var lastData time.Time
	for i := 0; ; i++ {
		el := time.Duration(i) * step
		mu.Lock()
		now = epoch.Add(el)
		mu.Unlock()
		if el%p.dataEvery == 0 {
			lastData = epoch.Add(el)
		}
		if el%p.sloEvery == 0 {
			snapMu.Lock()
			snapshot = []alerting.SLOBurn{burnsAt(lastData)}
			snapMu.Unlock()
		}
		if el%p.ruleEvery == 0 {
			if err := m.Evaluate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-first:
			return at.Sub(fault)
		default:
		}
		if el > 30*time.Minute {
			t.Fatalf("%s: no page 30 minutes after the fault", p.name)
		}
	}
}

type receiverFunc func(*alerting.Notification)

func (f receiverFunc) Notify(_ context.Context, n *alerting.Notification) error { f(n); return nil }

// TestDetectionLatencyModel runs the page path for a 100% outage on a
// 99.9% / 30d SLO, with the fault at 12 phases spread over the 5s and 1m cycles,
// for Burnrate's defaults and for a Prometheus + Alertmanager pipeline's
// (1m scrape and evaluation, 30s group_wait), both through Burnrate's own
// rule evaluation and Alertmanager-semantics dispatcher on a pinned clock.
// It reports; it asserts only that both page.
//
//	BURNRATE_BENCH=1 go test ./bench/alerting -run DetectionLatencyModel -v
func TestDetectionLatencyModel(t *testing.T) {
	if os.Getenv("BURNRATE_BENCH") == "" {
		t.Skip("a 30s model run; set BURNRATE_BENCH=1 to run it")
	}
	pipelines := []pipeline{
		{"Burnrate with the former slo.interval 30s (5s OTLP export, rules 5s, page group_wait 1s)", 5 * time.Second, 30 * time.Second, 5 * time.Second, time.Second},
		{"Burnrate defaults (5s OTLP export, slo.interval 5s, rules 5s, page group_wait 1s)", 5 * time.Second, 5 * time.Second, 5 * time.Second, time.Second},
		{"Burnrate with slo.interval 5s, alerting.evaluation_interval 1s", 5 * time.Second, 5 * time.Second, time.Second, time.Second},
		{"Prometheus + Alertmanager defaults (1m scrape, 1m evaluation, group_wait 30s)", time.Minute, time.Minute, time.Minute, 30 * time.Second},
	}
	medians := map[string]time.Duration{}
	for _, p := range pipelines {
		var got []time.Duration
		for i := range 12 {
			got = append(got, firstPage(t, p, time.Duration(i)*4700*time.Millisecond+300*time.Millisecond))
		}
		slices.Sort(got)
		medians[p.name] = got[len(got)/2]
		t.Logf("%-85s median %6s  min %6s  max %6s", p.name, got[len(got)/2], got[0], got[len(got)-1])
	}
	prom := medians[pipelines[len(pipelines)-1].name]
	for _, p := range pipelines[:len(pipelines)-1] {
		t.Logf("ratio Prometheus+Alertmanager / %s: %.2f", p.name, float64(prom)/float64(medians[p.name]))
	}
	fmt.Println()
}
