// Command e2e measures detection latency for a 100% outage on a 99.9% SLO
// at steady traffic, from the fault to the notification, side by side for
// Burnrate (default configuration, Slack Web API on loopback) and a real
// Prometheus + Alertmanager pipeline (Debian prometheus 2.42 running the
// rules `burnrate slo rules` exports, evaluation_interval 1m; Debian
// prometheus-alertmanager with default group_wait 30s, webhook receiver).
//
// Both pipelines get the same data by remote write: 65 minutes of steady
// good traffic (a request counter at -rate requests a second, samples 10s
// apart on off-grid timestamps) written into fresh storage before either
// evaluates anything, then a live feed in real time (-step apart, the demo
// platform's OTLP export interval), then the outage (every new request an
// error) at a recorded instant.
//
// Burnrate's history goes in before its SLO engine's first cycle: a first
// Burnrate process with no SLOs (collector only) receives it on a fresh
// data dir and stops, then the full stack starts on the same data dir with
// the SLO file, so the engine's windows are filled from the TSDB at start.
// Prometheus receives it before its rule file is loaded (reload after).
//
//	go run ./bench/alerting/e2e -runs 3
//
// Results go in bench/README.md ("Alerting").
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/slack-go/slack/slacktest"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/sloengine"
)

const sloID = "bench-availability"

// countQuery counts the stored history samples (any history under 5 days).
const countQuery = `count_over_time(bench_requests_total{code="200"}[5d])`

// spec is the SLO under test: 99.9% availability of a request counter.
const spec = `version: burnrate/v1
service: bench
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(bench_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(bench_requests_total[{{.window}}]))
    min_events: 10
`

func main() {
	var (
		runs    = flag.Int("runs", 3, "runs; the median is reported")
		rate    = flag.Float64("rate", 1, "requests a second the counters grow by")
		history = flag.Duration("history", 72*time.Hour+10*time.Minute, "good history written before the start (at least 3d: every tier's long window full, as at steady traffic)")
		step    = flag.Duration("step", 5*time.Second, "live sample interval")
		warm    = flag.Duration("warm", 10*time.Second, "live good traffic before the fault (plus a random 0-30s, to vary the phase)")
		wait    = flag.Duration("timeout", 200*time.Second, "give up this long after the fault")
		sloIvl  = flag.Duration("slo-interval", 0, "override slo.interval (0: Burnrate's default)")
		evalIvl = flag.Duration("alert-eval", 0, "override alerting.evaluation_interval (0: Burnrate's default)")
		noProm  = flag.Bool("no-prometheus", false, "measure Burnrate only")
		verbose = flag.Bool("v", false, "log Burnrate and the Prometheus processes")
	)
	flag.Parse()
	withProm := !*noProm
	for _, bin := range []string{"/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager"} {
		if _, err := os.Stat(bin); err != nil && withProm {
			log.Printf("%s missing: measuring Burnrate only", bin)
			withProm = false
		}
	}
	fmt.Printf("history %s at %.0f req/s, live samples every %s, slo.interval %s, alerting.evaluation_interval %s\n", *history, *rate, *step, cmp.Or(*sloIvl, app.DefaultOptions().SLO.Interval), cmp.Or(*evalIvl, app.DefaultOptions().Alerting.EvaluationInterval))
	var br, pa []time.Duration
	for i := range *runs {
		r := run(runConfig{rate: *rate, history: *history, step: *step, warm: *warm + time.Duration(rand.Int64N(int64(30*time.Second))), timeout: *wait, sloInterval: *sloIvl, alertEval: *evalIvl, prom: withProm, verbose: *verbose})
		fmt.Printf("run %d: fault at %s; Burnrate -> Slack %s; Prometheus+Alertmanager -> webhook %s\n", i+1, r.fault.Format("15:04:05.000"), show(r.burnrate), show(r.prom))
		br, pa = append(br, r.burnrate), append(pa, r.prom)
	}
	mb, mp := median(br), median(pa)
	fmt.Printf("median: Burnrate %s, Prometheus+Alertmanager %s", show(mb), show(mp))
	if mb > 0 && mp > 0 {
		fmt.Printf(", ratio %.2fx", mp.Seconds()/mb.Seconds())
	}
	fmt.Println()
}

func show(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return d.Round(100 * time.Millisecond).String()
}

// median of the measured runs; a run without a notification counts as
// infinitely slow.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	for i, d := range s {
		if d <= 0 {
			s[i] = math.MaxInt64
		}
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if m == math.MaxInt64 {
		return 0
	}
	return m
}

type runConfig struct {
	rate                         float64
	history, step, warm, timeout time.Duration
	sloInterval, alertEval       time.Duration
	prom, verbose                bool
}

type result struct {
	fault          time.Time
	burnrate, prom time.Duration
}

// feed is the traffic: counters as functions of time, good until the fault,
// then every request an error.
type feed struct {
	mu    sync.Mutex
	start time.Time
	rate  float64
	fault time.Time
}

func (f *feed) at(t time.Time) (good, bad float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := t
	if !f.fault.IsZero() && f.fault.Before(t) {
		end = f.fault
		bad = f.rate * t.Sub(f.fault).Seconds()
	}
	return f.rate * end.Sub(f.start).Seconds(), bad
}

// write is the remote-write request for the counters at the given instants.
func (f *feed) write(ts []time.Time) []byte {
	series := func(code string) prompb.TimeSeries {
		s := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "bench_requests_total"},
			{Name: "code", Value: code},
			{Name: "instance", Value: "bench"},
			{Name: "job", Value: "bench"},
		}}
		for _, t := range ts {
			g, b := f.at(t)
			v := g
			if code == "500" {
				v = b
			}
			s.Samples = append(s.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
		}
		return s
	}
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("200"), series("500")}}
	raw, err := wr.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func remoteWrite(base string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("remote write to %s: %s: %s", base, resp.Status, b)
	}
	return nil
}

func run(cfg runConfig) result {
	dir, err := os.MkdirTemp("", "burnrate-e2e")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	specFile := filepath.Join(dir, "bench.yml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		log.Fatal(err)
	}

	// Receivers: Slack's Web API for Burnrate, a webhook for Alertmanager.
	var mu sync.Mutex
	var slackAt, hookAt time.Time
	sl := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			text := r.PostForm.Get("text")
			mu.Lock()
			if slackAt.IsZero() && strings.Contains(text, "FIRING] PAGE") && strings.Contains(text, sloID) {
				slackAt = time.Now()
			}
			mu.Unlock()
			if cfg.verbose {
				log.Printf("slack: %s", text)
			}
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"%d.000100"}`, r.PostForm.Get("channel"), time.Now().UnixNano())
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	})
	sl.Start()
	defer sl.Stop()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Status string `json:"status"`
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		now := time.Now()
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, a := range m.Alerts {
			if a.Status == "firing" && a.Labels["sloth_severity"] == "page" && a.Labels["sloth_id"] == sloID {
				mu.Lock()
				if hookAt.IsZero() {
					hookAt = now
				}
				mu.Unlock()
			}
		}
		if cfg.verbose {
			log.Printf("webhook: %s, %d alerts", m.Status, len(m.Alerts))
		}
	}))
	defer hook.Close()

	f := &feed{rate: cfg.rate}
	now := time.Now()
	// Off-grid: history starts 3.7s past the history's nominal start, so no
	// sample sits on a second boundary of any evaluation grid.
	f.start = now.Add(-cfg.history).Add(-3700 * time.Millisecond)
	var hist []time.Time
	for t := f.start; t.Before(now); t = t.Add(10 * time.Second) {
		hist = append(hist, t)
	}
	body := f.write(hist)

	// Burnrate, collector only: receive the history, stop.
	opts := burnrateOptions(dir, cfg.verbose)
	a1, stop1 := startBurnrate(opts)
	if err := remoteWrite(a1.URL(), body); err != nil {
		log.Fatal(err)
	}
	if n := query(a1.URL(), countQuery); int(n) != len(hist) {
		log.Fatalf("Burnrate stored %v of %d history samples", n, len(hist))
	}
	stop1()

	// Prometheus and Alertmanager, history before the rules.
	var promURL string
	if cfg.prom {
		var stopProm func()
		promURL, stopProm = startPrometheus(dir, hook.URL, specFile, body, len(hist), cfg.verbose)
		defer stopProm()
	}

	// Burnrate, the whole stack with defaults, on the same data dir.
	opts.Slos = []string{specFile}
	if cfg.alertEval > 0 {
		opts.Alerting.EvaluationInterval = cfg.alertEval
	}
	if cfg.sloInterval > 0 {
		opts.SLO.Interval = cfg.sloInterval
	}
	opts.Alerting.Slack.Token = "xoxb-bench"
	opts.Alerting.Slack.Channel = "C0BENCH"
	opts.Alerting.Slack.APIURL = sl.GetAPIURL()
	a2, stop2 := startBurnrate(opts)
	defer stop2()

	// The live feed, to both, in real time.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	targets := []string{a2.URL()}
	if promURL != "" {
		targets = append(targets, promURL)
	}
	go func() {
		tick := time.NewTicker(cfg.step)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-tick.C:
				body := f.write([]time.Time{t})
				var wg sync.WaitGroup
				for _, u := range targets {
					wg.Go(func() {
						if err := remoteWrite(u, body); err != nil && ctx.Err() == nil {
							log.Print(err)
						}
					})
				}
				wg.Wait()
			}
		}
	}()

	time.Sleep(cfg.warm)
	fmt.Printf("before the fault: Burnrate 1h burn %.3f (PromQL on its TSDB %.3f)", burn(a2.URL()), promqlBurn(a2.URL()))
	if promURL != "" {
		fmt.Printf(", Prometheus recorded 1h burn %.3f", query(promURL, `slo:sli_error:ratio_rate1h{sloth_id="`+sloID+`"} / 0.001`))
	}
	fmt.Println()
	f.mu.Lock()
	f.fault = time.Now()
	fault := f.fault
	f.mu.Unlock()

	res := result{fault: fault}
	deadline := fault.Add(cfg.timeout)
	for time.Now().Before(deadline) {
		mu.Lock()
		s, h := slackAt, hookAt
		mu.Unlock()
		if !s.IsZero() && res.burnrate == 0 {
			res.burnrate = s.Sub(fault)
			fmt.Printf("  Burnrate page: engine 1h burn %.2f, PromQL 1h burn on the same TSDB %.2f\n", burn(a2.URL()), promqlBurn(a2.URL()))
		}
		if !h.IsZero() {
			res.prom = h.Sub(fault)
		}
		if res.burnrate > 0 && (res.prom > 0 || promURL == "") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if promURL != "" && res.prom == 0 {
		fmt.Printf("  no webhook: Prometheus rules %s\n  alerts %s\n", get(promURL+"/api/v1/rules?type=alert"), get(promURL+"/api/v1/alerts"))
	}
	return res
}

func burnrateOptions(dir string, verbose bool) app.Options {
	opts := app.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.DataDir = dir
	opts.Collector.OTLPListen = ""
	// The traffic is the feed above, identical for both pipelines, not the
	// demo platform.
	opts.Demo.Enabled = false
	opts.Logger = slog.New(slog.DiscardHandler)
	if verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return opts
}

func startBurnrate(opts app.Options) (*app.App, func()) {
	a, err := app.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitReady(a.URL() + "/-/ready")
	return a, func() {
		cancel()
		if err := <-done; err != nil {
			log.Printf("burnrate: %v", err)
		}
	}
}

func waitReady(u string) {
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	log.Fatalf("%s not ready after 30s", u)
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs Alertmanager (webhook to hookURL) and Prometheus,
// writes the history into Prometheus, then loads the exported rules.
func startPrometheus(dir, hookURL, specFile string, history []byte, n int, verbose bool) (string, func()) {
	pdir := filepath.Join(dir, "prom")
	for _, d := range []string{pdir, filepath.Join(pdir, "am"), filepath.Join(pdir, "tsdb"), filepath.Join(pdir, "rules")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	// Alertmanager defaults: group_wait 30s, group_interval 5m. Grouped
	// as Burnrate groups by default (alert, SLO, severity), so a ticket
	// never holds a page back for group_interval.
	amYML := fmt.Sprintf("route:\n  receiver: hook\n  group_by: [alertname, sloth_id, sloth_severity]\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: %s\n        send_resolved: false\n", hookURL)
	amFile := filepath.Join(pdir, "alertmanager.yml")
	must(os.WriteFile(amFile, []byte(amYML), 0o644))
	amAddr := freePort()
	am := command(verbose, "/usr/bin/prometheus-alertmanager", "--config.file="+amFile, "--storage.path="+filepath.Join(pdir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")

	// The rules `burnrate slo rules --interval 1m` writes.
	slos, err := sloengine.LoadPaths([]string{specFile})
	must(err)
	files, err := sloengine.RuleFiles(slos, time.Minute)
	must(err)
	for name, b := range files {
		must(os.WriteFile(filepath.Join(pdir, "rules", name), b, 0o644))
	}
	promAddr := freePort()
	promFile := filepath.Join(pdir, "prometheus.yml")
	conf := func(rules bool) {
		y := fmt.Sprintf("global:\n  evaluation_interval: 1m\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", amAddr)
		if rules {
			y += fmt.Sprintf("rule_files: [%q]\n", filepath.Join(pdir, "rules", "*.yml"))
		}
		must(os.WriteFile(promFile, []byte(y), 0o644))
	}
	conf(false)
	prom := command(verbose, "/usr/bin/prometheus", "--config.file="+promFile, "--storage.tsdb.path="+filepath.Join(pdir, "tsdb"),
		"--web.listen-address="+promAddr, "--web.enable-remote-write-receiver", "--web.enable-lifecycle")
	stop := func() {
		for _, c := range []*exec.Cmd{prom, am} {
			_ = c.Process.Signal(os.Interrupt)
			_ = c.Wait()
		}
	}
	promURL := "http://" + promAddr
	waitReady("http://" + amAddr + "/-/ready")
	waitReady(promURL + "/-/ready")
	must(remoteWrite(promURL, history))
	if got := query(promURL, countQuery); int(got) != n {
		stop()
		log.Fatalf("Prometheus stored %v of %d history samples", got, n)
	}
	conf(true)
	resp, err := http.Post(promURL+"/-/reload", "", nil)
	must(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		stop()
		log.Fatalf("Prometheus reload: %s", resp.Status)
	}
	return promURL, stop
}

func command(verbose bool, name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	if verbose {
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
	}
	must(c.Start())
	return c
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func get(u string) string {
	resp, err := http.Get(u)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 3000 {
		b = b[:3000]
	}
	return string(b)
}

// query returns the first value of an instant query (0 when empty).
func query(base, q string) float64 {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Data.Result) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fmt.Sprint(r.Data.Result[0].Value[1]), 64)
	return v
}

// burn is the SLO engine's latest 1h burn rate, as written back.
func burn(base string) float64 {
	return query(base, `slo:burn_rate:ratio{sloth_id="`+sloID+`",sloth_window="1h"}`)
}

// promqlBurn is the same 1h burn rate computed by PromQL from the raw data.
func promqlBurn(base string) float64 {
	return query(base, `sum(rate(bench_requests_total{code="500"}[1h])) / sum(rate(bench_requests_total[1h])) / 0.001`)
}
