package cache_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	pool, err := resilience.NewPool(tel)
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
