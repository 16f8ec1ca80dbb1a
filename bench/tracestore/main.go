// Command tracestore measures the trace store on this machine: spans/s
// appended in SDK-sized batches (with the receiver's OTLP decode of the same
// batches measured side by side), bytes on disk per span, restart time and
// index memory, and by-ID lookup and search latency over a full store.
//
//	go run ./bench/tracestore -spans 1000000
//
// Results go in bench/README.md ("Trace store").
package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/collector/tracestore"
)

func main() {
	var (
		spans    = flag.Int("spans", 1_000_000, "spans to append (bounded: at most 20M)")
		batch    = flag.Int("batch", 512, "spans per Append (the SDK batcher's default maximum is 512)")
		perTrace = flag.Int("per-trace", 5, "spans per trace")
		workers  = flag.Int("workers", runtime.GOMAXPROCS(0), "concurrent appenders (concurrent OTLP requests)")
		lookups  = flag.Int("lookups", 20_000, "by-ID lookups to time")
		searches = flag.Int("searches", 200, "searches to time")
		dir      = flag.String("dir", "", "store directory (default: a temporary one, removed afterwards)")
	)
	flag.Parse()
	if *spans > 20_000_000 || *spans < *batch || *batch < *perTrace || *perTrace < 1 || *workers < 1 {
		log.Fatal("need batch <= spans <= 20M, per-trace <= batch, workers >= 1")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tracestore-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer func() { _ = os.RemoveAll(d) }()
		*dir = d
	}
	cfg := tracestore.DefaultConfig()
	cfg.MaxBytes = 64 << 30 // measure ingest, not deletion
	s, err := tracestore.Open(tracestore.Options{Dir: *dir, Config: cfg})
	if err != nil {
		log.Fatal(err)
	}

	fmt.Printf("trace store benchmark: %d spans, batches of %d, %d spans per trace, %d workers, GOMAXPROCS %d\n\n",
		*spans, *batch, *perTrace, *workers, runtime.GOMAXPROCS(0))

	// Templates: each worker owns its batches and rewrites their trace IDs
	// before each Append, so every trace is new, as in production.
	const templates = 32
	var next atomic.Uint64
	tmpl := make([][]ptrace.Traces, *workers)
	for w := range tmpl {
		for i := range templates {
			tmpl[w] = append(tmpl[w], genBatch(fmt.Sprintf("demo-%d", (w*templates+i)%4), *batch, *perTrace))
		}
	}

	// Side by side: what the OTLP receiver spends decoding the same batches.
	var m ptrace.ProtoMarshaler
	raw, _ := m.MarshalTraces(tmpl[0][0])
	decodeRate := timeDecode(raw, *batch, *spans)

	nBatches := *spans / *batch
	var (
		wg      sync.WaitGroup
		taken   atomic.Int64
		appendT = make([]time.Duration, *workers)
		mu      sync.Mutex
		sampled []pcommon.TraceID // a random-enough sample over the whole run
	)
	start := time.Now()
	for w := range *workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if taken.Add(1) > int64(nBatches) {
					return
				}
				td := tmpl[w][i%templates]
				id := renumber(td, *perTrace, &next)
				if i%16 == 0 {
					mu.Lock()
					sampled = append(sampled, id)
					mu.Unlock()
				}
				t := time.Now()
				if _, err := s.Append(context.Background(), td); err != nil {
					log.Fatal(err)
				}
				appendT[w] += time.Since(t)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	appended := nBatches * *batch
	appendRate := float64(appended) / wall.Seconds()
	st := s.Stats()

	fmt.Println("| what | result |")
	fmt.Println("|---|---|")
	fmt.Printf("| append, %d workers, wall clock | %.0f spans/s (%d spans in %s) |\n", *workers, appendRate, appended, wall.Round(time.Millisecond))
	fmt.Printf("| OTLP protobuf decode of the same batches, 1 goroutine | %.0f spans/s |\n", decodeRate)
	fmt.Printf("| append per batch of %d, mean | %s |\n", *batch, (sum(appendT) / time.Duration(nBatches)).Round(time.Microsecond))
	fmt.Printf("| disk | %.0f bytes/span (%d MiB, %d segments, %d traces) |\n",
		float64(st.Bytes)/float64(appended), st.Bytes>>20, st.Segments, st.Traces)
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	// Restart: rebuild the index from the files, and weigh it.
	var before, after runtime.MemStats
	tmpl, s = nil, nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	t := time.Now()
	s, err = tracestore.Open(tracestore.Options{Dir: *dir, Config: cfg})
	if err != nil {
		log.Fatal(err)
	}
	openT := time.Since(t)
	runtime.GC()
	runtime.ReadMemStats(&after)
	st = s.Stats()
	fmt.Printf("| Open (index rebuild) | %s |\n", openT.Round(time.Millisecond))
	fmt.Printf("| index heap | %.0f bytes/trace, %.0f bytes/span (%d MiB) |\n",
		float64(after.HeapAlloc-before.HeapAlloc)/float64(st.Traces),
		float64(after.HeapAlloc-before.HeapAlloc)/float64(appended), (after.HeapAlloc-before.HeapAlloc)>>20)

	ids := sampled
	ctx := context.Background()
	lat := make([]time.Duration, 0, *lookups)
	for range *lookups {
		id := ids[rand.IntN(len(ids))]
		t := time.Now()
		td, err := s.Trace(ctx, id)
		lat = append(lat, time.Since(t))
		if err != nil || td.SpanCount() == 0 {
			log.Fatalf("lookup %s: %v", hex.EncodeToString(id[:]), err)
		}
	}
	fmt.Printf("| Trace(id), %d random lookups | %s |\n", *lookups, percentiles(lat))

	srv := httptest.NewServer(s.Handler())
	lat = lat[:0]
	for range *lookups {
		id := ids[rand.IntN(len(ids))]
		t := time.Now()
		resp, err := http.Get(srv.URL + "/api/v1/traces/" + hex.EncodeToString(id[:]))
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		lat = append(lat, time.Since(t))
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("GET trace: %s", resp.Status)
		}
	}
	srv.Close()
	fmt.Printf("| GET /api/v1/traces/{id} over loopback HTTP | %s |\n", percentiles(lat))

	lat = lat[:0]
	for i := range *searches {
		t := time.Now()
		res := s.Search(tracestore.Query{Service: fmt.Sprintf("demo-%d", i%4), Status: tracestore.StatusError, Limit: 20})
		lat = append(lat, time.Since(t))
		if len(res) == 0 {
			log.Fatal("search found nothing")
		}
	}
	fmt.Printf("| Search(service, status=error, limit 20) over %d traces | %s |\n", st.Traces, percentiles(lat))
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

func percentiles(lat []time.Duration) string {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))].Round(time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", p(0.5), p(0.99), lat[len(lat)-1].Round(time.Microsecond))
}

// timeDecode decodes the encoded batch until n spans were decoded.
func timeDecode(raw []byte, batch, n int) float64 {
	start := time.Now()
	for done := 0; done < n; done += batch {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(raw); err != nil {
			log.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// renumber gives every trace of the batch a new ID, and returns one of them.
func renumber(td ptrace.Traces, perTrace int, next *atomic.Uint64) pcommon.TraceID {
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	var id pcommon.TraceID
	for i := range spans.Len() {
		if i%perTrace == 0 {
			n := next.Add(1)
			binary.BigEndian.PutUint64(id[:8], n*0x9e3779b97f4a7c15)
			binary.BigEndian.PutUint64(id[8:], n)
		}
		spans.At(i).SetTraceID(id)
	}
	return spans.At(0).TraceID()
}

// genBatch builds one service's batch with the attributes otelhttp puts on
// a server span.
func genBatch(service string, n, perTrace int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", service)
	ra.PutStr("service.version", "1.4.2")
	ra.PutStr("service.instance.id", "627cc493-f310-47de-96bd-71410b7dec09")
	ra.PutStr("host.name", "demo-host-1")
	ra.PutStr("telemetry.sdk.language", "go")
	ra.PutStr("telemetry.sdk.name", "opentelemetry")
	ra.PutStr("telemetry.sdk.version", "1.47.0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.72.0")
	start := pcommon.NewTimestampFromTime(time.Now())
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1)
		sp.SetSpanID(sid)
		if i%perTrace != 0 {
			binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1)
			sp.SetParentSpanID(sid)
		}
		sp.SetName("GET /api/items/{id}")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + pcommon.Timestamp(rand.IntN(300_000_000)))
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/api/items/{id}")
		a.PutStr("url.path", fmt.Sprintf("/api/items/%d", rand.IntN(100000)))
		a.PutStr("url.scheme", "http")
		a.PutStr("server.address", "demo-api")
		a.PutInt("server.port", 8080)
		a.PutStr("network.protocol.version", "1.1")
		a.PutStr("user_agent.original", "burnrate-load/0.1")
		a.PutInt("http.response.status_code", 200)
		if rand.IntN(100) == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}
