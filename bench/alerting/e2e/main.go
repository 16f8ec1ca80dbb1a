// Command e2e measures detection latency through the whole stack: the demo
// platform under steady load sends OTLP to the collector, the SLO engine
// computes burn rates, alerting pages a Slack workspace (slacktest, on
// loopback). A 100% outage is injected at the edge (a 99.9% SLO) and the
// time from the fault to the Slack message is measured.
//
// The 1h window must be full of good traffic for the workbook's steady
// figure (51.8s); instead of waiting an hour, 65 minutes of good history
// for the edge's request counter are written through remote write (a
// separate series of the same job, so the SLO queries sum it in). The
// program prints the SLO engine's 1h burn next to PromQL's over the same
// TSDB at the page: when they differ, the engine did not see the history
// and the figure is not the steady one.
//
//	go run ./bench/alerting/e2e -slo-interval 5s
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
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/slack-go/slack/slacktest"

	"github.com/burnrate/burnrate/internal/app"
)

func main() {
	var (
		rate        = flag.Float64("rate", 50, "demo load, requests per second")
		sloInterval = flag.Duration("slo-interval", 30*time.Second, "slo.interval")
		warm        = flag.Duration("warm", 60*time.Second, "live good traffic before the fault")
		verbose     = flag.Bool("v", false, "log the app")
	)
	flag.Parse()

	var mu sync.Mutex
	var firstPage time.Time
	var pageText string
	sl := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			if firstPage.IsZero() && strings.Contains(r.PostForm.Get("text"), "PAGE: SLO demo-edge-availability") {
				firstPage, pageText = time.Now(), r.PostForm.Get("text")
			}
			mu.Unlock()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"%d.000100"}`, r.PostForm.Get("channel"), time.Now().UnixNano())
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	})
	sl.Start()
	defer sl.Stop()

	dir, err := os.MkdirTemp("", "burnrate-e2e")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts := app.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.DataDir = dir
	opts.Collector.OTLPListen = ""
	opts.Collector.TSDB.OutOfOrderWindow = 2 * time.Hour
	opts.Demo.EdgeListen = "127.0.0.1:0"
	opts.Demo.Load.Shape = "constant"
	opts.Demo.Load.Rate = *rate
	opts.SLO.Interval = *sloInterval
	opts.Alerting.Slack.Token = "xoxb-bench"
	opts.Alerting.Slack.Channel = "C0BENCH"
	opts.Alerting.Slack.APIURL = sl.GetAPIURL()
	opts.Logger = slog.New(slog.DiscardHandler)
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := app.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := a.URL()

	// Measure the edge's real request rate (what the SLO counts), then write
	// 65 minutes of history at that rate, 15s apart, as a separate series.
	time.Sleep(*warm / 2)
	live := query(base, `sum(rate(http_server_request_duration_seconds_count{job="demo-edge"}[20s]))`)
	if live <= 0 {
		log.Fatal("no live traffic at the edge")
	}
	// 65 minutes of good history at the load's rate, 15s apart.
	now := time.Now()
	var samples []prompb.Sample
	for t := now.Add(-65 * time.Minute); t.Before(now); t = t.Add(15 * time.Second) {
		samples = append(samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: live * t.Sub(now.Add(-65*time.Minute)).Seconds()})
	}
	// The count and the latency SLO's bucket (every request fast), so
	// neither edge SLO sees the history as failing.
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{
			{Name: "__name__", Value: "http_server_request_duration_seconds_count"},
			{Name: "http_response_status_code", Value: "200"},
			{Name: "instance", Value: "history"},
			{Name: "job", Value: "demo-edge"},
		},
		Samples: samples,
	}, {
		Labels: []prompb.Label{
			{Name: "__name__", Value: "http_server_request_duration_seconds_bucket"},
			{Name: "http_response_status_code", Value: "200"},
			{Name: "instance", Value: "history"},
			{Name: "job", Value: "demo-edge"},
			{Name: "le", Value: "0.25"},
		},
		Samples: samples,
	}}}
	raw, err := wr.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		log.Fatalf("remote write of the history: %s", resp.Status)
	}
	kept := query(base, `count_over_time(http_server_request_duration_seconds_count{instance="history"}[2h])`)
	fmt.Printf("edge traffic %.1f req/s (load %.0f/s); history: %d samples over 65m at that rate (%.0f stored); slo.interval %s\n", live, *rate, len(samples), kept, *sloInterval)
	fmt.Printf("1h totals: %.0f history, %.0f all\n", query(base, `sum(increase(http_server_request_duration_seconds_count{job="demo-edge",instance="history"}[1h]))`), query(base, `sum(increase(http_server_request_duration_seconds_count{job="demo-edge"}[1h]))`))
	time.Sleep(*warm / 2)
	fmt.Printf("before the fault: %s\n", burn(base))

	fault := time.Now()
	put, _ := http.NewRequest(http.MethodPut, base+"/api/v1/demo/faults/edge.error_fraction", strings.NewReader(`{"value":"1"}`))
	put.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode/100 != 2 {
		log.Fatalf("inject fault: %v %v", err, resp)
	}
	for time.Since(fault) < 5*time.Minute {
		mu.Lock()
		at, text := firstPage, pageText
		mu.Unlock()
		if !at.IsZero() {
			fmt.Printf("fault -> Slack page: %s (%q)\n", at.Sub(fault).Round(100*time.Millisecond), text)
			fmt.Printf("at the page: %s; PromQL 1h burn %.1f\n", burn(base),
				query(base, `sum(rate(http_server_request_duration_seconds_count{job="demo-edge",http_response_status_code=~"5.."}[1h])) / sum(rate(http_server_request_duration_seconds_count{job="demo-edge"}[1h])) / 0.001`))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatalf("no page within 5 minutes of the fault; %s", burn(base))
}

// query returns the first value of an instant query.
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

// burn reads the edge availability SLO's 1h and 5m burn rates.
func burn(base string) string {
	var out []string
	for _, w := range []string{"5m", "1h"} {
		q := url.QueryEscape(fmt.Sprintf(`slo:sli_error:ratio_rate%s{sloth_id="demo-edge-availability"} / on(sloth_id) slo:error_budget:ratio{sloth_id="demo-edge-availability"}`, w))
		resp, err := http.Get(base + "/api/v1/query?query=" + q)
		if err != nil {
			return err.Error()
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		s := b.String()
		if i := strings.Index(s, `"value":[`); i >= 0 {
			s = s[i+9:]
			if j := strings.Index(s, "]"); j >= 0 {
				s = s[:j]
			}
		}
		out = append(out, "burn "+w+" "+s)
	}
	return strings.Join(out, ", ")
}
