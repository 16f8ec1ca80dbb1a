// Package inproc carries HTTP calls between demo tiers that run in one
// process without the loopback wire.
//
// In `burnrate up` the edge, the API replicas, the cache and the store are
// one process. Sent over loopback TCP, every call between them pays for an
// HTTP/1.1 client and server on each side: request and response written and
// parsed, four socket syscalls, a connection's read and write goroutines and
// the poller waking them. Measured on the real process, that was about a
// third of its CPU per request, more than everything Burnrate itself does
// with the telemetry (bench/README.md, "Tier calls in process").
//
// A Transport hands a request for a registered host straight to that tier's
// handler, on a goroutine of its own, and gives the caller the answer as an
// *http.Response. Everything above the wire is unchanged: each tier's
// handler chain (instrumentation, deadline, faults, routes), the callers'
// timeouts, retries and breakers, trace context in traceparent, request
// IDs in headers. What the collector receives is the same spans and
// metrics. Requests for any other host (a tier in another process, or the
// unreachable address of the dependency.unreachable fault) go to Next, the
// real network.
package inproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Transport routes requests to in-process handlers by host.
type Transport struct {
	// Next carries requests to hosts without a handler.
	Next  http.RoundTripper
	hosts map[string]http.Handler
}

// New returns a Transport that sends unregistered hosts to next
// (http.DefaultTransport when nil).
func New(next http.RoundTripper) *Transport {
	if next == nil {
		next = http.DefaultTransport
	}
	return &Transport{Next: next, hosts: map[string]http.Handler{}}
}

// Handle serves requests for host (host:port, as in the URLs callers use)
// with h. Register every host before the first request: the table is read
// without a lock.
func (t *Transport) Handle(host string, h http.Handler) { t.hosts[host] = h }

// ErrHandlerPanicked is returned to the caller of a handler that panicked:
// a server over the wire would drop the connection.
var ErrHandlerPanicked = errors.New("inproc: handler panicked")

// RemoteAddr is the caller's address a served request carries.
const RemoteAddr = "127.0.0.1:0"

// RoundTrip serves req with the handler of its host, or sends it to Next.
//
// The handler runs on the caller's goroutine, with a context of its own
// that is cancelled when req's context ends, as a server's is when its
// client goes away: the caller's context values (its span, its deadline)
// do not cross, only the headers do. An answer that comes after req's
// context ended is dropped and the context's error returned, as a client
// over the wire would have given up. So a handler must honour its
// request's context (every demo tier's does: latency faults, waits for the
// cache's fill and the retries all end with it); one that blocks past it
// holds its caller too. A goroutine per call would not: it was measured,
// and growing each new goroutine's stack through the handler chain cost a
// tenth of the process's CPU.
func (t *Transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	h := t.hosts[req.URL.Host]
	if h == nil {
		return t.Next.RoundTrip(req)
	}
	ctx := req.Context()
	body := req.Body
	if body == nil {
		body = http.NoBody
	}
	defer func() { _ = body.Close() }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	// The caller's header map, not a copy: RoundTrip returns only when the
	// handler has, and an instrumented caller (otelhttp) already sends a
	// request of its own. A handler must not change its request's headers.
	header := req.Header
	if header == nil {
		header = http.Header{}
	}
	in := (&http.Request{
		Method:        req.Method,
		URL:           &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          body,
		ContentLength: req.ContentLength,
		Host:          host,
		RemoteAddr:    RemoteAddr,
		RequestURI:    req.URL.RequestURI(),
	}).WithContext(sctx)
	w := &response{header: http.Header{}}
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ErrHandlerPanicked)
		}
	}()
	h.ServeHTTP(w, in)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return w.result(req), nil
}

// response is the handler's side: headers, status and body, kept whole
// (every tier's answers are small).
type response struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.code != 0 || code < 200 {
		return // a second call, or an informational answer, as net/http
	}
	w.code = code
}

func (w *response) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// Flush does nothing: the answer is handed over whole.
func (w *response) Flush() {}

func (w *response) result(req *http.Request) *http.Response {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	b := w.body.Bytes()
	if req.Method == http.MethodHead {
		b = nil
	}
	if len(b) > 0 && w.header.Get("Content-Type") == "" {
		w.header.Set("Content-Type", http.DetectContentType(b))
	}
	w.header.Set("Content-Length", strconv.Itoa(len(b)))
	return &http.Response{
		Status:        strconv.Itoa(w.code) + " " + http.StatusText(w.code),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}
}
