package edge_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/edge"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

func newEdge(t *testing.T, cfg edge.Config, set *faults.Set, upstreams ...string) (*edge.Edge, *httptest.Server) {
	t.Helper()
	tel, err := telemetry.New(context.Background(), "demo-edge", "t", telemetry.Options{})
	require.NoError(t, err)
	if set == nil {
		set = faults.New()
	}
	e, err := edge.New(cfg, upstreams, set, tel)
	require.NoError(t, err)
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return e, srv
}

func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestSheddingAnswers503WithRetryAfterWhenFull(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer api.Close()
	_, srv := newEdge(t, edge.Config{MaxConcurrent: 1, RateLimit: 1000}, nil, api.URL)

	done := make(chan *http.Response)
	go func() { done <- get(t, srv.URL+"/api/products/1") }()
	<-entered
	resp := get(t, srv.URL+"/api/products/2")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "1", resp.Header.Get("X-No-Retry"), "an overloaded tier says: don't retry")
	close(release)
	require.Equal(t, http.StatusOK, (<-done).StatusCode, "the request in flight still completes")
}

func TestRateLimitingIsPerClientAndAnswers429WithRetryAfter(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	_, srv := newEdge(t, edge.Config{RateLimit: 0.5, Burst: 2, ClientIDSecret: "s"}, nil, api.URL)
	a, b := edge.SignClientID("s", "a"), edge.SignClientID("s", "b")

	require.Equal(t, http.StatusOK, get(t, srv.URL+"/x", "X-Client-ID", a).StatusCode)
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/x", "X-Client-ID", a).StatusCode)
	resp := get(t, srv.URL+"/x", "X-Client-ID", a)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the burst of 2 is spent")
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Equal(t, 2, secs, "at 0.5/s the next token is two seconds away")
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/x", "X-Client-ID", b).StatusCode, "another signed client has its own bucket")
}

func TestRotatingAnUnsignedClientIDDoesNotBypassTheLimit(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	for _, secret := range []string{"", "s"} {
		_, srv := newEdge(t, edge.Config{RateLimit: 0.5, Burst: 2, ClientIDSecret: secret}, nil, api.URL)
		codes := map[int]int{}
		for i := range 10 {
			id := "client-" + strconv.Itoa(i)
			if i%2 == 1 {
				id = edge.SignClientID("not-the-secret", id)
			}
			codes[get(t, srv.URL+"/x", "X-Client-ID", id).StatusCode]++
		}
		require.Equal(t, 2, codes[http.StatusOK], "secret %q: ten IDs from one address share its bucket of 2", secret)
		require.Equal(t, 8, codes[http.StatusTooManyRequests])
	}
}

func TestTheLimiterMapHasAHardBound(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	e, srv := newEdge(t, edge.Config{RateLimit: 100, MaxClients: 5, ClientIDSecret: "s"}, nil, api.URL)
	for i := range 50 {
		require.Equal(t, http.StatusOK, get(t, srv.URL+"/x", "X-Client-ID", edge.SignClientID("s", strconv.Itoa(i))).StatusCode)
		require.LessOrEqual(t, e.Clients(), 5)
	}
	require.Equal(t, 5, e.Clients())
}

func TestTheRateLimitFaultLowersAndRestoresTheLimit(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	set := faults.New()
	_, srv := newEdge(t, edge.Config{RateLimit: 1000}, set, api.URL)
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/x").StatusCode)
	_, err := set.Set(context.Background(), "edge.rate_limit", "1", "test")
	require.NoError(t, err)
	codes := map[int]int{}
	for range 5 {
		codes[get(t, srv.URL+"/x").StatusCode]++
	}
	require.Positive(t, codes[http.StatusTooManyRequests])
	_, err = set.Clear(context.Background(), "edge.rate_limit", "test")
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond) // at 1000/s the bucket refills
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/x").StatusCode)
}

func TestRequestIDsAreAssignedKeptAndForwarded(t *testing.T) {
	var seen atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("X-Request-ID"))
	}))
	defer api.Close()
	_, srv := newEdge(t, edge.Config{}, nil, api.URL)
	resp := get(t, srv.URL+"/x")
	id := resp.Header.Get("X-Request-ID")
	require.Len(t, id, 24)
	require.Equal(t, id, seen.Load())
	resp = get(t, srv.URL+"/x", "X-Request-ID", "abc")
	require.Equal(t, "abc", resp.Header.Get("X-Request-ID"))
	require.Equal(t, "abc", seen.Load())
}

func TestBalancingSkipsAReplicaThatFailsItsHealthChecks(t *testing.T) {
	var aHealthy atomic.Bool
	aHealthy.Store(true)
	var aHits, bHits atomic.Int64
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !aHealthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		aHits.Add(1)
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			bHits.Add(1)
		}
	}))
	defer b.Close()
	e, srv := newEdge(t, edge.Config{HealthInterval: 10 * time.Millisecond}, nil, a.URL, b.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()

	for range 4 {
		get(t, srv.URL+"/x")
	}
	require.Equal(t, int64(2), aHits.Load(), "round robin over two healthy replicas")
	aHealthy.Store(false)
	require.Eventually(t, func() bool { return e.Healthy() == 1 }, 2*time.Second, 5*time.Millisecond)
	for range 4 {
		require.Equal(t, http.StatusOK, get(t, srv.URL+"/x").StatusCode)
	}
	require.Equal(t, int64(2), aHits.Load(), "the failing replica gets no traffic")
	require.Equal(t, int64(6), bHits.Load())
	aHealthy.Store(true)
	require.Eventually(t, func() bool { return e.Healthy() == 2 }, 2*time.Second, 5*time.Millisecond)
}

func TestNoHealthyReplicaAnswers503WithRetryAfter(t *testing.T) {
	set := faults.New()
	e, srv := newEdge(t, edge.Config{HealthInterval: 10 * time.Millisecond}, set, "http://127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()
	require.Eventually(t, func() bool { return e.Healthy() == 0 }, 2*time.Second, 5*time.Millisecond)
	resp := get(t, srv.URL+"/x")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
}
