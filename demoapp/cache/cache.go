// Package cache is the demo platform's cache tier: cache-aside in front of
// the sharded store.
//
//   - Cache-aside with an LRU bounded in bytes (keys, values and a per-entry
//     overhead; Config.MaxBytes) and in entries, with a TTL: reads look here
//     first and fill on a miss; writes go to the store, then replace the
//     entry.
//   - Versioned entries: every key has a generation, bumped when a write
//     starts and again when it ends. A read fills the cache only if the
//     generation it started under is still current, so a slow read that was
//     in flight before a PUT can never put the old value back (carts are
//     read, modified and written: that would be a lost update).
//   - Stampede protection: concurrent misses of one key, in one generation,
//     share one store read (golang.org/x/sync/singleflight). The shared read
//     runs detached from any one caller, bounded by Config.FetchTimeout, and
//     each waiter waits with its own context: a caller that gives up does not
//     fail the others.
//   - Negative caching: a key the store does not have is remembered as
//     missing for Config.NegativeTTL (1s), so a burst of reads of an absent
//     key costs one store read. A write replaces it at once.
//   - Graceful degradation: every value read or written is also kept in a
//     larger "stale" LRU without TTL. When the owning shard cannot answer
//     (down, slow past its timeout, breaker open), a read is served from
//     there with X-Cache: stale instead of failing.
//   - Metrics: lookups by result (hit, miss, stale, bypass), entries, bytes
//     and the hit ratio.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
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

// Config sizes the cache. Zero fields take the defaults noted.
type Config struct {
	// Size bounds the fresh entries (default 512); MaxBytes bounds their
	// memory (default 8 MiB). The stale copies get eight times both.
	Size     int
	MaxBytes int64
	// TTL is how long a fresh entry is served (default 30s).
	TTL time.Duration
	// NegativeTTL is how long a key the store does not have is remembered
	// as missing (default 1s).
	NegativeTTL time.Duration
	// FetchTimeout bounds the store read that concurrent misses share
	// (default 1s).
	FetchTimeout time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// stripes is how many generation counters the keys share. Two keys on one
// stripe only make a fill be skipped needlessly, never a stale one kept.
const stripes = 256

type stripe struct {
	mu  sync.Mutex
	gen uint64
}

// Cache is the cache tier's server.
type Cache struct {
	store  *store.Client
	faults *faults.Set
	tel    *telemetry.Providers

	cfg    Config
	fresh  *lru
	stale  *lru
	flight singleflight.Group
	gens   [stripes]stripe

	hits, misses atomic.Int64
	requests     metric.Int64Counter
	resultAttrs  map[string]metric.AddOption
}

// New returns a cache in front of st.
func New(cfg Config, st *store.Client, set *faults.Set, tel *telemetry.Providers) (*Cache, error) {
	if cfg.Size <= 0 {
		cfg.Size = 512
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 8 << 20
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Second
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{store: st, faults: set, tel: tel, cfg: cfg}
	c.fresh = newLRU(cfg.MaxBytes, cfg.Size, cfg.TTL, cfg.Now)
	c.stale = newLRU(8*cfg.MaxBytes, 8*cfg.Size, 0, cfg.Now)
	var err error

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
			n, _ := c.fresh.size()
			o.Observe(int64(n))
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge("demo.cache.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes held by the cache (fresh and stale copies), bounded by demo.cache_max_bytes (times 9)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			_, f := c.fresh.size()
			_, st := c.stale.size()
			o.Observe(f + st)
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
//	POST /batch     write keys of one shard at once: [{"k": key, "v": value}, ...]
//	GET /healthz
func (c *Cache) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /kv/{key}", c.serveGet)
	mux.HandleFunc("PUT /kv/{key}", c.servePut)
	mux.HandleFunc("POST /batch", c.serveBatch)
	return web.Server(web.Faulty(c.faults, faults.Cache, mux), c.tel)
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
		if e, ok := c.fresh.get(key); ok {
			c.count(ctx, Hit)
			if e.missing {
				return nil, Hit, store.ErrNotFound
			}
			return e.value, Hit, nil
		}
	}
	gen := c.generation(key)
	// Misses of one generation share one read; a read that began before a
	// write is not shared with readers that came after it.
	ch := c.flight.DoChan(key+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		// Detached from the first caller so that its giving up does not
		// fail the others; bounded on its own; the trace context stays.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		defer cancel()
		v, err := c.store.Get(fctx, key, h)
		switch {
		case err == nil:
			c.fillIf(key, gen, v, false)
		case errors.Is(err, store.ErrNotFound):
			c.fillIf(key, gen, nil, true)
		}
		return v, err
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		c.count(ctx, Miss)
		return nil, Miss, ctx.Err()
	}
	if res.Err == nil {
		c.count(ctx, Miss)
		return res.Val.([]byte), Miss, nil
	}
	if errors.Is(res.Err, store.ErrUnavailable) {
		if e, ok := c.stale.get(key); ok && !e.missing {
			c.count(ctx, Stale)
			return e.value, Stale, nil
		}
	}
	c.count(ctx, Miss)
	return nil, Miss, res.Err
}

func (c *Cache) stripe(key string) *stripe { return &c.gens[xxhash.Sum64String(key)%stripes] }

// generation is key's current generation.
func (c *Cache) generation(key string) uint64 {
	s := c.stripe(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// fillIf keeps a value read from the store, fresh for TTL (a missing key
// for NegativeTTL) and, if present, as the latest known copy in the stale
// LRU, unless a write began since the read did.
func (c *Cache) fillIf(key string, gen uint64, v []byte, missing bool) {
	s := c.stripe(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if missing {
		c.fresh.add(key, nil, true, c.cfg.NegativeTTL)
		return
	}
	c.fresh.add(key, v, false, 0)
	c.stale.add(key, v, false, 0)
}

// beginWrite bumps key's generation, so that reads in flight do not fill.
func (c *Cache) beginWrite(key string) {
	s := c.stripe(key)
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// endWrite bumps key's generation again (reads that started during the
// write may have read the old value) and keeps the written value, or drops
// the entry when the write failed and the store may hold either.
func (c *Cache) endWrite(key string, v []byte, ok bool) {
	s := c.stripe(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if !ok {
		c.fresh.remove(key)
		c.stale.remove(key)
		return
	}
	c.fresh.add(key, v, false, 0)
	c.stale.add(key, v, false, 0)
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
	c.beginWrite(key)
	err = c.store.Put(r.Context(), key, body, forward(r))
	c.endWrite(key, body, err == nil)
	if err != nil {
		c.writeFailed(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *Cache) serveBatch(w http.ResponseWriter, r *http.Request) {
	var kvs []store.KV
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&kvs); err != nil {
		web.Error(w, http.StatusBadRequest, `body: want [{"k": key, "v": value}, ...]: `+err.Error())
		return
	}
	for _, kv := range kvs {
		c.beginWrite(kv.K)
	}
	err := c.store.PutBatch(r.Context(), kvs, forward(r))
	for _, kv := range kvs {
		c.endWrite(kv.K, kv.V, err == nil)
	}
	if errors.Is(err, store.ErrCrossShard) {
		web.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		c.writeFailed(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeFailed answers a write the store did not take. The store client has
// retried as far as its budget and the deadline allow: the API must not
// retry on top of that.
func (c *Cache) writeFailed(w http.ResponseWriter, err error) {
	w.Header().Set(resilience.NoRetryHeader, "1")
	web.Error(w, http.StatusBadGateway, err.Error())
}

// forward carries the request ID to the next hop.
func forward(r *http.Request) http.Header {
	if id := r.Header.Get(web.RequestIDHeader); id != "" {
		return http.Header{web.RequestIDHeader: {id}}
	}
	return nil
}

// Size is the number of fresh entries and the bytes held by fresh and
// stale copies together.
func (c *Cache) Size() (entries int, bytes int64) {
	n, f := c.fresh.size()
	_, s := c.stale.size()
	return n, f + s
}
