package telemetry

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// HTTP instrumentation (docs/traces.md, "HTTP instrumentation of the demo
// tiers").
//
// Every tier's server side (Handler) and every call between tiers
// (ClientTransport) is measured with the OpenTelemetry semantic conventions
// for HTTP, the same instruments, bucket bounds and attribute sets as the
// contrib otelhttp package (v0.72) records, so that the collector, the SLOs,
// the dashboards and the exemplars see the series they always saw. What
// differs is the cost: otelhttp computes, sorts and de-duplicates the
// attribute set of every request (attribute.NewSet) and wraps the response
// writer through httpsnoop; here a request's attribute set is looked up in a
// small cache keyed by what it is made of (method, host, protocol, route,
// status), built once per distinct key, so the hot path neither sorts nor
// allocates options.

// httpScope is the instrumentation scope of the HTTP spans and metrics.
const httpScope = "github.com/burnrate/burnrate/demoapp/telemetry"

// durationBounds are the semantic conventions' (and otelhttp's) buckets of
// http.server.request.duration and http.client.request.duration, in
// seconds. The SLOs' latency thresholds are bounds of this list.
var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// maxCached bounds each attribute cache: a key is made of what a client
// sends (the Host header, the method), so the cache must not grow with what
// a hostile client makes up. Beyond the bound, sets are computed per request
// (otelhttp's cost, still correct).
const maxCached = 4096

// HandlerOptions configure the server-side instrumentation.
type HandlerOptions struct {
	// SpanName names a request's span from its method and the pattern the
	// mux matched ("" before routing, or when no pattern matched). It is
	// called once per distinct (method, pattern) and its answer cached, so
	// it must depend on nothing else. Default: the pattern, else the method.
	SpanName func(method, pattern string) string
	// PublicEndpoint: an inbound traceparent is not trusted as the parent;
	// the server span starts a new trace linked to it.
	PublicEndpoint bool
	// Skip, when it reports true, serves the request without a span or a
	// measurement (health checks).
	Skip func(*http.Request) bool
}

// Handler instruments h: a server span per request (child of the caller's
// span through the propagator, or linked to it at a public endpoint), named
// by o.SpanName once the mux has matched, with status Error on a 5xx
// answer; and http.server.request.duration with the semantic-convention
// attributes, recorded with the span's context after its status is set, so
// that the exemplar filter sees a failed span as one that is kept.
func (p *Providers) Handler(h http.Handler, o HandlerOptions) http.Handler {
	if o.SpanName == nil {
		o.SpanName = func(method, pattern string) string {
			if pattern != "" {
				return pattern
			}
			return method
		}
	}
	s := &serverHandler{
		p:        p,
		next:     h,
		o:        o,
		tracer:   p.Tracer.Tracer(httpScope),
		prop:     p.Propagator,
		duration: newDuration(p.Meter, "http.server.request.duration", "Duration of HTTP server requests."),
		start:    []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
	}
	if o.PublicEndpoint {
		s.start = append(s.start, trace.WithNewRoot())
	}
	s.sets.init()
	return s
}

// ClientTransport instruments calls made through base: a client span per
// call (child of the caller's span, ended when the answer's body is closed
// or read to its end), trace context injected into the request, status
// Error on a failed call or a 4xx/5xx answer, and
// http.client.request.duration with the semantic-convention attributes
// (error.type on a call that got no answer).
func (p *Providers) ClientTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &clientTransport{
		p:        p,
		base:     base,
		tracer:   p.Tracer.Tracer(httpScope),
		prop:     p.Propagator,
		duration: newDuration(p.Meter, "http.client.request.duration", "Duration of HTTP client requests."),
	}
	t.sets.init()
	return t
}

func newDuration(mp metric.MeterProvider, name, desc string) metric.Float64Histogram {
	h, err := mp.Meter(httpScope).Float64Histogram(name,
		metric.WithDescription(desc), metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBounds...))
	if err != nil {
		// Only a bad name or bounds, fixed here: a programming error.
		panic(fmt.Sprintf("telemetry: %s: %v", name, err))
	}
	return h
}

// --- server ---

type serverHandler struct {
	p        *Providers
	next     http.Handler
	o        HandlerOptions
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	duration metric.Float64Histogram
	start    []trace.SpanStartOption
	sets     cache[serverKey]
}

// serverKey is everything a server request's cached telemetry depends on;
// end is false for the request's start (span name before routing, request
// attributes).
type serverKey struct {
	method, host, proto, pattern string
	tls, end                     bool
	status                       int
}

// cached is the telemetry of one key: the span name, span attributes
// (request attributes at the start, response ones at the end) and the
// metric record options (end only).
type cached struct {
	name   string
	attrs  []attribute.KeyValue
	record []metric.RecordOption
}

func (s *serverHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.o.Skip != nil && s.o.Skip(r) {
		s.next.ServeHTTP(w, r)
		return
	}
	began := time.Now()
	ctx := s.prop.Extract(r.Context(), headerCarrier(r.Header))
	opts := s.start
	if s.o.PublicEndpoint {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsRemote() {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	key := serverKey{method: r.Method, host: r.Host, proto: r.Proto, pattern: r.Pattern, tls: r.TLS != nil}
	begin := s.sets.get(key, s.build)
	parent := ctx
	ctx, span := s.tracer.Start(ctx, begin.name, opts...)
	defer span.End()
	// Read now: the handler may change its copy of the request.
	client, path := clientAddress(r), ""
	if r.URL != nil {
		path = r.URL.Path
	}

	sw := writers.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		// A handler must not use its writer once it has returned.
		*sw = statusWriter{}
		writers.Put(sw)
	}()
	rr := r.WithContext(ctx)
	defer func() {
		// As net/http expects: it removes the temporary files of a form
		// parsed on the request it handed out.
		if rr.MultipartForm != nil {
			r.MultipartForm = rr.MultipartForm
		}
	}()
	s.next.ServeHTTP(sw, rr)

	key.pattern, key.status, key.end = rr.Pattern, sw.status, true
	end := s.sets.get(key, s.build)
	name := begin.name
	if rr.Pattern != "" {
		name = end.name
		span.SetName(name)
	}
	code, desc := spanStatus(sw.status, http.StatusInternalServerError)
	span.SetStatus(code, desc)
	now := time.Now()
	attrs := func(f func([]attribute.KeyValue)) {
		// Once, at the end: each call grows the span's attributes anew.
		// Nothing needs them sooner (the sampler does not read them).
		buf := scratch(len(begin.attrs) + len(end.attrs) + 2)
		attrs := append(*buf, begin.attrs...)
		if client != "" {
			attrs = append(attrs, semconv.ClientAddress(client))
		}
		if path != "" {
			attrs = append(attrs, semconv.URLPath(path))
		}
		attrs = append(attrs, end.attrs...)
		f(attrs)
		release(buf, attrs)
	}
	if span.IsRecording() {
		attrs(func(a []attribute.KeyValue) { span.SetAttributes(a...) })
	} else if keep(code, now.Sub(began), s.p.keepSlowerThan) {
		attrs(func(a []attribute.KeyValue) {
			ctx = s.p.replay(ctx, parent, s.tracer, span, ended{name: name, start: began, end: now, code: code, description: desc, opts: opts, attrs: a})
		})
	}
	s.duration.Record(ctx, seconds(now.Sub(began)), end.record...)
}

// clientAddress is the client's address: the first of X-Forwarded-For,
// else the peer's.
func clientAddress(r *http.Request) string {
	client := r.Header.Get("X-Forwarded-For")
	if i := strings.IndexByte(client, ','); i >= 0 {
		client = client[:i]
	}
	if client == "" {
		client, _ = splitHostPort(r.RemoteAddr)
	}
	return client
}

var writers = sync.Pool{New: func() any { return new(statusWriter) }}

// attrBufs lend the slices a span's attributes are gathered in: the SDK
// copies what SetAttributes is given.
var attrBufs = sync.Pool{New: func() any { b := make([]attribute.KeyValue, 0, 16); return &b }}

func scratch(n int) *[]attribute.KeyValue {
	b := attrBufs.Get().(*[]attribute.KeyValue)
	if cap(*b) < n {
		*b = make([]attribute.KeyValue, 0, n)
	}
	return b
}

func release(b *[]attribute.KeyValue, used []attribute.KeyValue) {
	clear(used) // no strings of a request kept alive
	*b = used[:0]
	attrBufs.Put(b)
}

// build computes the telemetry of a key, as otelhttp's semconv package
// does (HTTPServer.MetricAttributes, RequestTraceAttrs, ResponseTraceAttrs).
func (s *serverHandler) build(k serverKey) cached {
	c := cached{name: s.o.SpanName(k.method, k.pattern)}
	host, port := splitHostPort(k.host)
	port = requiredPort(k.tls, port)
	scheme := semconv.URLScheme("http")
	if k.tls {
		scheme = semconv.URLScheme("https")
	}
	protoName, protoVersion := netProtocol(k.proto)
	route := httpRoute(k.pattern)
	if !k.end {
		method, original := spanMethod(k.method)
		c.attrs = append(c.attrs, semconv.ServerAddress(host), method, scheme)
		if port > 0 {
			c.attrs = append(c.attrs, semconv.ServerPort(port))
		}
		if original.Valid() {
			c.attrs = append(c.attrs, original)
		}
		c.attrs = spanProtocol(c.attrs, protoName, protoVersion)
		return c
	}
	if k.status > 0 {
		c.attrs = append(c.attrs, semconv.HTTPResponseStatusCode(k.status))
	}
	if route != "" {
		c.attrs = append(c.attrs, semconv.HTTPRoute(route))
	}
	m := metricAttrs(k.method, scheme, host, port, protoName, protoVersion, k.status)
	if route != "" {
		m = append(m, semconv.HTTPRoute(route))
	}
	c.record = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(m...))}
	return c
}

// spanStatus is a span's status for an answer: codes from errorFrom up
// (500 for a server, whose 4xx are the client's; 400 for a client), and
// codes that are not HTTP's, are errors.
func spanStatus(code, errorFrom int) (codes.Code, string) {
	if code < 100 || code >= 600 {
		return codes.Error, "Invalid HTTP status code " + strconv.Itoa(code)
	}
	if code >= errorFrom {
		return codes.Error, ""
	}
	return codes.Unset, ""
}

// statusWriter remembers the status of the answer. Interfaces of the
// writer beneath (Hijacker, ...) are reached through Unwrap, as
// http.ResponseController does.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		// Informational answers come before the real one.
		if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
			w.ResponseWriter.WriteHeader(code)
			return
		}
		w.wrote, w.status = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// --- client ---

type clientTransport struct {
	p        *Providers
	base     http.RoundTripper
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	duration metric.Float64Histogram
	sets     cache[clientKey]
}

// clientKey is everything a call's cached telemetry depends on; end is
// false for the call's start.
type clientKey struct {
	method, host, scheme, proto string
	status                      int
	errType                     string
	end                         bool
}

var clientStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

func (t *clientTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	began := time.Now()
	key := clientKey{method: r.Method, proto: r.Proto}
	if r.URL != nil {
		key.host, key.scheme = r.URL.Host, r.URL.Scheme
	}
	if key.host == "" {
		key.host = r.Header.Get("Host")
	}
	begin := t.sets.get(key, t.build)
	parent := r.Context()
	ctx, span := t.tracer.Start(parent, begin.name, clientStart...)

	// A RoundTripper must not modify the request: the trace context goes
	// into a copy of its header.
	r = r.WithContext(ctx)
	r.Header = cloneHeader(r.Header)
	t.prop.Inject(ctx, headerCarrier(r.Header))

	res, err := t.base.RoundTrip(r)
	if err == nil {
		res, err = ensureResponseBody(t.base, r, res)
	}
	took := time.Since(began)

	key.end = true
	var end cached
	var code codes.Code
	var desc string
	if err != nil {
		key.errType = errorType(err)
		end = t.sets.get(key, t.build)
		code, desc = codes.Error, err.Error()
	} else {
		key.status = res.StatusCode
		if res.Proto != "" {
			key.proto = res.Proto
		}
		end = t.sets.get(key, t.build)
		code, desc = spanStatus(res.StatusCode, http.StatusBadRequest)
	}
	span.SetStatus(code, desc)
	attrs := func(f func([]attribute.KeyValue)) {
		// Once: each call grows the span's attributes anew.
		buf := scratch(len(begin.attrs) + len(end.attrs) + 2)
		attrs := append(*buf, begin.attrs...)
		attrs = append(attrs, semconv.URLFull(redactedURL(r.URL)))
		attrs = append(attrs, end.attrs...)
		if err != nil {
			attrs = append(attrs, semconv.ErrorType(err))
		}
		f(attrs)
		release(buf, attrs)
	}
	mctx := ctx
	if span.IsRecording() {
		attrs(func(a []attribute.KeyValue) { span.SetAttributes(a...) })
	} else if keep(code, took, t.p.keepSlowerThan) {
		// Outside the share a kept call is recorded now, when its answer's
		// head is in: what its body does later is not seen.
		attrs(func(a []attribute.KeyValue) {
			mctx = t.p.replay(ctx, parent, t.tracer, span, ended{name: begin.name, start: began, end: began.Add(took), code: code, description: desc, opts: clientStart, attrs: a})
		})
	}
	// After the status: the exemplar filter keeps a failed call's
	// measurement as one whose span is exported.
	t.duration.Record(mctx, seconds(took), end.record...)
	if err != nil {
		span.End()
		return res, err
	}
	res.Body = newEndingBody(span, res.Body)
	return res, nil
}

// cloneHeader copies h with room for the trace context's headers.
func cloneHeader(h http.Header) http.Header {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	values := make([]string, n)
	c := make(http.Header, len(h)+3)
	for k, vv := range h {
		if vv == nil {
			c[k] = nil
			continue
		}
		m := copy(values, vv)
		c[k] = values[:m:m]
		values = values[m:]
	}
	return c
}

// build computes the telemetry of a key, as otelhttp's semconv package
// does (HTTPClient.MetricAttributes, RequestTraceAttrs, ResponseTraceAttrs).
func (t *clientTransport) build(k clientKey) cached {
	host, port := splitHostPort(k.host)
	port = requiredPort(k.scheme == "https", port)
	protoName, protoVersion := netProtocol(k.proto)
	if !k.end {
		c := cached{name: clientSpanName(k.method)}
		method, original := spanMethod(k.method)
		c.attrs = append(c.attrs, method)
		if original.Valid() {
			c.attrs = append(c.attrs, original)
		}
		c.attrs = append(c.attrs, semconv.ServerAddress(host))
		if port > 0 {
			c.attrs = append(c.attrs, semconv.ServerPort(port))
		}
		c.attrs = spanProtocol(c.attrs, protoName, protoVersion)
		return c
	}
	var c cached
	if k.status > 0 {
		c.attrs = append(c.attrs, semconv.HTTPResponseStatusCode(k.status))
		if k.status >= 400 || k.status < 100 {
			c.attrs = append(c.attrs, semconv.ErrorTypeKey.String(strconv.Itoa(k.status)))
		}
		c.attrs = spanProtocol(c.attrs, protoName, protoVersion)
	}
	scheme := k.scheme
	if scheme == "" {
		scheme = "http"
	}
	m := metricAttrs(k.method, semconv.URLScheme(scheme), host, port, protoName, protoVersion, k.status)
	if k.status == 0 && k.errType != "" {
		m = append(m, semconv.ErrorTypeKey.String(k.errType))
	}
	c.record = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(m...))}
	return c
}

func clientSpanName(method string) string {
	switch method {
	case http.MethodGet:
		return "HTTP GET"
	case http.MethodPut:
		return "HTTP PUT"
	case http.MethodPost:
		return "HTTP POST"
	}
	return "HTTP " + method
}

// redactedURL is u without its user information.
func redactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.User != nil {
		c := *u
		c.User = nil
		return c.String()
	}
	return u.String()
}

// errorType is the error.type of a call that got no answer: the error's
// type, not unwrapped, so that the attribute's values stay few.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t == nil {
		return semconv.ErrorTypeOther.Value.AsString()
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		if s := t.String(); s != "" {
			return s
		}
		return semconv.ErrorTypeOther.Value.AsString()
	}
	return t.PkgPath() + "." + t.Name()
}

func ensureResponseBody(rt http.RoundTripper, r *http.Request, res *http.Response) (*http.Response, error) {
	switch {
	case res == nil:
		return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", rt)
	case res.Body != nil:
		return res, nil
	case res.ContentLength > 0 && r.Method != http.MethodHead:
		return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a *Response with content length %d but a nil Body", rt, res.ContentLength)
	default:
		res.Body = http.NoBody
		return res, nil
	}
}

// endingBody ends the client span when the answer's body is read to its
// end or closed; a read error marks the span failed.
type endingBody struct {
	span  trace.Span
	body  io.ReadCloser
	ended atomic.Bool
}

func newEndingBody(span trace.Span, body io.ReadCloser) io.ReadCloser {
	b := &endingBody{span: span, body: body}
	// A switched protocol's body is also the connection's writer.
	if _, ok := body.(io.ReadWriteCloser); ok {
		return endingReadWriter{b}
	}
	return b
}

func (b *endingBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

func (b *endingBody) fail(err error) {
	b.span.SetAttributes(semconv.ErrorType(err))
	b.span.SetStatus(codes.Error, err.Error())
}

func (b *endingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.end()
	default:
		b.fail(err)
	}
	return n, err
}

func (b *endingBody) Close() error {
	b.end()
	return b.body.Close()
}

type endingReadWriter struct{ *endingBody }

func (b endingReadWriter) Write(p []byte) (int, error) {
	n, err := b.body.(io.Writer).Write(p)
	if err != nil {
		b.fail(err)
	}
	return n, err
}

// --- shared ---

// cacheKey is a key made of a request's strings; owned copies them, so
// that a cached key does not keep the request's buffers alive.
type cacheKey[K any] interface {
	comparable
	owned() K
}

func (k serverKey) owned() serverKey {
	k.method, k.host, k.proto, k.pattern = strings.Clone(k.method), strings.Clone(k.host), strings.Clone(k.proto), strings.Clone(k.pattern)
	return k
}

func (k clientKey) owned() clientKey {
	k.method, k.host, k.scheme, k.proto = strings.Clone(k.method), strings.Clone(k.host), strings.Clone(k.scheme), strings.Clone(k.proto)
	return k
}

// cache maps a key to its telemetry, built once; at most maxCached keys
// are kept.
type cache[K cacheKey[K]] struct {
	mu sync.RWMutex
	m  map[K]cached
}

func (c *cache[K]) init() { c.m = make(map[K]cached) }

func (c *cache[K]) get(k K, build func(K) cached) cached {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(k)
	c.mu.Lock()
	if len(c.m) < maxCached {
		c.m[k.owned()] = v
	}
	c.mu.Unlock()
	return v
}

// headerCarrier is propagation.HeaderCarrier without the cost of
// canonicalising the propagators' lower-case keys on every Get and Set.
type headerCarrier http.Header

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

func (c headerCarrier) Get(key string) string {
	if v := c[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// metricAttrs are the attributes of a duration measurement that server and
// client share (the server adds http.route, the client error.type).
func metricAttrs(method string, scheme attribute.KeyValue, host string, port int, protoName, protoVersion string, status int) []attribute.KeyValue {
	m := make([]attribute.KeyValue, 0, 8)
	m = append(m, semconv.HTTPRequestMethodKey.String(metricMethod(method)), scheme, semconv.ServerAddress(host))
	if port > 0 {
		m = append(m, semconv.ServerPort(port))
	}
	if protoName != "" {
		m = append(m, semconv.NetworkProtocolName(protoName))
	}
	if protoVersion != "" {
		m = append(m, semconv.NetworkProtocolVersion(protoVersion))
	}
	if status > 0 {
		m = append(m, semconv.HTTPResponseStatusCode(status))
	}
	return m
}

// spanProtocol appends a span's protocol attributes: the name only when it
// is not the "http" the method implies.
func spanProtocol(attrs []attribute.KeyValue, name, version string) []attribute.KeyValue {
	if name != "" && name != "http" {
		attrs = append(attrs, semconv.NetworkProtocolName(name))
	}
	if version != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(version))
	}
	return attrs
}

// spanMethod is a span's http.request.method, and
// http.request.method.original when the method is not a standard one as
// sent.
func spanMethod(m string) (method, original attribute.KeyValue) {
	if m == "" {
		return semconv.HTTPRequestMethodOther, attribute.KeyValue{}
	}
	if std := metricMethod(m); std != "_OTHER" {
		if std == m {
			return semconv.HTTPRequestMethodKey.String(std), attribute.KeyValue{}
		}
		return semconv.HTTPRequestMethodKey.String(std), semconv.HTTPRequestMethodOriginal(m)
	}
	return semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(m)
}

// metricMethod is a metric's http.request.method: the standard method,
// upper-cased, or _OTHER.
func metricMethod(m string) string {
	m = strings.ToUpper(m)
	switch m {
	case http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
		http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// splitHostPort splits "host", "host:port", "[host]:port", ... into host
// (empty when there is none or it does not parse) and port (-1 when there
// is none or it does not parse).
func splitHostPort(hostport string) (host string, port int) {
	port = -1
	if strings.HasPrefix(hostport, "[") {
		end := strings.LastIndexByte(hostport, ']')
		if end < 0 {
			return "", port
		}
		if strings.LastIndexByte(hostport[end:], ':') < 0 {
			return hostport[1:end], port
		}
	} else if !strings.Contains(hostport, ":") {
		return hostport, port
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return host, port
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, port
	}
	return host, int(n)
}

// requiredPort is the port worth an attribute: not the scheme's default.
func requiredPort(https bool, port int) int {
	if port <= 0 || (https && port == 443) || (!https && port == 80) {
		return -1
	}
	return port
}

// netProtocol splits "HTTP/1.1" into "http" and "1.1".
func netProtocol(proto string) (name, version string) {
	name, version, _ = strings.Cut(proto, "/")
	return strings.ToLower(name), version
}

// httpRoute is a ServeMux pattern's path ("GET /a/{id}" is "/a/{id}").
func httpRoute(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

func seconds(d time.Duration) float64 { return float64(d) / float64(time.Second) }
