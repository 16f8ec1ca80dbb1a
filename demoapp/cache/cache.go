// Package cache is the demo platform's cache tier: cache-aside in front of
// the sharded store.
//
//   - Cache-aside with an LRU bounded in entries and a TTL (hashicorp
//     golang-lru/v2 expirable): reads look here first and fill on a miss;
//     writes go to the store, then replace the entry.
//   - Stampede protection: concurrent misses of one key share one store read
//     (golang.org/x/sync/singleflight), so a popular key expiring does not
//     send a burst to its shard.
//   - Graceful degradation: every value read or written is also kept in a
//     larger "stale" LRU without TTL. When the owning shard cannot answer (down, slow past
//     its timeout, breaker open), a read is served from there with
//     X-Cache: stale instead of failing: a slightly old product page beats an
//     error page.
//   - Metrics: lookups by result (hit, miss, stale, bypass), entries, and the
//     hit ratio.
package cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/store"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// Lookup results, the "result" attribute of demo.cache.requests and the
// X-Cache answer header.
const (
	Hit    = "hit"
	Miss   = "miss"
	Stale  = "stale"
	Bypass = "bypass"
)

// Config sizes the cache.
type Config struct {
	Size int
	TTL  time.Duration
}

// Cache is the cache tier's server.
type Cache struct {
	store  *store.Client
	faults *faults.Set
	tel    *telemetry.Providers

	fresh  *expirable.LRU[string, []byte]
	stale  *lru.Cache[string, []byte]
	flight singleflight.Group

	hits, misses atomic.Int64
	requests     metric.Int64Counter
	resultAttrs  map[string]metric.AddOption
}

// New returns a cache in front of st.
func New(cfg Config, st *store.Client, set *faults.Set, tel *telemetry.Providers) (*Cache, error) {
	if cfg.Size <= 0 {
		cfg.Size = 512
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	c := &Cache{store: st, faults: set, tel: tel}
	var err error
	c.stale, err = lru.New[string, []byte](cfg.Size * 8)
	if err != nil {
		return nil, err
	}
	c.fresh = expirable.NewLRU[string, []byte](cfg.Size, nil, cfg.TTL)

	meter := tel.Meter.Meter("github.com/burnrate/burnrate/demoapp/cache")
	if c.requests, err = meter.Int64Counter("demo.cache.requests",
		metric.WithDescription("Cache lookups by result: hit, miss, stale (served from the stale copy because the store failed), bypass (cache off).")); err != nil {
		return nil, err
	}
	c.resultAttrs = map[string]metric.AddOption{}
	for _, r := range []string{Hit, Miss, Stale, Bypass} {
		c.resultAttrs[r] = metric.WithAttributes(attribute.String("result", r))
	}
	if _, err = meter.Float64ObservableGauge("demo.cache.hit_ratio",
		metric.WithDescription("Hits over hits plus misses since start; for a windowed ratio use rate() of demo_cache_requests_total."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			h, m := c.hits.Load(), c.misses.Load()
			if h+m > 0 {
				o.Observe(float64(h) / float64(h+m))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge("demo.cache.entries",
		metric.WithDescription("Fresh entries held by the cache."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(c.fresh.Len()))
			return nil
		})); err != nil {
		return nil, err
	}
	return c, nil
}

// Handler is the cache's HTTP API, instrumented as service demo-cache:
//
//	GET /kv/{key}   cache-aside read; X-Cache: hit, miss, stale or bypass
//	PUT /kv/{key}   write through to the store, then refresh the entry
//	GET /healthz
func (c *Cache) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /kv/{key}", c.serveGet)
	mux.HandleFunc("PUT /kv/{key}", c.servePut)
	return web.Server(web.Faulty(c.faults, faults.Cache, mux), "demo-cache", c.tel)
}

func (c *Cache) count(ctx context.Context, result string) {
	switch result {
	case Hit:
		c.hits.Add(1)
	case Miss:
		c.misses.Add(1)
	}
	c.requests.Add(ctx, 1, c.resultAttrs[result])
}

// Get reads key through the cache and says how it was served.
func (c *Cache) Get(ctx context.Context, key string, h http.Header) ([]byte, string, error) {
	st := c.faults.State()
	if st.CacheMode == faults.CacheOff {
		c.count(ctx, Bypass)
		v, err := c.store.Get(ctx, key, h)
		return v, Bypass, err
	}
	if !st.Leak() {
		if v, ok := c.fresh.Get(key); ok {
			c.count(ctx, Hit)
			return v, Hit, nil
		}
	}
	v, err, _ := c.flight.Do(key, func() (any, error) {
		return c.store.Get(ctx, key, h)
	})
	if err == nil {
		c.count(ctx, Miss)
		b := v.([]byte)
		c.fill(key, b)
		return b, Miss, nil
	}
	if errors.Is(err, store.ErrUnavailable) {
		if old, ok := c.stale.Get(key); ok {
			c.count(ctx, Stale)
			return old, Stale, nil
		}
	}
	c.count(ctx, Miss)
	return nil, Miss, err
}

// fill stores a value read from (or written to) the store: fresh for TTL,
// and as the latest known copy in the larger stale LRU, which outlives the
// TTL so that it can stand in while the owning shard is unavailable.
func (c *Cache) fill(key string, v []byte) {
	c.fresh.Add(key, v)
	c.stale.Add(key, v)
}

func (c *Cache) serveGet(w http.ResponseWriter, r *http.Request) {
	v, how, err := c.Get(r.Context(), r.PathValue("key"), forward(r))
	w.Header().Set("X-Cache", how)
	switch {
	case errors.Is(err, store.ErrNotFound):
		web.Error(w, http.StatusNotFound, "not found")
	case err != nil:
		// The store client has retried as far as its budget and the
		// deadline allow: the API must not retry on top of that.
		w.Header().Set(resilience.NoRetryHeader, "1")
		web.Error(w, http.StatusBadGateway, err.Error())
	default:
		if how == Stale {
			w.Header().Set("Warning", `110 demo-cache "Response is Stale"`)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(v)
	}
}

func (c *Cache) servePut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		web.Error(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if err := c.store.Put(r.Context(), key, body, forward(r)); err != nil {
		// The entry may now disagree with the store; drop it.
		c.fresh.Remove(key)
		c.stale.Remove(key)
		w.Header().Set(resilience.NoRetryHeader, "1")
		web.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	if c.faults.State().CacheMode != faults.CacheOff {
		c.fill(key, body)
	}
	w.WriteHeader(http.StatusNoContent)
}

// forward carries the request ID to the next hop.
func forward(r *http.Request) http.Header {
	if id := r.Header.Get(web.RequestIDHeader); id != "" {
		return http.Header{web.RequestIDHeader: {id}}
	}
	return nil
}
