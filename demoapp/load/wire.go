package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// wire is the load generator's HTTP/1.1 transport for http:// targets: each
// call writes its request and reads its answer on the caller's goroutine,
// over a keep-alive connection from a pool.
//
// net/http's Transport gives every connection a read and a write goroutine
// and hands each call to them and back. That is right for a general client
// and costly for a load generator on the same cores as its target: at
// 1,000 requests/s it took about 200 µs of CPU per request, most of it
// waking those goroutines (bench/README.md, "The load's own cost"). The
// request is still written by http.Request.Write and the answer parsed by
// http.ReadResponse; only the connection handling is this file's. Other
// schemes (https) go to Fallback.
//
// Timeout bounds each call here, from writing the request to reading the
// answer's last byte, as http.Client.Timeout would; leaving that one unset
// spares a timer and a goroutine per request (another tenth of the load's
// CPU).
type wire struct {
	Fallback http.RoundTripper
	MaxIdle  int // idle connections kept per host
	Timeout  time.Duration

	dialer net.Dialer
	mu     sync.Mutex
	idle   map[string][]*wireConn
}

type wireConn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	host string
}

func newWire(maxIdle int, timeout time.Duration) *wire {
	return &wire{
		Timeout:  timeout,
		Fallback: &http.Transport{MaxIdleConnsPerHost: maxIdle, DisableCompression: true},
		MaxIdle:  maxIdle,
		dialer:   net.Dialer{KeepAlive: 30 * time.Second},
		idle:     map[string][]*wireConn{},
	}
}

// longAgo is a deadline in the past: it ends blocked reads and writes.
var longAgo = time.Unix(1, 0)

func (t *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.Fallback.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		wc, reused, err := t.conn(req.Context(), req.URL.Host)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := t.exchange(wc, req)
		if err == nil {
			return resp, nil
		}
		_ = wc.c.Close()
		// A kept-alive connection the server closed while idle fails
		// before any answer: once, on a new one, if the body can be sent
		// again.
		if !reused || attempt > 0 || !closedByPeer(err) || req.Context().Err() != nil || !rewindable(req) {
			closeBody(req)
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// closedByPeer tells the failures of a connection the server had closed
// from a slow or broken answer.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// exchange sends req on wc and reads the answer's head; the body is read
// by the caller, and its Close gives the connection back.
func (t *wire) exchange(wc *wireConn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	dl, ok := ctx.Deadline()
	if t.Timeout > 0 && (!ok || time.Until(dl) > t.Timeout) {
		dl = time.Now().Add(t.Timeout)
	}
	_ = wc.c.SetDeadline(dl) // zero: none
	stop := context.AfterFunc(ctx, func() { _ = wc.c.SetDeadline(longAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil, fmt.Errorf("%w (timeout %s)", context.DeadlineExceeded, t.Timeout)
		}
		return nil, err
	}
	if err := req.Write(wc.bw); err != nil {
		return fail(err)
	}
	if err := wc.bw.Flush(); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(wc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &wireBody{ReadCloser: resp.Body, t: t, wc: wc, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// conn takes an idle connection to host, or dials one.
func (t *wire) conn(ctx context.Context, host string) (*wireConn, bool, error) {
	t.mu.Lock()
	if l := t.idle[host]; len(l) > 0 {
		wc := l[len(l)-1]
		t.idle[host] = l[:len(l)-1]
		t.mu.Unlock()
		return wc, true, nil
	}
	t.mu.Unlock()
	c, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &wireConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10), host: host}, false, nil
}

func (t *wire) put(wc *wireConn) {
	t.mu.Lock()
	if l := t.idle[wc.host]; len(l) < t.MaxIdle {
		t.idle[wc.host] = append(l, wc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = wc.c.Close()
}

// CloseIdleConnections closes the pooled connections (http.Client calls it).
func (t *wire) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*wireConn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, wc := range l {
			_ = wc.c.Close()
		}
	}
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// wireBody returns its connection to the pool when it is closed: the
// response body's Close reads what is left of the answer, so the
// connection is at the start of the next one.
type wireBody struct {
	io.ReadCloser
	t    *wire
	wc   *wireConn
	stop func() bool
	keep bool
	done bool
}

func (b *wireBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.ReadCloser.Close()
	// The deadline watch is stopped before the connection can be handed
	// to the next call; if it already fired, the connection is spent.
	if b.stop() && b.keep && err == nil {
		b.t.put(b.wc)
		return nil
	}
	_ = b.wc.c.Close()
	return err
}
