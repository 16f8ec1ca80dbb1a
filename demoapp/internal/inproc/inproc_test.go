package inproc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/internal/inproc"
)

type ctxKey struct{}

// echo answers what it was asked, as a server over the wire would see it.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Path", r.URL.Path)
	w.Header().Set("X-Query", r.URL.RawQuery)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Request-Uri", r.RequestURI)
	w.Header().Set("X-Got", r.Header.Get("X-Send"))
	if r.Context().Value(ctxKey{}) != nil {
		w.Header().Set("X-Leaked", "caller's context value")
	}
	w.WriteHeader(http.StatusCreated)
	w.WriteHeader(http.StatusTeapot) // ignored, as net/http does
	_, _ = w.Write(b)
}

// Both transports must give the caller the same answer: the wire's (a real
// server on loopback) and the in-process one.
func TestACallInProcessLooksToBothSidesLikeOneOverTheWire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := inproc.New(nil)
	tr.Handle(host, http.HandlerFunc(echo))

	call := func(rt http.RoundTripper) (*http.Response, string) {
		ctx := context.WithValue(context.Background(), ctxKey{}, "x")
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/kv/a%2Fb?x=1", strings.NewReader(`{"qty":2}`))
		require.NoError(t, err)
		req.Header.Set("X-Send", "hello")
		resp, err := (&http.Client{Transport: rt}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	wire, wireBody := call(http.DefaultTransport)
	mem, memBody := call(tr)
	require.Equal(t, wireBody, memBody)
	require.Equal(t, `{"qty":2}`, memBody)
	require.Equal(t, wire.StatusCode, mem.StatusCode)
	require.Equal(t, wire.Status, mem.Status)
	require.Equal(t, wire.ContentLength, mem.ContentLength)
	for _, k := range []string{"X-Method", "X-Path", "X-Query", "X-Host", "X-Request-Uri", "X-Got", "X-Leaked", "Content-Type", "Content-Length"} {
		require.Equal(t, wire.Header.Get(k), mem.Header.Get(k), k)
	}
	require.Empty(t, mem.Header.Get("X-Leaked"), "only headers cross, not the caller's context")
}

func TestAHostWithoutAHandlerGoesOverTheNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "wire") }))
	defer srv.Close()
	tr := inproc.New(nil)
	tr.Handle("127.0.0.1:9", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "memory") }))
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, "wire", string(b))

	// The unreachable address of the dependency.unreachable fault fails as
	// it does over the wire.
	_, err = (&http.Client{Transport: tr}).Get("http://127.0.0.1:1/")
	require.Error(t, err)
}

// The caller's deadline ends the handler's context, and an answer after it
// is the caller's timeout, as over the wire.
func TestTheCallersDeadlineCancelsTheHandlerAndALateAnswerIsATimeout(t *testing.T) {
	tr := inproc.New(nil)
	handlerSaw := make(chan error, 1)
	tr.Handle("tier:1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		handlerSaw <- r.Context().Err()
		w.WriteHeader(http.StatusOK)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://tier:1/slow", nil)
	_, err := (&http.Client{Transport: tr}).Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, <-handlerSaw, context.Canceled, "the handler's own context ends with its caller's")

	// A caller that already gave up does not call at all.
	called := false
	tr.Handle("tier:2", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://tier:2/", nil)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, called)
}

func TestAPanickingHandlerFailsItsCallAsADroppedConnectionWouldAndNothingElse(t *testing.T) {
	tr := inproc.New(nil)
	tr.Handle("tier:1", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	tr.Handle("tier:2", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	_, err := (&http.Client{Transport: tr}).Get("http://tier:1/")
	require.True(t, errors.Is(err, inproc.ErrHandlerPanicked), "got %v", err)
	resp, err := (&http.Client{Transport: tr}).Get("http://tier:2/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// One hop in process against one over loopback, side by side.
func BenchmarkOneCall(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":7,"name":"Sturdy Kettle 7","price_cents":1234,"stock":42}`)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	mem := inproc.New(nil)
	mem.Handle(strings.TrimPrefix(srv.URL, "http://"), h)
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{{"loopback", &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}, {"in_process", mem}} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: c.rt}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(srv.URL + "/kv/product:7")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
