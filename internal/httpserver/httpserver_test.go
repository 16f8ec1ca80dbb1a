package httpserver_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/httpserver"
)

func start(t *testing.T, cfg httpserver.Config) (*httpserver.Server, *prometheus.Registry) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	reg := prometheus.NewRegistry()
	s, err := httpserver.New(cfg, slog.New(slog.DiscardHandler), reg, reg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	t.Cleanup(func() {
		s.Shutdown()
		require.NoError(t, <-done)
	})
	return s, reg
}

func do(t *testing.T, method, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(""))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	s, _ := start(t, httpserver.Config{})
	var tsdbReady atomic.Bool
	s.AddReadyCheck("tsdb", func() error {
		if !tsdbReady.Load() {
			return errors.New("replaying WAL")
		}
		return nil
	})
	s.AddReadyCheck("sqlite", func() error { return nil })

	code, body := do(t, "GET", s.URL()+"/-/healthy", "")
	require.Equal(t, 200, code, "healthy does not wait for components")
	require.Contains(t, body, "Healthy")

	code, body = do(t, "GET", s.URL()+"/-/ready", "")
	require.Equal(t, 503, code)
	require.Contains(t, body, "tsdb: replaying WAL", "the reason names the component")

	tsdbReady.Store(true)
	code, _ = do(t, "GET", s.URL()+"/-/ready", "")
	require.Equal(t, 200, code)
}

func TestBearerToken(t *testing.T) {
	s, _ := start(t, httpserver.Config{Token: "t0ken"})
	s.Handle("/api/v1/things", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	s.Handle("/api/v1/query", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	s.Handle("/api/v1/slack/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	cases := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"a read needs no token", "GET", "/api/v1/things", "", 204},
		{"a write without a token is refused", "POST", "/api/v1/things", "", 401},
		{"a write with the wrong token is refused", "DELETE", "/api/v1/things", "Bearer nope", 401},
		{"a write with the token passes", "POST", "/api/v1/things", "Bearer t0ken", 204},
		{"a PromQL query by POST is a read", "POST", "/api/v1/query", "", 204},
		{"Slack's signed requests carry no bearer token and reach their handler", "POST", "/api/v1/slack/interactions", "", 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, s.URL()+tc.path, tc.auth)
			require.Equal(t, tc.want, code)
			if code == 401 {
				require.JSONEq(t, `{"status":"error","errorType":"unauthorized","error":"missing or invalid bearer token"}`, body)
			}
		})
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	s, _ := start(t, httpserver.Config{})
	s.Handle("GET /api/v1/items/{id}", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, id := range []string{"a", "b", "c"} {
		code, _ := do(t, "GET", s.URL()+"/api/v1/items/"+id, "")
		require.Equal(t, 200, code)
	}
	_, body := do(t, "GET", s.URL()+"/metrics", "")
	require.Contains(t, body, `burnrate_http_requests_total{code="200",handler="GET /api/v1/items/{id}"} 3`)
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0", ShutdownTimeout: 3 * time.Second},
		slog.New(slog.DiscardHandler), reg, reg)
	require.NoError(t, err)
	started := make(chan struct{})
	s.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	}))
	done := make(chan error, 1)
	go func() { done <- s.Run() }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	s.Shutdown()
	require.NoError(t, <-done)
	require.Equal(t, "finished", <-got, "the in-flight request completes during shutdown")
}

func TestConfigValidate(t *testing.T) {
	require.ErrorContains(t, httpserver.Config{}.Validate(), "listen: must not be empty")
	require.ErrorContains(t, httpserver.Config{Listen: "8080"}.Validate(), "is not host:port")
	_, err := httpserver.New(httpserver.Config{Listen: "256.0.0.1:1"}, slog.New(slog.DiscardHandler), nil, nil)
	require.Error(t, err)
}

func TestShutdownDoesNotWaitForConnectionsThatSentNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0", ShutdownTimeout: 4 * time.Second},
		slog.New(slog.DiscardHandler), reg, reg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run() }()

	// A client that dialled but never sent a request, as an HTTP transport
	// does when the request that wanted the connection is cancelled.
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		code, _ := do(t, "GET", s.URL()+"/-/healthy", "")
		return code == 200
	}, time.Second, 10*time.Millisecond)

	start := time.Now()
	s.Shutdown()
	require.NoError(t, <-done)
	require.Less(t, time.Since(start), 2*time.Second, "an unused connection must not hold the drain for the full timeout")
}
