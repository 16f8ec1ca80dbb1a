package demoapp_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/resilience"
)

// tap is a counting proxy put between two tiers: calls counts every request
// that reached the tier behind it.
type tap struct {
	url   string
	calls atomic.Int64
}

func newTap(t *testing.T, target string) *tap {
	u, err := url.Parse(target)
	require.NoError(t, err)
	tp := &tap{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			tp.calls.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tp.url = srv.URL
	return tp
}

// chain runs the four tiers as separate roles with a tap in front of the
// cache and one in front of the store, so a test counts what one user
// request costs each tier behind the edge.
type chain struct {
	edge, cache       string
	cacheTap, storeTp *tap
	store, api        *faults.Set
}

func startChain(t *testing.T, mut func(*demoapp.Config)) *chain {
	t.Helper()
	cfg := demoapp.DefaultConfig()
	cfg.Load.Enabled, cfg.Instrumentation, cfg.Products = false, false, 20
	cfg.HealthInterval = 20 * time.Millisecond
	if mut != nil {
		mut(&cfg)
	}
	require.NoError(t, cfg.Validate())
	dir := t.TempDir()
	role := func(o demoapp.Options) (*faults.Set, string) {
		o.Config, o.DataDir, o.Listen = cfg, dir, "127.0.0.1:0"
		o.Faults = faults.New()
		p, err := demoapp.New(context.Background(), o)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done); require.NoError(t, p.Close()) })
		return o.Faults, p.URLs()[o.Role][0]
	}
	c := &chain{}
	var storeURL, cacheURL, apiURL string
	c.store, storeURL = role(demoapp.Options{Role: demoapp.RoleStore})
	c.storeTp = newTap(t, storeURL)
	_, cacheURL = role(demoapp.Options{Role: demoapp.RoleCache, StoreURL: c.storeTp.url})
	c.cache = cacheURL
	c.cacheTap = newTap(t, cacheURL)
	c.api, apiURL = role(demoapp.Options{Role: demoapp.RoleAPI, CacheURL: c.cacheTap.url})
	_, c.edge = role(demoapp.Options{Role: demoapp.RoleEdge, APIURLs: []string{apiURL}})
	return c
}

func call(t *testing.T, method, u, body string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestWithEveryShardDownOneUserReadCostsOneCacheCallAndOneStoreCall(t *testing.T) {
	c := startChain(t, nil)
	_, err := c.store.Set(context.Background(), "store.shard_down", "0,1,2,3", "test")
	require.NoError(t, err)
	code, body := call(t, http.MethodGet, c.edge+"/api/orders/nope", "")
	require.Equal(t, http.StatusBadGateway, code, body)
	// The shard answered 503 with Retry-After: 1, longer than a retry within
	// the call may wait: not retried. The cache answered "don't retry".
	require.Equal(t, int64(1), c.cacheTap.calls.Load(), "the API does not retry the cache")
	require.Equal(t, int64(1), c.storeTp.calls.Load(), "the cache honours Retry-After")
}

func TestAStoreTimeoutIsRetriedByTheCacheOnlyWithinTheRetryBudget(t *testing.T) {
	c := startChain(t, func(cfg *demoapp.Config) {
		cfg.StoreTimeout, cfg.CacheTimeout, cfg.EdgeTimeout = 20*time.Millisecond, 500*time.Millisecond, time.Second
	})
	_, err := c.store.Set(context.Background(), "store.latency", "200ms", "test")
	require.NoError(t, err)
	const n = 40
	for i := range n {
		code, _ := call(t, http.MethodGet, c.edge+"/api/orders/slow-"+strconv.Itoa(i), "")
		require.GreaterOrEqual(t, code, 500, "a read the store cannot answer in time fails")
	}
	require.Equal(t, int64(n), c.cacheTap.calls.Load(), "one cache call per user request")
	// Each read may try 3 times, but the budget allows 10 retries at once
	// and 10% of calls after that; the breaker may cut it shorter still.
	require.LessOrEqual(t, c.storeTp.calls.Load(), int64(n+10+n/10))
}

func TestTheCallersDeadlineTravelsInwardSoNoTierWorksPastIt(t *testing.T) {
	c := startChain(t, func(cfg *demoapp.Config) {
		cfg.StoreTimeout, cfg.CacheTimeout = 200*time.Millisecond, time.Second
	})
	_, err := c.store.Set(context.Background(), "store.latency", "1s", "test")
	require.NoError(t, err)
	// The API's call to the cache has 50ms left.
	code, _ := call(t, http.MethodGet, c.cacheTap.url+"/kv/order:late", "", resilience.TimeoutHeader, "50")
	require.Equal(t, http.StatusBadGateway, code)
	require.Equal(t, int64(1), c.storeTp.calls.Load(),
		"the cache stops at the caller's 50ms: no second 200ms attempt on a request already given up")
}

func TestTheTimeoutBudgetIsValidatedAtConfigLoad(t *testing.T) {
	cases := []struct {
		name               string
		edge, cache, store time.Duration
		err                string
	}{
		{"the defaults fit", 3 * time.Second, time.Second, 250 * time.Millisecond, ""},
		{"three store attempts plus backoff past the cache timeout are refused", 3 * time.Second, time.Second, 330 * time.Millisecond, "demo.store_timeout"},
		{"a cache timeout as long as the edge's is refused", time.Second, time.Second, 100 * time.Millisecond, "demo.cache_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := demoapp.DefaultConfig()
			cfg.EdgeTimeout, cfg.CacheTimeout, cfg.StoreTimeout = tc.edge, tc.cache, tc.store
			err := cfg.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.ErrorContains(t, err, "can take", "the message says how the budget adds up")
		})
	}
}

func TestAnOrderIsOneAtomicWriteAndAnIdempotencyKeyPlacesItOnce(t *testing.T) {
	c := startChain(t, nil)
	code, body := call(t, http.MethodPut, c.edge+"/api/carts/ann/items/3", `{"qty":2}`)
	require.Equal(t, http.StatusOK, code, body)

	// The store fails the write (the cart is read from the cache): the
	// order is refused and nothing is half written.
	_, err := c.store.Set(context.Background(), "store.error_fraction", "1", "test")
	require.NoError(t, err)
	writes := c.storeTp.calls.Load()
	code, _ = call(t, http.MethodPost, c.edge+"/api/orders", `{"user":"ann"}`)
	require.Equal(t, http.StatusBadGateway, code)
	require.Equal(t, int64(1), c.storeTp.calls.Load()-writes, "placing an order is one write to the store, not two")
	_, err = c.store.Clear(context.Background(), "", "test")
	require.NoError(t, err)
	code, body = call(t, http.MethodGet, c.edge+"/api/carts/ann", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"qty":2`, "a failed order leaves the cart as it was")

	// The client retries with the same key, twice: one order.
	before := c.storeTp.calls.Load()
	code, first := call(t, http.MethodPost, c.edge+"/api/orders", `{"user":"ann"}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusCreated, code, first)
	require.Equal(t, int64(2), c.storeTp.calls.Load()-before, "one lookup of the key (absent) and one batch write of order and cart")
	code, again := call(t, http.MethodPost, c.edge+"/api/orders", `{"user":"ann"}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusOK, code, again)
	require.JSONEq(t, first, again, "the retry answers the order already placed")
	code, body = call(t, http.MethodGet, c.edge+"/api/carts/ann", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"items":[]`, "the cart was emptied in the same write")

	i := strings.Index(first, `"id":"`) + 6
	id := first[i : i+strings.IndexByte(first[i:], '"')]
	code, body = call(t, http.MethodGet, c.edge+"/api/orders/"+id, "")
	require.Equal(t, http.StatusOK, code, body)

	// Without the key, a second POST of an empty cart places nothing.
	code, _ = call(t, http.MethodPost, c.edge+"/api/orders", `{"user":"ann"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
}
