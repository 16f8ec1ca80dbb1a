package resilience_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

func pool(t *testing.T) *resilience.Pool {
	t.Helper()
	tel, err := telemetry.New(context.Background(), "test", "test", telemetry.Options{})
	require.NoError(t, err)
	p, err := resilience.NewPool(tel)
	require.NoError(t, err)
	return p
}

// flaky answers with status until healthy is set.
func flaky(t *testing.T, status int) (*httptest.Server, *atomic.Int64, *atomic.Bool) {
	var calls atomic.Int64
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, &healthy
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	cases := []struct {
		name   string
		method string
		status int
		want   int64
	}{
		{"a GET that meets 503 is tried three times", http.MethodGet, http.StatusServiceUnavailable, 3},
		{"a PUT that meets 502 is tried three times", http.MethodPut, http.StatusBadGateway, 3},
		{"a DELETE that meets 504 is tried three times", http.MethodDelete, http.StatusGatewayTimeout, 3},
		{"a POST that meets 503 is tried once: placing an order twice is worse than failing", http.MethodPost, http.StatusServiceUnavailable, 1},
		{"a GET answered 500 is not retried: it is an answer, not an accident", http.MethodGet, http.StatusInternalServerError, 1},
		{"a GET answered 404 is not retried", http.MethodGet, http.StatusNotFound, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls, _ := flaky(t, tc.status)
			c := pool(t).Client("dep", resilience.Config{BackoffInitial: time.Millisecond, BackoffMax: 2 * time.Millisecond, FailuresToOpen: 100}, nil)
			resp, err := c.Do(context.Background(), tc.method, srv.URL, []byte(`{}`), nil)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.Status, "the last answer is passed on")
			require.Equal(t, tc.want, calls.Load())
		})
	}
}

func TestRetriesAConnectionRefusedGETButNotAPOST(t *testing.T) {
	var unreachable atomic.Bool
	unreachable.Store(true)
	srv, calls, _ := flaky(t, http.StatusOK)
	c := pool(t).Client("dep", resilience.Config{BackoffInitial: time.Millisecond, FailuresToOpen: 100}, unreachable.Load)
	_, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
	require.ErrorContains(t, err, "connection refused")
	require.Zero(t, calls.Load(), "the unreachable fault sends calls to a closed port")
	unreachable.Store(false)
	resp, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
}

func TestEveryAttemptHasATimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c := pool(t).Client("slow", resilience.Config{Timeout: 30 * time.Millisecond, MaxAttempts: 2, BackoffInitial: time.Millisecond}, nil)
	start := time.Now()
	_, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestTheBreakerOpensFailsFastAndRecovers(t *testing.T) {
	srv, calls, healthy := flaky(t, http.StatusServiceUnavailable)
	c := pool(t).Client("store-shard-0", resilience.Config{
		MaxAttempts: 1, FailuresToOpen: 3, OpenTimeout: 100 * time.Millisecond,
	}, nil)
	ctx := context.Background()
	for range 3 {
		resp, err := c.Do(ctx, http.MethodGet, srv.URL, nil, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.Status)
	}
	require.Equal(t, "open", c.BreakerState(), "three consecutive failures open it")

	_, err := c.Do(ctx, http.MethodGet, srv.URL, nil, nil)
	require.ErrorIs(t, err, resilience.ErrBreakerOpen)
	require.Equal(t, int64(3), calls.Load(), "an open breaker does not call the dependency")

	healthy.Store(true)
	require.Eventually(t, func() bool { return c.BreakerState() == "half-open" }, 2*time.Second, 5*time.Millisecond,
		"after OpenTimeout the breaker lets a probe through")
	resp, err := c.Do(ctx, http.MethodGet, srv.URL, nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, "closed", c.BreakerState(), "a successful probe closes it")
}

func TestAnOpenBreakerIsNotRetried(t *testing.T) {
	srv, calls, _ := flaky(t, http.StatusServiceUnavailable)
	c := pool(t).Client("dep", resilience.Config{MaxAttempts: 3, FailuresToOpen: 2, OpenTimeout: time.Minute, BackoffInitial: time.Millisecond}, nil)
	_, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
	require.ErrorIs(t, err, resilience.ErrBreakerOpen, "the third attempt finds the breaker open and gives up at once")
	require.Equal(t, int64(2), calls.Load())
}
