// Command alerting measures Burnrate's alert pipeline on this machine:
// intake (POST /api/v2/alerts, persisted to SQLite) -> routing -> grouping
// -> outbox (SQLite) -> a receiver that only counts.
//
// Phase 1 pushes -burst distinct alerts as fast as -workers senders can, in
// Prometheus-sized batches, and times intake and the end-to-end drain.
// Phase 2 sends -rate alerts a minute for -duration, re-sending a pool of
// firing alerts the way Prometheus does, and samples the backlog (groups,
// undelivered notifications) to show whether it grows.
//
//	go run ./bench/alerting -burst 50000 -rate 10000 -duration 60s
//
// Results go in bench/README.md ("Alerting").
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/burnrate/burnrate/alerting"
)

// counter is a receiver that counts notifications, the alerts they carry
// and the distinct alerts seen.
type counter struct {
	notifications, alerts, distinct atomic.Int64
	seen                            sync.Map
}

func (c *counter) Notify(_ context.Context, n *alerting.Notification) error {
	c.notifications.Add(1)
	c.alerts.Add(int64(len(n.Alerts)))
	for _, a := range n.Alerts {
		if _, dup := c.seen.LoadOrStore(a.Fingerprint, true); !dup {
			c.distinct.Add(1)
		}
	}
	return nil
}

type postable struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// alert i: 20 alert names x services x instances, grouped by alertname and
// service, so that groups hold tens of alerts as in a real outage.
func alert(i int, now time.Time) postable {
	return postable{
		Labels: map[string]string{
			"alertname": fmt.Sprintf("Alert%02d", i%20),
			"service":   fmt.Sprintf("svc-%03d", (i/20)%50),
			"instance":  fmt.Sprintf("10.0.%d.%d:9100", (i/1000)%256, i%250),
			"severity":  []string{"page", "ticket"}[i%2],
			"seq":       fmt.Sprint(i),
		},
		Annotations: map[string]string{"summary": "benchmark alert"},
		StartsAt:    now.Add(-time.Minute),
		EndsAt:      now.Add(3 * time.Minute),
	}
}

func main() {
	var (
		burst    = flag.Int("burst", 50_000, "alerts in the burst phase (at most 1M)")
		batch    = flag.Int("batch", 64, "alerts per POST (Prometheus's notifier sends up to 64)")
		workers  = flag.Int("workers", runtime.GOMAXPROCS(0), "concurrent senders in the burst phase")
		rate     = flag.Int("rate", 10_000, "alerts per minute in the steady phase")
		pool     = flag.Int("pool", 10_000, "distinct firing alerts re-sent in the steady phase")
		duration = flag.Duration("duration", 60*time.Second, "length of the steady phase (at most 10m)")
		// Alertmanager's default is 5m; a shorter one re-sends changed
		// groups more often and so writes more to the outbox.
		groupInterval = flag.Duration("group-interval", time.Minute, "group_interval of the route")
	)
	flag.Parse()
	if *burst > 1_000_000 || *burst < 1 || *duration > 10*time.Minute || *batch < 1 || *workers < 1 || *rate < 1 || *pool < 1 || *groupInterval <= 0 {
		log.Fatal("need 1 <= burst <= 1M, duration <= 10m, positive batch, workers, rate, pool and group-interval")
	}
	dir, err := os.MkdirTemp("", "burnrate-bench-alerting")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := alerting.OpenStore(ctx, filepath.Join(dir, "alerting.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	cfg := alerting.DefaultConfig()
	cfg.Route.GroupBy = []string{"alertname", "service"}
	cfg.Route.GroupWait = time.Second
	cfg.Route.GroupInterval = *groupInterval
	cfg.Route.Routes = []alerting.RouteConfig{{Matchers: []string{`severity="page"`}}} // pages inherit every timer
	cfg.Outbox.PollInterval = 100 * time.Millisecond
	rcv := &counter{}
	reg := prometheus.NewRegistry()
	m, err := alerting.New(ctx, alerting.Options{
		Config: cfg, Store: store, Receivers: map[string]alerting.Receiver{alerting.ReceiverLog: rcv},
		Logger: slog.New(slog.DiscardHandler), Registerer: reg,
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = m.Run(ctx) }()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second}

	var latMu sync.Mutex
	var lats []time.Duration
	send := func(alerts []postable) {
		body, _ := json.Marshal(alerts)
		t := time.Now()
		resp, err := client.Post(srv.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			log.Fatalf("POST /api/v2/alerts: %s", resp.Status)
		}
		latMu.Lock()
		lats = append(lats, time.Since(t))
		latMu.Unlock()
	}
	fmt.Printf("GOMAXPROCS=%d go=%s group_wait=1s group_interval=%s\n", runtime.GOMAXPROCS(0), runtime.Version(), *groupInterval)

	// Phase 1: burst.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(*batch))) - *batch
				if from >= *burst {
					return
				}
				now := time.Now()
				var b []postable
				for i := from; i < min(from+*batch, *burst); i++ {
					b = append(b, alert(i, now))
				}
				send(b)
			}
		}()
	}
	wg.Wait()
	intake := time.Since(start)
	deadline := time.Now().Add(2 * time.Minute)
	for rcv.distinct.Load() < int64(*burst) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	drained := time.Since(start)
	fmt.Printf("burst: %d alerts in batches of %d from %d senders\n", *burst, *batch, *workers)
	fmt.Printf("  intake:     %.0f alerts/s (%s), POST p50 %s p99 %s\n", float64(*burst)/intake.Seconds(), intake.Round(time.Millisecond), pct(lats, 50), pct(lats, 99))
	fmt.Printf("  delivered:  all %d distinct alerts %s after the first POST, in %d notifications (alerts that join a group after its first flush wait group_interval, as in Alertmanager)\n",
		rcv.distinct.Load(), drained.Round(time.Millisecond), rcv.notifications.Load())

	// Phase 2: steady rate, re-sending a pool of firing alerts.
	lats = nil
	n0, a0 := rcv.notifications.Load(), rcv.alerts.Load()
	perTick := float64(*rate) / 600 // on average, every 100ms
	var owed float64
	// Batches are sent concurrently (at most 8 in flight), so a slow answer
	// does not lower the offered rate (open model).
	sem := make(chan struct{}, 8)
	var inflight sync.WaitGroup
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sample := time.NewTicker(10 * time.Second)
	defer sample.Stop()
	stop := time.After(*duration)
	phaseStart := time.Now()
	offset, sent := *burst, 0
	fmt.Printf("steady: %d alerts/min (%.1f every 100ms) over a pool of %d for %s\n", *rate, perTick, *pool, *duration)
	fmt.Printf("  %8s %10s %8s %14s %10s\n", "t", "sent", "groups", "outbox unsent", "heap MiB")
loop:
	for {
		select {
		case <-tick.C:
			now := time.Now()
			var b []postable
			// What is owed follows the wall clock, so ticks dropped while
			// the machine is busy are made up for.
			owed = float64(*rate)*time.Since(phaseStart).Minutes() - float64(sent)
			for ; owed >= 1; owed-- {
				b = append(b, alert(offset+sent%*pool, now))
				sent++
				if len(b) == *batch {
					full := b
					inflight.Add(1)
					sem <- struct{}{}
					go func() {
						defer func() { <-sem; inflight.Done() }()
						send(full)
					}()
					b = nil
				}
			}
			if len(b) > 0 {
				inflight.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; inflight.Done() }()
					send(b)
				}()
			}
		case <-sample.C:
			counts, err := store.OutboxCounts(ctx)
			if err != nil {
				log.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("  %8s %10d %8d %14d %10.1f\n", time.Since(start).Round(time.Second), sent,
				groupCount(reg), counts["pending"]+counts["sending"], float64(ms.HeapAlloc)/(1<<20))
		case <-stop:
			break loop
		}
	}
	inflight.Wait()
	drainStart := time.Now()
	for {
		counts, err := store.OutboxCounts(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if counts["pending"]+counts["sending"] == 0 || time.Since(drainStart) > time.Minute {
			fmt.Printf("  outbox empty %s after the phase ended\n", time.Since(drainStart).Round(time.Millisecond))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("  POST p50 %s p99 %s; %d notifications carrying %d alerts delivered during the phase\n",
		pct(lats, 50), pct(lats, 99), rcv.notifications.Load()-n0, rcv.alerts.Load()-a0)
}

// groupCount reads the burnrate_alerting_groups gauge.
func groupCount(reg *prometheus.Registry) int {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "burnrate_alerting_groups" {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return -1
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)].Round(10 * time.Microsecond)
}
