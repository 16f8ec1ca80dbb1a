package load

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, rt http.RoundTripper, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, url, strings.NewReader(`{"qty":1}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b), nil
}

func TestTheLoadsTransportKeepsConnectionsAliveAndSendsWhatNetHTTPWould(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Client-Id")+" "+string(b))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	w := newWire(8, time.Second)
	defer w.CloseIdleConnections()
	for range 50 {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/carts/u1/items/3", strings.NewReader(`{"qty":2}`))
		req.Header.Set("X-Client-Id", "c1")
		resp, err := w.RoundTrip(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, `PUT /api/carts/u1/items/3 c1 {"qty":2}`, string(b))
	}
	require.EqualValues(t, 1, conns.Load(), "fifty calls in a row share one connection")
}

// A server may close a kept-alive connection while it is idle: the next
// call finds out only when its answer does not come, and is sent again on
// a new connection, once.
func TestACallOnAConnectionTheServerClosedIsSentAgainOnANewOne(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				// One answer per connection, then close without saying so.
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	w := newWire(8, time.Second)
	defer w.CloseIdleConnections()
	for range 3 {
		resp, body, err := get(t, w, "http://"+ln.Addr().String()+"/")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "ok", body)
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	require.EqualValues(t, 3, accepted.Load())
}

func TestACallThatGetsNoAnswerEndsAtTheTimeoutAndItsConnectionIsNotReused(t *testing.T) {
	release := make(chan struct{})
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	defer close(release)
	w := newWire(8, 100*time.Millisecond)
	defer w.CloseIdleConnections()
	_, _, err := get(t, w, srv.URL+"/fast")
	require.NoError(t, err)
	start := time.Now()
	_, _, err = get(t, w, srv.URL+"/slow")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	resp, body, err := get(t, w, srv.URL+"/fast")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok", body)
	require.EqualValues(t, 2, conns.Load(), "the timed-out connection was dropped, a new one dialled")
}
