// Command collector measures Burnrate's collector as a separate process, the
// way users run it, and side by side with the Debian prometheus where there
// is something to compare:
//
//	go run ./bench/collector -mode remotewrite  # samples/s, Burnrate vs Prometheus, same payloads
//	go run ./bench/collector -mode otlp         # OTLP metric samples/s and spans/s over HTTP
//	go run ./bench/collector -mode query        # p50/p99 of a 30-day rate() range query
//
// Everything listens on 127.0.0.1; every load loop is bounded in count.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var (
	mode       = flag.String("mode", "remotewrite", "remotewrite, otlp or query")
	burnrate   = flag.String("burnrate", "", "burnrate binary (default: build ./cmd/burnrate)")
	prometheus = flag.String("prometheus", "/usr/bin/prometheus", "prometheus binary to compare with")
	rounds     = flag.Int("rounds", 3, "measurement rounds (medians are reported)")
	series     = flag.Int("series", 10000, "series per remote-write round")
	steps      = flag.Int("steps", 100, "samples per series per remote-write round")
	queries    = flag.Int("queries", 50, "30-day range queries to time")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	tmp, err := os.MkdirTemp("", "burnrate-bench-")
	check(err)
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := *burnrate
	if bin == "" {
		bin = filepath.Join(tmp, "burnrate")
		out, err := exec.Command("go", "build", "-o", bin, "./cmd/burnrate").CombinedOutput()
		if err != nil {
			log.Fatalf("build burnrate: %v\n%s", err, out)
		}
	}
	switch *mode {
	case "remotewrite":
		benchRemoteWrite(tmp, bin)
	case "otlp":
		benchOTLP(tmp, bin)
	case "query":
		benchQuery(tmp, bin)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// proc is a server under test.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func start(name, bin string, env []string, args ...string) *proc {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(cmd.Start())
	return &proc{name: name, cmd: cmd}
}

func waitReady(p *proc) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s never became ready", p.name)
}

func startBurnrate(bin, dir string, env ...string) *proc {
	addr := freeAddr()
	p := start("burnrate", bin, env, "serve", "--listen", addr, "--data-dir", dir, "--otlp-listen", "", "--log-level", "warn")
	p.url = "http://" + addr
	waitReady(p)
	return p
}

func startPrometheus(dir string, extra ...string) *proc {
	addr := freeAddr()
	cfg := filepath.Join(dir, "prometheus.yml")
	check(os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1h\n"), 0o600))
	args := append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=warn"}, extra...)
	p := start("prometheus", *prometheus, nil, args...)
	p.url = "http://" + addr
	waitReady(p)
	return p
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// benchRemoteWrite sends the same pre-encoded remote-write 1.0 requests
// (2,000 samples each, Prometheus's default max_samples_per_send) to
// Burnrate and to Prometheus, alternating, one sender per slice of series so
// that each series stays in order.
func benchRemoteWrite(tmp, bin string) {
	pdir := filepath.Join(tmp, "prom")
	check(os.MkdirAll(pdir, 0o750))
	prom := startPrometheus(pdir)
	defer prom.stop()
	br := startBurnrate(bin, filepath.Join(tmp, "br"))
	defer br.stop()

	const perReq = 2000
	senders := *series / perReq
	base := time.Now().Add(-3 * time.Hour)
	rates := map[string][]float64{}
	for r := range *rounds {
		// payloads[sender][step]
		payloads := make([][][]byte, senders)
		for s := range senders {
			for k := range *steps {
				ts := base.Add(time.Duration(r**steps+k) * 15 * time.Second).UnixMilli()
				req := &prompb.WriteRequest{}
				for i := s * perReq; i < (s+1)*perReq; i++ {
					req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
						Labels: []prompb.Label{{Name: "__name__", Value: "bench_requests_total"}, {Name: "instance", Value: "i-" + strconv.Itoa(i%50)},
							{Name: "job", Value: "bench"}, {Name: "route", Value: "/r/" + strconv.Itoa(i)}},
						Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts / 1000)}},
					})
				}
				raw, err := req.Marshal()
				check(err)
				payloads[s] = append(payloads[s], snappy.Encode(nil, raw))
			}
		}
		for _, p := range []*proc{prom, br} {
			total := senders * *steps * perReq
			began := time.Now()
			var wg sync.WaitGroup
			for s := range senders {
				wg.Go(func() {
					for _, body := range payloads[s] {
						req, _ := http.NewRequest(http.MethodPost, p.url+"/api/v1/write", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/x-protobuf")
						req.Header.Set("Content-Encoding", "snappy")
						req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
						resp, err := http.DefaultClient.Do(req)
						check(err)
						b, _ := io.ReadAll(resp.Body)
						_ = resp.Body.Close()
						if resp.StatusCode/100 != 2 {
							log.Fatalf("%s: %d %s", p.name, resp.StatusCode, b)
						}
					}
				})
			}
			wg.Wait()
			rate := float64(total) / time.Since(began).Seconds()
			rates[p.name] = append(rates[p.name], rate)
			log.Printf("round %d %-10s %10.0f samples/s", r+1, p.name, rate)
		}
	}
	pm, bm := median(rates["prometheus"]), median(rates["burnrate"])
	fmt.Printf("remote write, %d series x %d samples per round, %d senders, median of %d rounds:\n", *series, *steps, senders, *rounds)
	fmt.Printf("  prometheus %s  %10.0f samples/s\n", promVersion(), pm)
	fmt.Printf("  burnrate            %10.0f samples/s   ratio burnrate/prometheus %.2f\n", bm, bm/pm)
}

func promVersion() string {
	out, _ := exec.Command(*prometheus, "--version").Output()
	f := bytes.Fields(out)
	if len(f) >= 3 {
		return string(f[2])
	}
	return "?"
}

// benchOTLP posts OTLP/HTTP protobuf metrics and traces to the burnrate
// process from 4 senders (distinct service instances) and reports samples/s
// and spans/s.
func benchOTLP(tmp, bin string) {
	br := startBurnrate(bin, filepath.Join(tmp, "br"))
	defer br.stop()
	const senders, routes, perSender = 4, 100, 50
	base := time.Now().Add(-time.Hour)
	var mrates, srates []float64
	for r := range *rounds {
		bodies := make([][][]byte, senders)
		samples := 0
		for s := range senders {
			for k := range perSender {
				md, n := otlpBatch("api-"+strconv.Itoa(s), routes, base.Add(time.Duration(r*perSender+k)*time.Second))
				b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
				check(err)
				bodies[s] = append(bodies[s], b)
				samples += n
			}
		}
		mrates = append(mrates, float64(samples)/send(br.url+"/v1/metrics", bodies).Seconds())

		spans := 0
		for s := range senders {
			bodies[s] = bodies[s][:0]
			for k := range perSender {
				b := traceBatch(((r*senders+s)*perSender+k)*10, 10, 10)
				bodies[s] = append(bodies[s], b)
				spans += 100
			}
		}
		srates = append(srates, float64(spans)/send(br.url+"/v1/traces", bodies).Seconds())
		log.Printf("round %d  %10.0f samples/s  %8.0f spans/s", r+1, mrates[r], srates[r])
	}
	fmt.Printf("OTLP/HTTP protobuf into burnrate, %d senders, median of %d rounds:\n", senders, *rounds)
	fmt.Printf("  metrics %10.0f samples/s (requests of %d routes x 3 codes: counter + 10-bucket histogram)\n", median(mrates), routes)
	fmt.Printf("  traces  %10.0f spans/s (requests of 10 traces x 10 spans)\n", median(srates))
}

func send(u string, bodies [][][]byte) time.Duration {
	began := time.Now()
	var wg sync.WaitGroup
	for s := range bodies {
		wg.Go(func() {
			for _, b := range bodies[s] {
				resp, err := http.Post(u, "application/x-protobuf", bytes.NewReader(b))
				check(err)
				out, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 || bytes.Contains(out, []byte("rejected")) {
					log.Fatalf("%s: %d %s", u, resp.StatusCode, out)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(began)
}

func otlpBatch(instance string, routes int, ts time.Time) (pmetric.Metrics, int) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "demo-api")
	rm.Resource().Attributes().PutStr("service.instance.id", instance)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	cm := ms.AppendEmpty()
	cm.SetName("http.server.requests")
	sum := cm.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hm := ms.AppendEmpty()
	hm.SetName("http.server.request.duration")
	hm.SetUnit("s")
	h := hm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	start, now := pcommon.NewTimestampFromTime(ts.Add(-time.Hour)), pcommon.NewTimestampFromTime(ts)
	n := 0
	for r := range routes {
		for _, code := range []int64{200, 404, 500} {
			dp := sum.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("http.route", "/route/"+strconv.Itoa(r))
			dp.Attributes().PutInt("http.response.status_code", code)
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.SetIntValue(ts.Unix())
			hp := h.DataPoints().AppendEmpty()
			hp.Attributes().PutStr("http.route", "/route/"+strconv.Itoa(r))
			hp.Attributes().PutInt("http.response.status_code", code)
			hp.SetStartTimestamp(start)
			hp.SetTimestamp(now)
			hp.ExplicitBounds().FromRaw(bounds)
			counts := make([]uint64, len(bounds)+1)
			var total uint64
			for i := range counts {
				counts[i] = uint64(i + 1)
				total += counts[i]
			}
			hp.BucketCounts().FromRaw(counts)
			hp.SetCount(total)
			hp.SetSum(float64(total) * 0.1)
			n += 1 + len(bounds) + 1 + 2
		}
	}
	return md, n
}

func traceBatch(first, traces, spansPer int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "demo-api")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for t := range traces {
		var tid pcommon.TraceID
		copy(tid[:], fmt.Sprintf("%016x", first+t+1))
		tid[15] = 1
		for s := range spansPer {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(pcommon.SpanID{byte(s + 1), 1, 2, 3, 4, 5, 6, 7})
			if s > 0 {
				sp.SetParentSpanID(pcommon.SpanID{1, 1, 2, 3, 4, 5, 6, 7})
			}
			sp.SetName("GET /api/items")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(s+1) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
			sp.Attributes().PutStr("http.route", "/api/items")
			sp.Attributes().PutInt("http.response.status_code", 200)
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	check(err)
	return b
}

// benchQuery writes 30 days of request counters (4 routes x 3 codes x 2
// instances, one sample a minute) as TSDB blocks, opens them with burnrate
// (and with prometheus, from a copy, for comparison) and times the range
// query a 30-day SLO panel runs.
func benchQuery(tmp, bin string) {
	brData := filepath.Join(tmp, "br")
	blocks := filepath.Join(brData, "tsdb")
	check(os.MkdirAll(blocks, 0o750))
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-30 * 24 * time.Hour)
	type sr struct {
		ls labels.Labels
		v  float64
	}
	var ss []*sr
	for _, inst := range []string{"a", "b"} {
		for r := range 4 {
			for _, code := range []string{"200", "404", "500"} {
				ss = append(ss, &sr{ls: labels.FromStrings("__name__", "http_requests_total", "job", "demo-api", "instance", inst, "route", "/r/"+strconv.Itoa(r), "code", code)})
			}
		}
	}
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), blocks, (24 * time.Hour).Milliseconds())
		check(err)
		app := w.Appender(context.Background())
		for t := day; t.Before(day.Add(24 * time.Hour)); t = t.Add(time.Minute) {
			for i, s := range ss {
				s.v += float64(1 + i%7)
				_, err := app.Append(0, s.ls, t.UnixMilli()+1234, s.v)
				check(err)
			}
		}
		check(app.Commit())
		_, err = w.Flush(context.Background())
		check(err)
		check(w.Close())
	}
	samples := len(ss) * 30 * 24 * 60

	pdir := filepath.Join(tmp, "prom")
	check(os.MkdirAll(filepath.Join(pdir, "data"), 0o750))
	check(exec.Command("cp", "-r", blocks+"/.", filepath.Join(pdir, "data")).Run())

	br := startBurnrate(bin, brData, "BURNRATE_COLLECTOR_TSDB_RETENTION=1000h")
	defer br.stop()
	prom := startPrometheus(pdir, "--storage.tsdb.retention.time=1000h")
	defer prom.stop()

	q := url.Values{
		"query": {`sum by (code) (rate(http_requests_total{job="demo-api"}[5m])) / ignoring(code) group_left sum(rate(http_requests_total{job="demo-api"}[5m]))`},
		"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"3600"},
	}
	lat := map[string][]float64{}
	for i := range *queries + 3 {
		for _, p := range []*proc{prom, br} {
			began := time.Now()
			resp, err := http.PostForm(p.url+"/api/v1/query_range", q)
			check(err)
			var r struct {
				Status string `json:"status"`
				Data   struct {
					Result []json.RawMessage `json:"result"`
				} `json:"data"`
			}
			check(json.NewDecoder(resp.Body).Decode(&r))
			_ = resp.Body.Close()
			d := time.Since(began).Seconds() * 1000
			if r.Status != "success" || len(r.Data.Result) != 3 {
				log.Fatalf("%s: unexpected answer %+v", p.name, r)
			}
			if i >= 3 { // warm-up
				lat[p.name] = append(lat[p.name], d)
			}
		}
	}
	fmt.Printf("30-day range query (step 1h, %d series, %d samples in 30 daily blocks), %d runs after 3 warm-ups:\n", len(ss), samples, *queries)
	for _, name := range []string{"prometheus", "burnrate"} {
		fmt.Printf("  %-10s p50 %7.1f ms  p99 %7.1f ms\n", name, median(lat[name]), quantile(lat[name], 0.99))
	}
	fmt.Printf("  query: %s\n", q.Get("query"))
}
