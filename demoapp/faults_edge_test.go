package demoapp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/store"
)

// sample is what a client of the edge saw over a batch of requests.
type sample struct {
	status  []int
	latency []time.Duration
	bodies  []string
}

// ratio is the fraction of answers with status in codes (5xx when none).
func (s sample) ratio(codes ...int) float64 {
	n := 0
	for _, c := range s.status {
		if (len(codes) == 0 && c >= 500) || slices.Contains(codes, c) {
			n++
		}
	}
	return float64(n) / float64(len(s.status))
}

func (s sample) median() time.Duration {
	l := slices.Clone(s.latency)
	slices.Sort(l)
	return l[len(l)/2]
}

// measure sends n GETs of path(i) to the edge, 8 at a time, each as its own
// client so that the per-client rate limit does not interfere.
func (r *running) measure(t *testing.T, n int, path func(i int) string) sample {
	t.Helper()
	s := sample{status: make([]int, n), latency: make([]time.Duration, n), bodies: make([]string, n)}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			req, err := http.NewRequest(http.MethodGet, r.edge+path(i), nil)
			if err != nil {
				panic(err)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				s.status[i] = -1
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s.latency[i], s.status[i], s.bodies[i] = time.Since(start), resp.StatusCode, string(b)
		})
	}
	wg.Wait()
	return s
}

// settle waits for several health-check rounds so that a fault that would
// (wrongly or rightly) take replicas out of rotation has done so.
func settle(cfg demoapp.Config) { time.Sleep(5 * cfg.HealthInterval) }

func product(i int) string { return fmt.Sprintf("/api/products/%d", i%5) }

// uncached reads a fresh key each time: an order that does not exist is a
// 404 from the store through the cache, unless a fault breaks the path.
func uncached(i int) string { return fmt.Sprintf("/api/orders/none-%d", i) }

// TestEachFaultFlagInjectsAtTheEdgeWhatItsValueSays sets each flag and
// measures, as a client of the edge, the error ratio or latency it causes,
// against the value set. Health checks run every 20ms, so any fault that
// leaks into them has taken replicas out of rotation before measuring.
func TestEachFaultFlagInjectsAtTheEdgeWhatItsValueSays(t *testing.T) {
	const n = 400
	// A binomial ratio of 400 requests stays within 0.1 of p (4.4 standard
	// deviations at p = 0.3); the defects this catches moved it by 0.35 and
	// more.
	const tol = 0.1
	cases := []struct {
		name, flag, value string
		check             func(t *testing.T, r *running)
	}{
		{"an edge error fraction of 0.3 fails 30% of requests with 500", "edge.error_fraction", "0.3", func(t *testing.T, r *running) {
			s := r.measure(t, n, product)
			require.InDelta(t, 0.3, s.ratio(), tol)
			require.InDelta(t, s.ratio(), s.ratio(http.StatusInternalServerError), 0, "every failure is the injected 500")
		}},
		{"an API error fraction of 1 answers the documented 500, not 503 no healthy replica", "api.error_fraction", "1", func(t *testing.T, r *running) {
			s := r.measure(t, 50, product)
			require.InDelta(t, 1, s.ratio(http.StatusInternalServerError), 0, "statuses: %v", s.status)
			require.Contains(t, s.bodies[0], "api.error_fraction")
		}},
		{"an API error fraction of 0.3 fails 30% of requests and no replica flaps", "api.error_fraction", "0.3", func(t *testing.T, r *running) {
			s := r.measure(t, n, product)
			require.InDelta(t, 0.3, s.ratio(), tol)
			require.InDelta(t, 0, s.ratio(http.StatusServiceUnavailable), 0, "no answer says no healthy replica")
			require.Equal(t, 2, r.HealthyReplicas())
		}},
		{"a cache error fraction of 0.3 fails 30% of requests, not retried into fewer", "cache.error_fraction", "0.3", func(t *testing.T, r *running) {
			s := r.measure(t, n, product)
			require.InDelta(t, 0.3, s.ratio(), tol)
		}},
		{"a store error fraction of 0.3 fails 30% of uncached reads", "store.error_fraction", "0.3", func(t *testing.T, r *running) {
			s := r.measure(t, n, uncached)
			require.InDelta(t, 0.3, s.ratio(), tol)
		}},
		{"edge latency of 100ms is added to every answer", "edge.latency", "100ms", func(t *testing.T, r *running) {
			s := r.measure(t, 40, product)
			require.InDelta(t, 0, s.ratio(), 0)
			require.GreaterOrEqual(t, slices.Min(s.latency), 100*time.Millisecond)
		}},
		{"API latency of 600ms, past the health check's timeout, delays answers and takes no replica out", "api.latency", "600ms", func(t *testing.T, r *running) {
			s := r.measure(t, 16, product)
			require.InDelta(t, 1, s.ratio(http.StatusOK), 0, "statuses: %v", s.status)
			require.GreaterOrEqual(t, slices.Min(s.latency), 600*time.Millisecond)
		}},
		{"cache latency of 100ms is added to every answer", "cache.latency", "100ms", func(t *testing.T, r *running) {
			s := r.measure(t, 40, product)
			require.InDelta(t, 1, s.ratio(http.StatusOK), 0)
			require.GreaterOrEqual(t, slices.Min(s.latency), 100*time.Millisecond)
		}},
		{"store latency of 100ms is added to every uncached read", "store.latency", "100ms", func(t *testing.T, r *running) {
			s := r.measure(t, 40, uncached)
			require.InDelta(t, 1, s.ratio(http.StatusNotFound), 0)
			require.GreaterOrEqual(t, slices.Min(s.latency), 100*time.Millisecond)
		}},
		{"one down shard fails exactly the uncached reads of its keys", "store.shard_down", "0", func(t *testing.T, r *running) {
			s := r.measure(t, 200, uncached)
			ring, owned := store.NewRing(4), 0
			for i := range 200 {
				if ring.Shard("order:"+strings.TrimPrefix(uncached(i), "/api/orders/")) == 0 {
					owned++
				}
			}
			require.Positive(t, owned)
			require.InDelta(t, float64(owned)/200, s.ratio(), 0)
		}},
		{"a slow shard delays only the reads of its keys", "store.shard_slow", "1@100ms", func(t *testing.T, r *running) {
			s := r.measure(t, 80, uncached)
			ring := store.NewRing(4)
			for i, l := range s.latency {
				require.Equal(t, http.StatusNotFound, s.status[i])
				if ring.Shard("order:"+strings.TrimPrefix(uncached(i), "/api/orders/")) == 1 {
					require.GreaterOrEqual(t, l, 100*time.Millisecond)
				}
			}
		}},
		{"cache off sends every read to the store", "cache.mode", "off", func(t *testing.T, r *running) {
			before := r.metric(t, "demo-store", "demo.store.operations", map[string]string{"op": "get"})
			s := r.measure(t, 40, product)
			require.InDelta(t, 1, s.ratio(http.StatusOK), 0)
			require.InDelta(t, 40, r.metric(t, "demo-store", "demo.store.operations", map[string]string{"op": "get"})-before, 0)
		}},
		{"a leaky cache misses about half of the lookups of cached keys", "cache.mode", "leaky", func(t *testing.T, r *running) {
			before := r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "miss"})
			s := r.measure(t, n, func(int) string { return "/api/products/1" })
			require.InDelta(t, 1, s.ratio(http.StatusOK), 0)
			misses := r.metric(t, "demo-cache", "demo.cache.requests", map[string]string{"result": "miss"}) - before
			require.InDelta(t, 0.5, misses/n, tol)
		}},
		{"an unreachable API fails every request at the edge", "dependency.unreachable", "api", func(t *testing.T, r *running) {
			s := r.measure(t, 20, product)
			require.InDelta(t, 1, s.ratio(), 0)
		}},
		{"an unreachable cache fails every request (502, then 503 once the breaker opens)", "dependency.unreachable", "cache", func(t *testing.T, r *running) {
			s := r.measure(t, 20, product)
			require.InDelta(t, 1, s.ratio(http.StatusBadGateway, http.StatusServiceUnavailable), 0)
		}},
		{"an unreachable store fails every uncached read", "dependency.unreachable", "store", func(t *testing.T, r *running) {
			s := r.measure(t, 20, uncached)
			require.InDelta(t, 1, s.ratio(), 0)
		}},
		{"unready API replicas leave the edge with no replica: every request is 503", "api.unready", "true", func(t *testing.T, r *running) {
			require.Eventually(t, func() bool { return r.HealthyReplicas() == 0 }, 10*time.Second, 10*time.Millisecond)
			s := r.measure(t, 20, product)
			require.InDelta(t, 1, s.ratio(http.StatusServiceUnavailable), 0)
			require.Contains(t, s.bodies[0], "no healthy API replica")
			_, err := r.Faults().Clear(context.Background(), "api.unready", "test")
			require.NoError(t, err)
			require.Eventually(t, func() bool { return r.HealthyReplicas() == 2 }, 10*time.Second, 10*time.Millisecond)
			require.InDelta(t, 1, r.measure(t, 20, product).ratio(http.StatusOK), 0, "cleared, the replicas come back")
		}},
		{"CPU burn leaves requests answered", "cpu.burn", "0.2", func(t *testing.T, r *running) {
			require.InDelta(t, 1, r.measure(t, 20, product).ratio(http.StatusOK), 0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, func(c *demoapp.Config) {
				c.HealthInterval = 20 * time.Millisecond
				c.RateLimit, c.RateBurst = 1e6, 1e6
			})
			// Warm the products into the cache, then apply the fault.
			require.InDelta(t, 1, r.measure(t, 5, product).ratio(http.StatusOK), 0)
			_, err := r.Faults().Set(context.Background(), tc.flag, tc.value, "test")
			require.NoError(t, err)
			settle(r.cfg)
			tc.check(t, r)
		})
	}
	// Every flag is measured here or in a test of its own.
	covered := map[string]bool{"memory.leak": true, "edge.rate_limit": true}
	for _, tc := range cases {
		covered[tc.flag] = true
	}
	for _, spec := range faults.Catalog {
		require.True(t, covered[spec.Name], "flag %s has no test measuring its effect", spec.Name)
	}
}
