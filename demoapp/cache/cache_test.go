package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/cache"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/store"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

func newCache(t *testing.T, h http.HandlerFunc, cfg cache.Config) (*cache.Cache, *faults.Set) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tel, err := telemetry.New(context.Background(), "demo-cache", "t", telemetry.Options{})
	require.NoError(t, err)
	pool, err := resilience.NewPool(tel, nil)
	require.NoError(t, err)
	set := faults.New()
	sc := store.NewClient(srv.URL, 1, pool, resilience.Config{MaxAttempts: 1, FailuresToOpen: 100}, set)
	c, err := cache.New(cfg, sc, set, tel)
	require.NoError(t, err)
	return c, set
}

func TestConcurrentMissesOfAKeyShareOneStoreRead(t *testing.T) {
	var calls atomic.Int64
	c, _ := newCache(t, func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		time.Sleep(100 * time.Millisecond)
		_, _ = w.Write([]byte(`{"id":1}`))
	}, cache.Config{Size: 10, TTL: time.Minute})

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, _, err := c.Get(context.Background(), "product:1", nil)
			require.NoError(t, err)
			require.JSONEq(t, `{"id":1}`, string(v))
		})
	}
	wg.Wait()
	require.Equal(t, int64(1), calls.Load(), "twenty concurrent misses, one store read")
	_, how, err := c.Get(context.Background(), "product:1", nil)
	require.NoError(t, err)
	require.Equal(t, cache.Hit, how)
}

func TestEntriesExpireAndAreServedStaleOnlyWhenTheStoreFails(t *testing.T) {
	var down atomic.Bool
	var calls atomic.Int64
	c, _ := newCache(t, func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"v":` + time.Now().Format("150405.000000") + `}`))
	}, cache.Config{Size: 10, TTL: 30 * time.Millisecond})
	ctx := context.Background()
	first, how, err := c.Get(ctx, "k", nil)
	require.NoError(t, err)
	require.Equal(t, cache.Miss, how)
	time.Sleep(80 * time.Millisecond)
	_, how, err = c.Get(ctx, "k", nil)
	require.NoError(t, err)
	require.Equal(t, cache.Miss, how, "an expired entry is read again while the store answers")
	require.Equal(t, int64(2), calls.Load())

	time.Sleep(80 * time.Millisecond)
	down.Store(true)
	v, how, err := c.Get(ctx, "k", nil)
	require.NoError(t, err)
	require.Equal(t, cache.Stale, how)
	require.NotEqual(t, string(first), string(v), "the stale copy is the latest one read")

	_, _, err = c.Get(ctx, "never-read", nil)
	require.ErrorIs(t, err, store.ErrUnavailable, "without a stale copy the failure shows")
}

// kvStore is a fake store shard: PUTs are kept, GETs answer what is kept (or
// 404), each GET first waiting for gate when one is set.
type kvStore struct {
	mu    sync.Mutex
	data  map[string]string
	gets  atomic.Int64
	gate  chan struct{}
	slow  time.Duration
	value func(key string) string
}

func (s *kvStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.data[key] = string(b)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.gets.Add(1)
	s.mu.Lock()
	v, ok := s.data[key]
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	time.Sleep(s.slow)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, v)
}

func newKV(t *testing.T, cfg cache.Config, data map[string]string) (*cache.Cache, *kvStore, string) {
	t.Helper()
	kv := &kvStore{data: data}
	mux := http.NewServeMux()
	mux.Handle("/shards/0/kv/{key}", kv)
	c, _ := newCache(t, mux.ServeHTTP, cfg)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return c, kv, srv.URL
}

func TestAReadInFlightBeforeAWriteNeverPutsTheOldValueBack(t *testing.T) {
	c, kv, url := newKV(t, cache.Config{Size: 10, TTL: time.Minute}, map[string]string{"cart:ann": `{"qty":1}`})
	gate := make(chan struct{})
	kv.mu.Lock()
	kv.gate = gate
	kv.mu.Unlock()
	done := make(chan string)
	go func() {
		v, _, err := c.Get(context.Background(), "cart:ann", nil)
		require.NoError(t, err)
		done <- string(v)
	}()
	require.Eventually(t, func() bool { return kv.gets.Load() == 1 }, 5*time.Second, time.Millisecond, "the read reached the store")
	// The store has read the old value; a write lands before the answer.
	kv.mu.Lock()
	kv.gate = nil
	kv.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPut, url+"/kv/cart:ann", strings.NewReader(`{"qty":2}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	close(gate)
	require.JSONEq(t, `{"qty":1}`, <-done, "the slow read answers what it read")

	v, how, err := c.Get(context.Background(), "cart:ann", nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"qty":2}`, string(v), "the cache holds the written value, not the slow read's")
	require.Equal(t, cache.Hit, how)
}

func TestAWaiterOfASharedReadKeepsItsOwnContext(t *testing.T) {
	c, kv, _ := newKV(t, cache.Config{Size: 10, TTL: time.Minute}, map[string]string{"product:1": `{"id":1}`})
	kv.slow = 100 * time.Millisecond
	first, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Get(first, "product:1", nil)
		errc <- err
	}()
	require.Eventually(t, func() bool { return kv.gets.Load() == 1 }, 5*time.Second, time.Millisecond)
	second := make(chan error, 1)
	go func() {
		v, _, err := c.Get(context.Background(), "product:1", nil)
		if err == nil && string(v) != `{"id":1}` {
			err = errors.New("wrong value " + string(v))
		}
		second <- err
	}()
	time.Sleep(10 * time.Millisecond) // the second caller joins the shared read
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled, "the caller that gave up gets its own cancellation")
	require.NoError(t, <-second, "the other waiter is not failed by the first caller's cancellation")
	require.Equal(t, int64(1), kv.gets.Load(), "still one store read")
}

func TestAMissingKeyIsCachedBrieflyAndAWriteReplacesIt(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, kv, url := newKV(t, cache.Config{Size: 10, TTL: time.Minute, NegativeTTL: time.Second, Now: clock}, map[string]string{})
	for range 10 {
		_, _, err := c.Get(context.Background(), "order:none", nil)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	require.Equal(t, int64(1), kv.gets.Load(), "ten reads of an absent key, one store read")
	mu.Lock()
	now = now.Add(1100 * time.Millisecond)
	mu.Unlock()
	_, _, err := c.Get(context.Background(), "order:none", nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, int64(2), kv.gets.Load(), "after NegativeTTL the store is asked again")

	req, _ := http.NewRequest(http.MethodPut, url+"/kv/order:none", strings.NewReader(`{"id":"x"}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	v, how, err := c.Get(context.Background(), "order:none", nil)
	require.NoError(t, err)
	require.Equal(t, cache.Hit, how)
	require.JSONEq(t, `{"id":"x"}`, string(v), "a write replaces the cached absence at once")
}

func TestTheCacheIsBoundedInBytesWhateverTheValuesWeigh(t *testing.T) {
	big := `"` + strings.Repeat("x", 10_000) + `"`
	data := map[string]string{}
	for i := range 100 {
		data[fmt.Sprintf("cart:%d", i)] = big
	}
	const maxBytes = 100_000
	c, _, _ := newKV(t, cache.Config{Size: 1000, MaxBytes: maxBytes, TTL: time.Minute}, data)
	for i := range 100 {
		_, _, err := c.Get(context.Background(), fmt.Sprintf("cart:%d", i), nil)
		require.NoError(t, err)
	}
	entries, bytes := c.Size()
	require.LessOrEqual(t, bytes, int64(9*maxBytes), "fresh and stale copies stay within their byte bounds")
	require.LessOrEqual(t, entries, 10, "a hundred 10 kB values do not fit in 100 kB")
	require.Positive(t, entries)
}
