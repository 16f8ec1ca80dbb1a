// Package edge is the demo platform's entry point: a reverse proxy in front
// of the API replicas that protects them.
//
// A request passes, in order:
//  1. otelhttp: the server span that roots the trace, and the
//     http.server.request.duration histogram the edge SLOs are written on,
//     with the API's route (http.route) so that SLOs can be per endpoint.
//     It is outermost so that shed and rate-limited answers count too. The
//     edge is a public endpoint: an inbound traceparent is not trusted as a
//     parent; the edge starts a new trace linked to it.
//  2. Request ID: X-Request-ID is kept when the client sent one, assigned
//     otherwise, echoed in the answer and forwarded to every hop. The
//     answer also names its trace in traceresponse.
//  3. Load shedding: at most MaxConcurrent requests in flight; the rest are
//     answered 503 with Retry-After at once. Queueing them would only add
//     latency to every request until all of them time out.
//  4. Rate limiting: a token bucket per client; over the limit is 429 with
//     Retry-After (when a token will be there). A client is its remote IP
//     address, which it cannot change per request. When the edge has a
//     ClientIDSecret, a signed X-Client-ID (id.signature, see SignClientID)
//     names the client instead, so that trusted callers (the load
//     generator's simulated clients) get buckets of their own; an unsigned
//     or badly signed ID is ignored. The limiter map holds at most
//     MaxClients buckets, least recently seen evicted first.
//  5. Faults of the edge (latency, error fraction).
//  6. The proxy (httputil.ReverseProxy with Rewrite), round-robin over the
//     API replicas that pass their health checks, with a timeout.
package edge

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// ClientIDHeader names the client for rate limiting.
const ClientIDHeader = "X-Client-Id" // canonical form, as web.RequestIDHeader

// TraceResponseHeader carries the trace of an answer
// (00-<trace id>-<span id>-<flags>), as W3C Trace Context level 2's
// traceresponse does.
const TraceResponseHeader = "Traceresponse"

// Config tunes the edge.
type Config struct {
	// RateLimit is each client's sustained requests per second; Burst the
	// bucket size.
	RateLimit float64
	Burst     int
	// MaxConcurrent bounds requests in flight before shedding.
	MaxConcurrent int
	// Timeout bounds the whole upstream call.
	Timeout time.Duration
	// HealthInterval is how often each replica is checked.
	HealthInterval time.Duration
	// Routes are the API's patterns ("GET /api/products/{id}"); the edge
	// routes them so that its metrics and spans carry http.route.
	Routes []string
	// MaxClients bounds the rate limiter's buckets (default 10000).
	MaxClients int
	// ClientIDSecret, when set, lets a signed X-Client-ID name the client.
	ClientIDSecret string
	// Transport carries the proxied calls and the health checks to the
	// replicas (resilience.NewTransport when nil).
	Transport http.RoundTripper
}

// Edge is the proxy.
type Edge struct {
	cfg      Config
	faults   *faults.Set
	tel      *telemetry.Providers
	backends []*backend
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	sem      chan struct{}
	health   *http.Client

	limMu    sync.Mutex
	limiters map[string]*list.Element // of *clientLimiter, most recent first
	lru      *list.List
	limit    rate.Limit

	rejected metric.Int64Counter
	healthy  metric.Int64ObservableGauge
}

type backend struct {
	url     *url.URL
	healthy atomic.Bool
	fails   int // consecutive failed checks, owned by the checker
}

type clientLimiter struct {
	key string
	lim *rate.Limiter
}

// New returns an edge in front of the API replicas at apiURLs.
func New(cfg Config, apiURLs []string, set *faults.Set, tel *telemetry.Providers) (*Edge, error) {
	if len(apiURLs) == 0 {
		return nil, errors.New("edge: no API replicas")
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 100
	}
	if cfg.Burst <= 0 {
		cfg.Burst = int(math.Ceil(cfg.RateLimit))
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 10000
	}
	e := &Edge{
		cfg:      cfg,
		faults:   set,
		tel:      tel,
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		limiters: map[string]*list.Element{},
		lru:      list.New(),
		limit:    rate.Limit(cfg.RateLimit),
	}
	for _, raw := range apiURLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, errors.New("edge: bad API replica URL " + strconv.Quote(raw))
		}
		b := &backend{url: u}
		b.healthy.Store(true) // until a check says otherwise
		e.backends = append(e.backends, b)
	}
	// The API does not compress (resilience.NewTransport disables it); a
	// client's own Accept-Encoding is still passed through.
	base := cfg.Transport
	if base == nil {
		base = resilience.NewTransport()
	}
	e.health = &http.Client{Timeout: 500 * time.Millisecond, Transport: base}
	e.proxy = &httputil.ReverseProxy{
		Rewrite: e.rewrite,
		// Without a pool the proxy allocates a fresh 32 KiB copy buffer for
		// every request: a third of the bytes the whole path allocated.
		BufferPool: proxyBuffers,
		Transport:  tel.ClientTransport(base),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
				web.Error(w, http.StatusGatewayTimeout, "upstream timed out")
				return
			}
			web.Error(w, http.StatusBadGateway, "upstream failed: "+err.Error())
		},
	}

	meter := tel.Meter.Meter("github.com/burnrate/burnrate/demoapp/edge")
	var err error
	if e.rejected, err = meter.Int64Counter("demo.edge.rejected",
		metric.WithDescription("Requests the edge refused before the API: reason shed (503), rate_limited (429), no_upstream (503).")); err != nil {
		return nil, err
	}
	if e.healthy, err = meter.Int64ObservableGauge("demo.edge.upstream.healthy",
		metric.WithDescription("1 while an API replica passes its health checks."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for _, b := range e.backends {
				v := int64(0)
				if b.healthy.Load() {
					v = 1
				}
				o.Observe(v, metric.WithAttributes(attribute.String("upstream", b.url.Host)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	set.Subscribe(e.applyRateLimit)
	return e, nil
}

// applyRateLimit follows the edge.rate_limit fault: set, it replaces the
// configured rate of every client; cleared, the configured rate returns.
func (e *Edge) applyRateLimit(st *faults.State) {
	l := rate.Limit(e.cfg.RateLimit)
	if st.EdgeRateLimit > 0 {
		l = rate.Limit(st.EdgeRateLimit)
	}
	e.limMu.Lock()
	defer e.limMu.Unlock()
	if l == e.limit {
		return
	}
	e.limit = l
	for el := e.lru.Front(); el != nil; el = el.Next() {
		cl := el.Value.(*clientLimiter)
		cl.lim.SetLimit(l)
		cl.lim.SetBurst(burstFor(l, e.cfg))
	}
}

// burstFor is the configured burst, or, under a lowered limit, at most one
// second's worth of it, so that the fault bites at once.
func burstFor(l rate.Limit, cfg Config) int {
	if float64(l) == cfg.RateLimit {
		return cfg.Burst
	}
	return max(1, min(cfg.Burst, int(math.Ceil(float64(l)))))
}

// Handler is the edge, instrumented as service demo-edge.
func (e *Edge) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(e.serveProxy)
	h = web.Faulty(e.faults, faults.Edge, h)
	h = e.rateLimit(h)
	h = e.shed(h)
	h = requestID(h)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	// The API's routes, so that r.Pattern (and so http.route on the edge's
	// metrics and spans) names the endpoint; anything else is still
	// proxied, with route "/".
	for _, p := range e.cfg.Routes {
		mux.Handle(p, h)
	}
	mux.Handle("/", h)
	return e.tel.Handler(mux, telemetry.HandlerOptions{
		// Public endpoint: a client's traceparent becomes a link, not the
		// parent, so clients cannot graft spans onto our traces or choose
		// the sampling decision.
		PublicEndpoint: true,
		SpanName: func(method, pattern string) string {
			if pattern != "" && pattern != "/" {
				return "edge " + pattern
			}
			return "edge " + method
		},
	})
}

func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(web.RequestIDHeader)
		if id == "" || len(id) > 128 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			r.Header.Set(web.RequestIDHeader, id)
		}
		w.Header().Set(web.RequestIDHeader, id)
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			// W3C Trace Context level 2: the answer names its trace, so a
			// client (and the load generator) can look a failure up.
			w.Header().Set(TraceResponseHeader, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Edge) shed(next http.Handler) http.Handler {
	attrs := metric.WithAttributes(attribute.String("reason", "shed"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.sem <- struct{}{}:
			defer func() { <-e.sem }()
			next.ServeHTTP(w, r)
		default:
			e.rejected.Add(r.Context(), 1, attrs)
			w.Header().Set("Retry-After", "1")
			// Overloaded: a caller that retries at once only adds load.
			w.Header().Set(resilience.NoRetryHeader, "1")
			web.Error(w, http.StatusServiceUnavailable, "overloaded: request shed")
		}
	})
}

// SignClientID returns the X-Client-ID value that names client id at an
// edge with secret: id, a dot, and the first 16 bytes of HMAC-SHA256(secret,
// id) in unpadded base64url.
func SignClientID(secret, id string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id))
	return id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// clientKey is who a request is from, for rate limiting: the signed client
// ID when valid, else the remote IP address.
func (e *Edge) clientKey(r *http.Request) string {
	if e.cfg.ClientIDSecret != "" {
		if v := r.Header.Get(ClientIDHeader); v != "" && len(v) <= 128 {
			if i := strings.LastIndexByte(v, '.'); i > 0 && hmac.Equal([]byte(SignClientID(e.cfg.ClientIDSecret, v[:i])), []byte(v)) {
				return "id:" + v[:i]
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "ip:" + r.RemoteAddr
	}
	return "ip:" + host
}

// limiter is key's bucket. The map holds at most MaxClients buckets: a new
// client evicts the least recently seen one, whose bucket was most likely
// full anyway.
func (e *Edge) limiter(key string) *rate.Limiter {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	if el, ok := e.limiters[key]; ok {
		e.lru.MoveToFront(el)
		return el.Value.(*clientLimiter).lim
	}
	for e.lru.Len() >= e.cfg.MaxClients {
		old := e.lru.Back()
		e.lru.Remove(old)
		delete(e.limiters, old.Value.(*clientLimiter).key)
	}
	cl := &clientLimiter{key: key, lim: rate.NewLimiter(e.limit, burstFor(e.limit, e.cfg))}
	e.limiters[key] = e.lru.PushFront(cl)
	return cl.lim
}

// Clients is the number of rate-limiter buckets held.
func (e *Edge) Clients() int {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	return e.lru.Len()
}

func (e *Edge) rateLimit(next http.Handler) http.Handler {
	attrs := metric.WithAttributes(attribute.String("reason", "rate_limited"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		lim := e.limiter(e.clientKey(r))
		res := lim.ReserveN(now, 1)
		if delay := res.DelayFrom(now); !res.OK() || delay > 0 {
			res.CancelAt(now)
			e.rejected.Add(r.Context(), 1, attrs)
			secs := 1
			if res.OK() {
				secs = max(1, int(math.Ceil(delay.Seconds())))
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			web.Error(w, http.StatusTooManyRequests, "rate limit exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

func (e *Edge) pick() *backend {
	n := len(e.backends)
	start := e.next.Add(1)
	for i := range n {
		b := e.backends[(int(start)+i)%n]
		if b.healthy.Load() {
			return b
		}
	}
	return nil
}

func (e *Edge) serveProxy(w http.ResponseWriter, r *http.Request) {
	b := e.pick()
	if b == nil {
		e.rejected.Add(r.Context(), 1, metric.WithAttributes(attribute.String("reason", "no_upstream")))
		w.Header().Set("Retry-After", "1")
		web.Error(w, http.StatusServiceUnavailable, "no healthy API replica")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.Timeout)
	defer cancel()
	e.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, b)))
}

// proxyBuffers lends the proxy its body-copy buffers.
var proxyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

func (e *Edge) rewrite(pr *httputil.ProxyRequest) {
	b := pr.In.Context().Value(ctxKey{}).(*backend)
	target := b.url
	if e.faults.State().Unreachable[faults.API] {
		t := *target
		t.Host = resilience.UnreachableAddr
		target = &t
	}
	pr.SetURL(target)
	pr.SetXForwarded()
	pr.Out.Header.Set(web.RequestIDHeader, pr.In.Header.Get(web.RequestIDHeader))
	// The API serves the request under what is left of the edge's timeout.
	if dl, ok := pr.In.Context().Deadline(); ok {
		resilience.SetTimeoutHeader(pr.Out.Header, time.Until(dl))
	}
}

// Run checks every replica's /healthz each HealthInterval until ctx ends.
// A replica is taken out after two failed checks in a row and put back after
// one success, so one slow answer does not flap it.
func (e *Edge) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.HealthInterval)
	defer t.Stop()
	for {
		e.checkAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (e *Edge) checkAll(ctx context.Context) {
	unreachable := e.faults.State().Unreachable[faults.API]
	for _, b := range e.backends {
		host := b.url.Host
		if unreachable {
			host = resilience.UnreachableAddr
		}
		ok := e.check(ctx, b.url.Scheme+"://"+host+"/healthz")
		if ok {
			b.fails = 0
			b.healthy.Store(true)
			continue
		}
		b.fails++
		if b.fails >= 2 {
			b.healthy.Store(false)
		}
	}
}

func (e *Edge) check(ctx context.Context, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := e.health.Do(req)
	if err != nil {
		return false
	}
	// Drained so the connection is reused for the next check.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Healthy is the number of replicas passing their checks.
func (e *Edge) Healthy() int {
	n := 0
	for _, b := range e.backends {
		if b.healthy.Load() {
			n++
		}
	}
	return n
}
