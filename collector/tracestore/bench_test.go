package tracestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchBatch builds a batch as one service's SDK batcher sends it: spans of
// spansPerTrace-span traces with the attributes otelhttp and a database
// client put on their spans.
func benchBatch(service string, spans, spansPerTrace int, nextTrace *uint64) ptrace.Traces {
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
	var tid pcommon.TraceID
	for i := range spans {
		if i%spansPerTrace == 0 {
			*nextTrace++
			binary.BigEndian.PutUint64(tid[8:], *nextTrace)
			binary.BigEndian.PutUint64(tid[:8], *nextTrace*0x9e3779b97f4a7c15)
		}
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i+1)|*nextTrace<<20)
		sp.SetSpanID(sid)
		if i%spansPerTrace != 0 {
			var parent pcommon.SpanID
			binary.BigEndian.PutUint64(parent[:], uint64(i-i%spansPerTrace+1)|*nextTrace<<20)
			sp.SetParentSpanID(parent)
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

// BenchmarkAppend measures spans/s appended in the batch sizes an SDK
// batcher sends (its default maximum is 512), from one goroutine and from
// one per core, as concurrent OTLP requests arrive.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 512, 1000} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/parallel=%v", size, parallel), func(b *testing.B) {
				s, err := Open(Options{Dir: b.TempDir(), Config: DefaultConfig()})
				require.NoError(b, err)
				defer func() { _ = s.Close() }()
				var first uint64
				batches := make([]ptrace.Traces, 64)
				for i := range batches {
					batches[i] = benchBatch(fmt.Sprintf("demo-%d", i%4), size, 5, &first)
				}
				var next atomic.Uint64
				next.Store(first)
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					var worker atomic.Int64
					b.RunParallel(func(pb *testing.PB) {
						// Each goroutine renumbers and appends its own batches.
						per := len(batches) / runtime.GOMAXPROCS(0)
						own := batches[(int(worker.Add(1)-1)*per)%len(batches):][:per]
						for i := 0; pb.Next(); i++ {
							td := own[i%len(own)]
							renumber(td, &next)
							if _, err := s.Append(context.Background(), td); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for i := 0; b.Loop(); i++ {
						renumber(batches[i%len(batches)], &next)
						if _, err := s.Append(context.Background(), batches[i%len(batches)]); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "spans/s")
			})
		}
	}
}

// renumber gives the batch's traces new IDs, so that every Append brings
// new traces as in production (the index would otherwise only grow chunk
// lists). It costs a few ns per span.
func renumber(td ptrace.Traces, next *atomic.Uint64) {
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	var id pcommon.TraceID
	for i := range spans.Len() {
		if i%5 == 0 {
			n := next.Add(1)
			binary.BigEndian.PutUint64(id[:8], n*0x9e3779b97f4a7c15)
			binary.BigEndian.PutUint64(id[8:], n)
		}
		spans.At(i).SetTraceID(id)
	}
}

// benchStore fills a store with n spans in 512-span batches of 5-span
// traces and returns the trace IDs.
func benchStore(b *testing.B, n int) (*Store, []pcommon.TraceID) {
	s, err := Open(Options{Dir: b.TempDir(), Config: DefaultConfig()})
	require.NoError(b, err)
	var next uint64
	for i := 0; i < n; i += 512 {
		_, err := s.Append(context.Background(), benchBatch(fmt.Sprintf("demo-%d", (i/512)%4), 512, 5, &next))
		require.NoError(b, err)
	}
	s.mu.RLock()
	ids := make([]pcommon.TraceID, 0, len(s.traces))
	for id := range s.traces {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	return s, ids
}

// BenchmarkTraceByID looks up random traces in a store of one million
// spans and reports the latency percentiles besides the mean.
func BenchmarkTraceByID(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a store with 1M spans")
	}
	s, ids := benchStore(b, 1_000_000)
	defer func() { _ = s.Close() }()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		td, err := s.Trace(context.Background(), ids[rand.IntN(len(ids))])
		lat = append(lat, time.Since(t))
		if err != nil || td.SpanCount() == 0 {
			b.Fatalf("lookup: %v", err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSearch runs a selective search over the index of one million
// spans (200k traces): it scans every summary.
func BenchmarkSearch(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a store with 1M spans")
	}
	s, _ := benchStore(b, 1_000_000)
	defer func() { _ = s.Close() }()
	b.ResetTimer()
	for b.Loop() {
		if got := s.Search(Query{Service: "demo-1", Status: StatusError, Limit: 20}); len(got) == 0 {
			b.Fatal("no result")
		}
	}
}

// BenchmarkIndexMemory reports the heap the index takes per trace, after a
// reopen rebuilt it from disk (no encoding buffers in the way).
func BenchmarkIndexMemory(b *testing.B) {
	const spans = 200_000
	for b.Loop() {
		b.StopTimer()
		s, _ := benchStore(b, spans)
		dir := s.dir
		require.NoError(b, s.Close())
		s = nil // the old index must not count
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		r, err := Open(Options{Dir: dir, Config: DefaultConfig()})
		b.StopTimer()
		require.NoError(b, err)
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := r.Stats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(st.Traces), "heap-B/trace")
		b.ReportMetric(float64(st.Bytes)/spans, "disk-B/span")
		runtime.KeepAlive(r)
		require.NoError(b, r.Close())
		b.StartTimer()
	}
}
