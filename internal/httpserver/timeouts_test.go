package httpserver_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// TestASlowBodyIsCutOffAtTheReadTimeout: a body trickled byte by byte fails
// to read once read_timeout has passed, so it holds its handler no longer.
func TestASlowBodyIsCutOffAtTheReadTimeout(t *testing.T) {
	s, _ := start(t, httpserver.Config{ReadTimeout: 300 * time.Millisecond})
	readErr := make(chan error, 1)
	s.Handle("POST /api/v1/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /api/v1/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
	}()
	select {
	case err := <-readErr:
		require.ErrorContains(t, err, "timeout")
	case <-time.After(10 * time.Second):
		t.Fatal("a trickled body was still being read 10s after a 300ms read timeout")
	}
}

// TestAQueryLongerThanTheReadTimeoutKeepsItsContext: the read timeout
// bounds the body only; a query that runs longer than it keeps its context
// and its answer (net/http lifts the deadline once the body is in).
func TestAQueryLongerThanTheReadTimeoutKeepsItsContext(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	s, _ := start(t, httpserver.Config{ReadTimeout: readTimeout})
	s.Handle("POST /api/v1/query", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		// Run for well past the read timeout, as a long query does.
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		case <-time.After(5 * readTimeout):
			fmt.Fprint(w, "done")
		}
	}))
	for _, body := range []string{"query=up", ""} {
		resp, err := http.Post(s.URL()+"/api/v1/query", "application/x-www-form-urlencoded", strings.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, "done", string(b))
	}
	// A GET (no body) too.
	s.Handle("GET /api/v1/long", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		case <-time.After(5 * readTimeout):
			fmt.Fprint(w, "done")
		}
	}))
	resp, err := http.Get(s.URL() + "/api/v1/long")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "done", string(b))
}
