package resilience_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	p, err := resilience.NewPool(tel, nil)
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
		{"a PUT that meets 504 is tried three times", http.MethodPut, http.StatusGatewayTimeout, 3},
		{"a GET that meets 502 is tried once: what failed is behind the dependency, which retried it", http.MethodGet, http.StatusBadGateway, 1},
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

// counting answers every call with status and the headers hdr.
func counting(t *testing.T, status int, hdr ...string) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRetriesStayWithinTheRetryBudgetDuringAnOutage(t *testing.T) {
	srv, calls := counting(t, http.StatusServiceUnavailable)
	c := pool(t).Client("dep", resilience.Config{BackoffInitial: time.Microsecond, BackoffMax: time.Microsecond, FailuresToOpen: 1 << 30}, nil)
	const n = 200
	for range n {
		resp, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.Status)
	}
	// Without a budget, 3 attempts each would be 600 calls. With 10% and a
	// burst of 10: at most 200 + 10 + 20.
	require.LessOrEqual(t, calls.Load(), int64(n+10+n/10))
	require.Greater(t, calls.Load(), int64(n), "the burst still lets the first failures retry")
}

func TestRetryAfterAndNoRetryAnswersAreHonoured(t *testing.T) {
	cases := []struct {
		name string
		hdr  []string
		want int64
	}{
		{"a 503 asking for a second is not retried within the call", []string{"Retry-After", "1"}, 1},
		{"a 503 saying don't retry is not retried", []string{resilience.NoRetryHeader, "1"}, 1},
		{"a 503 asking for no wait is retried", []string{"Retry-After", "0"}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := counting(t, http.StatusServiceUnavailable, tc.hdr...)
			c := pool(t).Client("dep", resilience.Config{BackoffInitial: time.Millisecond, BackoffMax: 5 * time.Millisecond, FailuresToOpen: 100}, nil)
			resp, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, resp.Status)
			require.Equal(t, tc.want, calls.Load())
		})
	}
}

func TestTheCallersDeadlineBoundsAttemptsAndTravelsToTheNextHop(t *testing.T) {
	var calls atomic.Int64
	var sent atomic.Value
	srv := httptest.NewServer(resilience.WithDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		sent.Store(r.Header.Get(resilience.TimeoutHeader))
		<-r.Context().Done() // slower than anyone waits; ends with the propagated deadline
		w.WriteHeader(http.StatusGatewayTimeout)
	})))
	t.Cleanup(srv.Close)
	c := pool(t).Client("dep", resilience.Config{Timeout: time.Second, BackoffInitial: time.Millisecond, FailuresToOpen: 100}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := c.Do(ctx, http.MethodGet, srv.URL, nil, nil)
	if err == nil {
		require.Equal(t, http.StatusGatewayTimeout, resp.Status, "the next hop gave up at the propagated deadline")
	} else {
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Equal(t, int64(1), calls.Load(), "no retry starts after the caller's deadline; with only per-attempt timeouts of 1s there would be 3")
	ms, convErr := strconv.Atoi(sent.Load().(string))
	require.NoError(t, convErr)
	require.LessOrEqual(t, ms, 100, "the next hop learns the caller's deadline, not the attempt's 1s")
}

func TestTheTimeoutBudgetCountsEveryAttemptAndBackoff(t *testing.T) {
	cfg := resilience.Config{Timeout: 250 * time.Millisecond, MaxAttempts: 3, BackoffInitial: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	require.Equal(t, 750*time.Millisecond+15*time.Millisecond+30*time.Millisecond, cfg.Budget())
	require.Equal(t, time.Second, resilience.Config{Timeout: time.Second, MaxAttempts: 1}.Budget())
}
