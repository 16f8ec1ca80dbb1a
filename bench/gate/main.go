// Command gate measures the deploy gate's latency as pipelines see it: a
// real `burnrate serve` process with 1,000 SLOs loaded (100 services of 10
// SLOs, on remote-written traffic), asked by an open-model load generator
// (vegeta) from this separate process over loopback.
//
//	go run ./bench/gate -rate 2000 -duration 20s -runs 3
//
// Results go in bench/README.md ("Deploy gate").
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	var (
		rate     = flag.Int("rate", 2000, "gate requests a second (open model)")
		duration = flag.Duration("duration", 20*time.Second, "length of one run")
		runs     = flag.Int("runs", 3, "runs; medians are reported")
		services = flag.Int("services", 100, "services")
		perSvc   = flag.Int("slos", 10, "SLOs per service")
		sloIvl   = flag.Duration("slo-interval", 0, "override slo.interval (0: the default), to see what the engine's cycle costs the gate")
	)
	flag.Parse()
	dir, err := os.MkdirTemp("", "burnrate-gate-bench")
	check(err)
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "burnrate")
	log.Printf("building burnrate")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/burnrate").CombinedOutput()
	if err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}

	// SLO files: service svc-N, SLOs availability-M over its own counter.
	var files []string
	for s := range *services {
		var b strings.Builder
		fmt.Fprintf(&b, "version: prometheus/v1\nservice: svc-%d\nslos:\n", s)
		for m := range *perSvc {
			fmt.Fprintf(&b, `  - name: availability-%d
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(bench_requests_total{service="svc-%d",route="r%d",code="500"}[{{.window}}]))
        total_query: sum(rate(bench_requests_total{service="svc-%d",route="r%d"}[{{.window}}]))
`, m, s, m, s, m)
		}
		f := filepath.Join(dir, fmt.Sprintf("svc-%d.yml", s))
		check(os.WriteFile(f, []byte(b.String()), 0o600))
		files = append(files, f)
	}
	cfg := filepath.Join(dir, "burnrate.yml")
	conf := fmt.Sprintf("listen: 127.0.0.1:0\ncollector: {otlp_listen: \"\"}\nslos: [%s]\n", strings.Join(files, ", "))
	if *sloIvl > 0 {
		conf += fmt.Sprintf("slo: {interval: %s}\n", *sloIvl)
	}
	check(os.WriteFile(cfg, []byte(conf), 0o600))

	cmd := exec.Command(bin, "serve", "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	check(err)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := ""
	re := regexp.MustCompile(`health\s+(http://\S+)/-/ready`)
	sc := bufio.NewScanner(stdout)
	for base == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if base == "" {
		log.Fatal("burnrate printed no URL")
	}
	log.Printf("burnrate serve at %s with %d SLOs; writing 15 minutes of traffic", base, *services**perSvc)
	pushTraffic(base, *services, *perSvc)
	waitEvaluated(base, *services**perSvc)

	var p50s, p99s, maxs []time.Duration
	for r := range *runs {
		res := attack(base, *rate, *duration, *services)
		log.Printf("run %d: %d requests, %.0f/s achieved, p50 %s, p99 %s, max %s, errors %d, non-200 %d",
			r+1, res.n, res.rate, res.p50, res.p99, res.max, res.errors, res.non200)
		p50s, p99s, maxs = append(p50s, res.p50), append(p99s, res.p99), append(maxs, res.max)
	}
	fmt.Printf("gate at %d/s, %d SLOs, %d runs of %s: p50 %s, p99 %s (runs: %v), max %s\n",
		*rate, *services**perSvc, *runs, *duration, median(p50s), median(p99s), p99s, median(maxs))
}

type result struct {
	n, errors, non200 int
	rate              float64
	p50, p99, max     time.Duration
}

func attack(base string, rate int, d time.Duration, services int) result {
	i := 0
	targeter := func(t *vegeta.Target) error {
		t.Method = http.MethodGet
		t.URL = fmt.Sprintf("%s/api/v1/gate?service=svc-%d&version=v1", base, i%services)
		i++
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Workers(32), vegeta.MaxWorkers(512), vegeta.Timeout(5*time.Second))
	var lat []time.Duration
	res := result{}
	start := time.Now()
	for r := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, d, "gate") {
		res.n++
		if r.Error != "" {
			res.errors++
			continue
		}
		if r.Code != http.StatusOK {
			res.non200++
		}
		lat = append(lat, r.Latency)
	}
	res.rate = float64(res.n) / time.Since(start).Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res
}

// pushTraffic writes 15 minutes of counters (0.05% errors) for every SLO.
func pushTraffic(base string, services, perSvc int) {
	now := time.Now()
	for s := range services {
		var req prompb.WriteRequest
		for m := range perSvc {
			for _, code := range []string{"200", "500"} {
				ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "bench_requests_total"},
					{Name: "code", Value: code}, {Name: "route", Value: fmt.Sprintf("r%d", m)}, {Name: "service", Value: fmt.Sprintf("svc-%d", s)}}}
				share := 0.9995
				if code == "500" {
					share = 0.0005
				}
				for i := 60; i >= 0; i-- {
					at := now.Add(-time.Duration(i)*15*time.Second - 1234*time.Millisecond)
					ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(60-i) * 15 * 10 * share})
				}
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		raw, err := req.Marshal()
		check(err)
		hreq, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		check(err)
		hreq.Header.Set("Content-Type", "application/x-protobuf")
		hreq.Header.Set("Content-Encoding", "snappy")
		hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(hreq)
		check(err)
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			log.Fatalf("remote write: %s", resp.Status)
		}
	}
}

// waitEvaluated waits until every SLO has been evaluated with the traffic.
func waitEvaluated(base string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := http.Get(base + "/api/v1/slos")
		if err == nil {
			var body struct {
				Data []struct {
					EvaluatedAt time.Time `json:"evaluated_at"`
					Error       string    `json:"error"`
					Windows     []any     `json:"windows"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			_ = resp.Body.Close()
			done := 0
			for _, s := range body.Data {
				if !s.EvaluatedAt.IsZero() && s.Error == "" && len(s.Windows) > 0 {
					done++
				}
			}
			if done == n {
				log.Printf("all %d SLOs evaluated", n)
				return
			}
		}
		time.Sleep(time.Second)
	}
	log.Fatal("SLOs were not all evaluated within 3 minutes")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
