package demoapp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/internal/testutil"
	"go.opentelemetry.io/otel/trace"
)

// running is a platform started for a test, every tier in one process on
// loopback ports, telemetry captured in memory.
type running struct {
	*demoapp.Platform
	spans   *tracetest.InMemoryExporter
	mu      sync.Mutex
	readers map[string][]*sdkmetric.ManualReader
	edge    string
	cfg     demoapp.Config
}

func start(t *testing.T, mut func(*demoapp.Config)) *running {
	t.Helper()
	cfg := demoapp.DefaultConfig()
	cfg.EdgeListen = "127.0.0.1:0"
	cfg.Load.Enabled = false
	cfg.Products = 200
	// Every trace, as these tests follow single requests across tiers
	// (sampling has its own tests).
	cfg.TraceSampleRatio = 1
	if mut != nil {
		mut(&cfg)
	}
	require.NoError(t, cfg.Validate())
	r := &running{spans: tracetest.NewInMemoryExporter(), readers: map[string][]*sdkmetric.ManualReader{}, cfg: cfg}
	p, err := demoapp.New(context.Background(), demoapp.Options{
		Config:       cfg,
		DataDir:      t.TempDir(),
		Logger:       testutil.Logger(t),
		SpanExporter: r.spans,
		MetricReader: func(service string) sdkmetric.Reader {
			m := sdkmetric.NewManualReader()
			r.mu.Lock()
			r.readers[service] = append(r.readers[service], m)
			r.mu.Unlock()
			return m
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, p.Close())
	})
	r.Platform, r.edge = p, p.EdgeURL()
	return r
}

func (r *running) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.edge+path, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// metric returns the sum of a counter (or histogram count) named name over
// every reader of service, for points whose attributes include want.
func (r *running) metric(t *testing.T, service, name string, want map[string]string) float64 {
	t.Helper()
	r.mu.Lock()
	readers := r.readers[service]
	r.mu.Unlock()
	var total float64
	for _, rd := range readers {
		var rm metricdata.ResourceMetrics
		require.NoError(t, rd.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != name {
					continue
				}
				match := func(get func(string) (string, bool)) bool {
					for k, v := range want {
						if got, ok := get(k); !ok || got != v {
							return false
						}
					}
					return true
				}
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						if match(attrGetter(dp.Attributes)) {
							total += float64(dp.Value)
						}
					}
				case metricdata.Gauge[int64]:
					for _, dp := range d.DataPoints {
						if match(attrGetter(dp.Attributes)) {
							total += float64(dp.Value)
						}
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						if match(attrGetter(dp.Attributes)) {
							total += float64(dp.Count)
						}
					}
				}
			}
		}
	}
	return total
}

// names lists the metrics with data of service.
func (r *running) names(t *testing.T, service string) []string {
	t.Helper()
	r.mu.Lock()
	readers := r.readers[service]
	r.mu.Unlock()
	var out []string
	for _, rd := range readers {
		var rm metricdata.ResourceMetrics
		require.NoError(t, rd.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				out = append(out, m.Name)
			}
		}
	}
	return out
}

// tierCalls runs a test with the tiers calling each other in process (the
// default) and over loopback: the two must not differ in what a client of
// the edge or the collector sees.
func tierCalls(t *testing.T, test func(t *testing.T, mut func(*demoapp.Config))) {
	for _, mode := range []string{demoapp.TierCallsInProcess, demoapp.TierCallsLoopback} {
		t.Run(mode, func(t *testing.T) {
			test(t, func(c *demoapp.Config) { c.TierCalls = mode })
		})
	}
}

func TestAnUnknownWayOfCallingTiersIsRefusedWithItsKey(t *testing.T) {
	cfg := demoapp.DefaultConfig()
	require.Equal(t, demoapp.TierCallsInProcess, cfg.TierCalls)
	cfg.TierCalls = "h2c"
	require.ErrorContains(t, cfg.Validate(), "demo.tier_calls: must be in_process or loopback")
}

func TestOneTraceSpansEdgeAPICacheAndStore(t *testing.T) { tierCalls(t, oneTraceSpansEveryTier) }

func oneTraceSpansEveryTier(t *testing.T, mut func(*demoapp.Config)) {
	r := start(t, mut)
	resp, body := r.do(t, http.MethodGet, "/api/products/7", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `"id":7`)
	require.NotEmpty(t, resp.Header.Get("X-Request-ID"), "the edge assigns a request ID")
	require.NoError(t, r.Flush(context.Background()))

	byTrace := map[string]map[string]bool{}
	for _, s := range r.spans.GetSpans() {
		id := s.SpanContext.TraceID().String()
		if byTrace[id] == nil {
			byTrace[id] = map[string]bool{}
		}
		for _, kv := range s.Resource.Attributes() {
			if kv.Key == "service.name" {
				byTrace[id][kv.Value.AsString()] = true
			}
		}
	}
	var full int
	for _, services := range byTrace {
		if services["demo-edge"] && services["demo-api"] && services["demo-cache"] && services["demo-store"] {
			full++
		}
	}
	require.Equal(t, 1, full, "exactly one trace crosses every tier; traces seen: %v", byTrace)
	// And the store's span is a descendant of the edge's root, not a new root.
	var roots int
	for _, s := range r.spans.GetSpans() {
		if !s.Parent.IsValid() {
			roots++
		}
	}
	require.Equal(t, 1, roots, "one request makes one root span")
}

func TestTheEdgeRecordsSemanticConventionHTTPMetrics(t *testing.T) {
	r := start(t, nil)
	for range 3 {
		resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.InDelta(t, 3, r.metric(t, "demo-edge", "http.server.request.duration",
		map[string]string{"http.response.status_code": "200", "http.request.method": "GET"}), 0)
	names := r.names(t, "demo-edge")
	require.Contains(t, names, "http.server.request.duration")
	require.Contains(t, names, "http.client.request.duration")
	require.NotContains(t, names, "http.server.response.body.size", "body sizes are dropped by a view")
	require.InDelta(t, 1, r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "miss"}), 0)
	require.GreaterOrEqual(t, r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "hit"}), 2.0)
	require.InDelta(t, 1, r.metric(t, "demo-store", "demo.store.operations", map[string]string{"op": "get", "result": "ok"}), 0)
}

// TestEachFaultFlagHasItsEffect sets each flag through the fault API's Set
// and checks what a client of the edge, or the metrics, see.
func TestEachFaultFlagHasItsEffect(t *testing.T) {
	cases := []struct {
		name  string
		flag  string
		value string
		check func(t *testing.T, r *running)
	}{
		{"an edge error fraction of 1 fails every request at the edge", "edge.error_fraction", "1", func(t *testing.T, r *running) {
			resp, body := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			require.Contains(t, body, "edge.error_fraction")
		}},
		{"an API error fraction of 1 fails every request in the API", "api.error_fraction", "1", func(t *testing.T, r *running) {
			resp, body := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			require.Contains(t, body, "api.error_fraction")
		}},
		{"a cache error fraction of 1 reaches the client as a bad gateway", "cache.error_fraction", "1", func(t *testing.T, r *running) {
			resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		}},
		{"a store error fraction of 1 fails reads of keys not cached", "store.error_fraction", "1", func(t *testing.T, r *running) {
			resp, _ := r.do(t, http.MethodGet, "/api/products/3", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		}},
		{"added edge latency delays the answer", "edge.latency", "150ms", func(t *testing.T, r *running) {
			start := time.Now()
			resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
		}},
		{"added store latency past the store timeout fails an uncached read", "store.latency", "400ms", func(t *testing.T, r *running) {
			resp, _ := r.do(t, http.MethodGet, "/api/products/4", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		}},
		{"a down shard answers 503 and its reads fail when nothing is cached", "store.shard_down", "0,1,2,3", func(t *testing.T, r *running) {
			resp, _ := r.do(t, http.MethodGet, "/api/products/5", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
			require.Positive(t, r.metric(t, "demo-store", "demo.store.operations", map[string]string{"result": "down"}))
		}},
		{"a slow shard delays reads of its keys", "store.shard_slow", "0@100ms,1@100ms,2@100ms,3@100ms", func(t *testing.T, r *running) {
			start := time.Now()
			resp, _ := r.do(t, http.MethodGet, "/api/products/6", "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
		}},
		{"cache off sends every read to the store", "cache.mode", "off", func(t *testing.T, r *running) {
			for range 3 {
				resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
				require.Equal(t, http.StatusOK, resp.StatusCode)
			}
			require.InDelta(t, 3, r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "bypass"}), 0)
		}},
		{"a leaky cache misses about half of the lookups of a cached key", "cache.mode", "leaky", func(t *testing.T, r *running) {
			for range 40 {
				resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
				require.Equal(t, http.StatusOK, resp.StatusCode)
			}
			misses := r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "miss"})
			require.Greater(t, misses, 6.0)
			require.Less(t, misses, 34.0)
		}},
		{"a lowered edge rate limit answers 429 with Retry-After", "edge.rate_limit", "1", func(t *testing.T, r *running) {
			var limited *http.Response
			for range 5 {
				resp, _ := r.do(t, http.MethodGet, "/api/products/1", "", "X-Client-ID", "c1")
				if resp.StatusCode == http.StatusTooManyRequests {
					limited = resp
				}
			}
			require.NotNil(t, limited, "five requests at once exceed 1/s")
			require.NotEmpty(t, limited.Header.Get("Retry-After"))
		}},
		{"an unreachable cache fails API calls without an answer from it", "dependency.unreachable", "cache", func(t *testing.T, r *running) {
			resp, body := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
			require.Contains(t, body, "connection refused")
		}},
		{"an unreachable store is survived by cached keys", "dependency.unreachable", "store", func(t *testing.T, r *running) {
			resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusOK, resp.StatusCode, "product 1 was cached before the fault")
			resp, _ = r.do(t, http.MethodGet, "/api/products/9", "")
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		}},
		{"CPU burn is accepted and cleared without stopping the platform", "cpu.burn", "0.2", func(t *testing.T, r *running) {
			require.InDelta(t, 0.2, r.Faults().State().CPUBurn, 0)
			resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}},
	}
	tierCalls(t, func(t *testing.T, mut func(*demoapp.Config)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := start(t, mut)
				ctx := context.Background()
				// Warm product 1 into the cache, then apply the fault.
				resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				_, err := r.Faults().Set(ctx, tc.flag, tc.value, "test")
				require.NoError(t, err)
				tc.check(t, r)
			})
		}
	})
}

func TestMemoryLeakGrowsToItsBoundAndIsReleased(t *testing.T) {
	set := faults.New()
	s := faults.NewStressor(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	_, err := set.Set(ctx, "memory.leak", "8", "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.LeakedBytes() == 8<<20 }, 5*time.Second, 20*time.Millisecond)
	_, err = set.Clear(ctx, "memory.leak", "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.LeakedBytes() == 0 }, 5*time.Second, 20*time.Millisecond)
}

func TestStaleCopiesAreServedWhileTheShardIsDown(t *testing.T) {
	r := start(t, func(c *demoapp.Config) { c.CacheTTL = 50 * time.Millisecond })
	resp, _ := r.do(t, http.MethodGet, "/api/products/11", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	time.Sleep(120 * time.Millisecond) // the fresh entry expires into the stale copy
	_, err := r.Faults().Set(context.Background(), "store.shard_down", "0,1,2,3", "test")
	require.NoError(t, err)
	resp, body := r.do(t, http.MethodGet, "/api/products/11", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `"id":11`)
	require.InDelta(t, 1, r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "stale"}), 0)
}

func TestWritesGoThroughToTheShardsAndSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	run := func(fn func(edge string)) {
		cfg := demoapp.DefaultConfig()
		cfg.EdgeListen, cfg.Load.Enabled, cfg.Products, cfg.Instrumentation = "127.0.0.1:0", false, 50, false
		p, err := demoapp.New(context.Background(), demoapp.Options{Config: cfg, DataDir: dir})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		fn(p.EdgeURL())
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, p.Close())
	}
	req := func(method, url, body string) (int, string) {
		r, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var orderURL string
	run(func(edge string) {
		code, body := req(http.MethodPut, edge+"/api/carts/ann/items/3", `{"qty":2}`)
		require.Equal(t, http.StatusOK, code, body)
		code, body = req(http.MethodPost, edge+"/api/orders", `{"user":"ann"}`)
		require.Equal(t, http.StatusCreated, code, body)
		i := strings.Index(body, `"id":"`) + 6
		orderURL = "/api/orders/" + body[i:i+strings.IndexByte(body[i:], '"')]
		code, body = req(http.MethodGet, edge+"/api/carts/ann", "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `"items":[]`, "placing the order empties the cart")
	})
	require.DirExists(t, dir+"/demo/shard-0")
	run(func(edge string) {
		code, body := req(http.MethodGet, edge+orderURL, "")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"user":"ann"`)
	})
}

func attrGetter(set attribute.Set) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := set.Value(attribute.Key(k))
		if !ok {
			return "", false
		}
		return v.Emit(), true
	}
}

func TestBadRequestsGetAClearErrorAndTheRightStatus(t *testing.T) {
	r := start(t, nil)
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"a product id that is not a number is a bad request", http.MethodGet, "/api/products/abc", "", http.StatusBadRequest},
		{"a product that does not exist is not found", http.MethodGet, "/api/products/999999", "", http.StatusNotFound},
		{"a negative quantity is a bad request", http.MethodPut, "/api/carts/ann/items/1", `{"qty":-1}`, http.StatusBadRequest},
		{"a body that is not JSON is a bad request", http.MethodPut, "/api/carts/ann/items/1", `qty=1`, http.StatusBadRequest},
		{"an order without a user is a bad request", http.MethodPost, "/api/orders", `{}`, http.StatusBadRequest},
		{"an order from an empty cart cannot be processed", http.MethodPost, "/api/orders", `{"user":"nobody"}`, http.StatusUnprocessableEntity},
		{"an unknown order is not found", http.MethodGet, "/api/orders/0123456789abcdef", "", http.StatusNotFound},
		{"a method the API does not serve is refused", http.MethodDelete, "/api/products/1", "", http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := r.do(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.want, resp.StatusCode, body)
			if tc.want != http.StatusMethodNotAllowed {
				require.Contains(t, body, `"error"`)
			}
		})
	}
	resp, _ := r.do(t, http.MethodGet, "/api/products/1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "bad requests do not trip the breakers")
}

func TestTheEdgesMetricsCarryTheAPIRouteSoSLOsCanBePerEndpoint(t *testing.T) {
	r := start(t, nil)
	for _, p := range []string{"/api/products/1", "/api/products/2", "/api/carts/ann", "/nowhere"} {
		r.do(t, http.MethodGet, p, "")
	}
	count := func(route string) float64 {
		return r.metric(t, "demo-edge", "http.server.request.duration", map[string]string{"http.route": route})
	}
	require.InDelta(t, 2, count("/api/products/{id}"), 0)
	require.InDelta(t, 1, count("/api/carts/{user}"), 0)
	require.InDelta(t, 1, count("/"), 0, "an unknown path is still served, under route /")
}

// Every tier behind the edge is called with a deadline header; its spans
// and metrics still name the route it served.
func TestTheInnerTiersSpansAndMetricsNameTheRouteTheyServed(t *testing.T) {
	r := start(t, nil)
	resp, _ := r.do(t, http.MethodGet, "/api/products/3", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, r.Flush(context.Background()))
	names := map[string][]string{}
	for _, s := range r.spans.GetSpans() {
		if s.SpanKind != trace.SpanKindServer {
			continue
		}
		for _, kv := range s.Resource.Attributes() {
			if kv.Key == "service.name" {
				names[kv.Value.AsString()] = append(names[kv.Value.AsString()], s.Name)
			}
		}
	}
	require.Equal(t, []string{"GET /api/products/{id}"}, names["demo-api"], "spans: %v", names)
	require.Equal(t, []string{"GET /kv/{key}"}, names["demo-cache"], "spans: %v", names)
	require.InDelta(t, 1, r.metric(t, "demo-api", "http.server.request.duration", map[string]string{"http.route": "/api/products/{id}"}), 0)
}

func TestAnInboundTraceparentStartsANewTraceLinkedToIt(t *testing.T) {
	r := start(t, nil)
	const inbound = "0af7651916cd43dd8448eb211c80319c"
	resp, _ := r.do(t, http.MethodGet, "/api/products/1", "", "traceparent", "00-"+inbound+"-b7ad6b7169203331-01")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, r.Flush(context.Background()))
	var root bool
	for _, s := range r.spans.GetSpans() {
		require.NotEqual(t, inbound, s.SpanContext.TraceID().String(), "no span joins the client's trace")
		if s.Parent.IsValid() {
			continue
		}
		root = true
		require.Len(t, s.Links, 1)
		require.Equal(t, inbound, s.Links[0].SpanContext.TraceID().String(), "the edge's root links to the client's span")
	}
	require.True(t, root)
}
