// Package httpserver runs the single HTTP listener of a Burnrate process.
//
// Every component mounts its handlers on one mux so that operators have one
// address to remember, one place for health checks and one /metrics page. The
// server binds its socket in New, so the real address is known (and can be
// printed or used by tests) before Run starts serving.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the listener.
type Config struct {
	// Listen is the TCP address, host:port. Port 0 picks a free port.
	Listen string `mapstructure:"listen"`
	// Token, when set, is the bearer token that mutating requests under /api/
	// must carry. Read requests and health checks stay open.
	Token string `mapstructure:"token" secret:"true"`
	// Tokens are the named API tokens (api_tokens): a mutating request
	// needs one with the write scope (or admin), and the token's name is
	// the actor recorded for the change.
	Tokens []Token `mapstructure:"tokens"`
	// ShutdownTimeout bounds how long in-flight requests may drain.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// ReadTimeout bounds the time from the start of a request to the end
	// of its body, so a trickled body cannot hold a handler. It does not
	// cut a long query short: net/http lifts it once the body is in.
	// Ingest routes set their own (collector.ingest.body_timeout).
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds the time from a request's headers to the end of
	// its response, so it must exceed the longest query
	// (collector.query.timeout).
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
}

// Defaults of the listener's timeouts.
const (
	DefaultReadTimeout  = time.Minute
	DefaultWriteTimeout = 5 * time.Minute
	DefaultIdleTimeout  = 2 * time.Minute
)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Listen == "" {
		return errors.New("listen: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err)
	}
	for key, d := range map[string]time.Duration{
		"shutdown_timeout": c.ShutdownTimeout,
		"read_timeout":     c.ReadTimeout,
		"write_timeout":    c.WriteTimeout,
		"idle_timeout":     c.IdleTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative", key)
		}
	}
	return ValidateTokens(c.Tokens)
}

// ReadyFunc reports whether a component can serve; a non-nil error says why not.
type ReadyFunc func() error

// Server is the process's HTTP listener and mux.
type Server struct {
	cfg    Config
	logger *slog.Logger
	ln     net.Listener
	mux    *http.ServeMux
	srv    *http.Server

	mu     sync.Mutex
	checks []namedCheck
	auth   *Authenticator

	// fresh holds connections accepted but not yet carrying a request.
	// http.Server.Shutdown waits up to 5 s for those as if they were busy;
	// they carry nothing, so Shutdown closes them at once.
	connMu sync.Mutex
	fresh  map[net.Conn]struct{}
}

type namedCheck struct {
	name string
	fn   ReadyFunc
}

// New binds the listener and registers /-/healthy, /-/ready, /metrics and
// /debug/pprof/. reg is the registry of the stack's own metrics; gatherer
// serves it (usually the same prometheus.Registry).
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 4 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, logger: logger, ln: ln, mux: http.NewServeMux(), fresh: map[net.Conn]struct{}{}}

	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "burnrate_http_requests_total",
		Help: "HTTP requests served by the main listener, by handler pattern and status code.",
	}, []string{"handler", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            "burnrate_http_request_duration_seconds",
		Help:                            "Latency of HTTP requests served by the main listener, by handler pattern.",
		Buckets:                         prometheus.DefBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"handler"})
	if reg != nil {
		for _, c := range []prometheus.Collector{requests, duration} {
			if err := reg.Register(c); err != nil {
				ln.Close()
				return nil, fmt.Errorf("register http metrics: %w", err)
			}
		}
	}

	s.mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Burnrate is Healthy.")
	})
	s.mux.HandleFunc("GET /-/ready", s.serveReady)
	if gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	}
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	var handler http.Handler = s.mux
	s.auth = NewAuthenticator(cfg.Token, cfg.Tokens)
	handler = requireToken(s.auth, handler)
	handler = instrument(s.mux, requests, duration, handler)
	s.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ConnState:         s.trackConn,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the bound address, with the real port when Listen asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL of the listener, for printing and for tests.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Handle mounts h on the mux. Patterns follow net/http.ServeMux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddReadyCheck makes /-/ready depend on fn; the server is ready only when
// every check returns nil.
func (s *Server) AddReadyCheck(name string, fn ReadyFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, namedCheck{name: name, fn: fn})
}

// Ready returns nil when every component reports ready.
func (s *Server) Ready() error {
	s.mu.Lock()
	checks := append([]namedCheck(nil), s.checks...)
	s.mu.Unlock()
	var errs []error
	for _, c := range checks {
		if err := c.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if err := s.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "Burnrate is not ready.\n%v\n", err)
		return
	}
	fmt.Fprintln(w, "Burnrate is Ready.")
}

// Run serves until Shutdown is called. It returns nil after a graceful stop.
func (s *Server) Run() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits up to ShutdownTimeout for
// in-flight requests; after that remaining connections are closed.
func (s *Server) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(ctx) }()
	// Shutdown has stopped accepting by the time it polls; close what was
	// accepted but never sent a request, so it does not hold the drain.
	time.Sleep(10 * time.Millisecond)
	s.closeFresh()
	if err := <-done; err != nil {
		s.logger.Warn("http drain timed out; closing remaining connections", "err", err)
		_ = s.srv.Close()
	}
}

func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state == http.StateNew {
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
}

func (s *Server) closeFresh() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.fresh {
		_ = c.Close()
		delete(s.fresh, c)
	}
}

// Close releases the listener of a server that never ran (start-up failed
// after New). A running server is stopped with Shutdown instead.
func (s *Server) Close() { _ = s.ln.Close() }

// requireToken guards mutating requests under /api/ with a bearer token
// that holds the write scope, and attaches the request's principal (the
// token's name and scopes) to its context for every request that carries
// a known token. Reads, health checks, metrics and the UI stay open, as in
// Prometheus. Slack's endpoints (/api/v1/slack/) authenticate every request
// by its signature instead: Slack cannot send a bearer token. Handlers that
// need another scope (gate exceptions, reloads) check it themselves.
func requireToken(auth *Authenticator, next http.Handler) http.Handler {
	if !auth.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.Authenticate(BearerSecret(r))
		if p != nil {
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		if isMutating(r.Method) && strings.HasPrefix(r.URL.Path, "/api/") && !isReadOnlyPost(r.URL.Path) &&
			!strings.HasPrefix(r.URL.Path, "/api/v1/slack/") {
			if p == nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="burnrate"`)
				WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
				return
			}
			if !p.Can(ScopeWrite) && !p.Can(ScopeGateGrant) && !p.Can(ScopeIngest) {
				WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %q lacks the %q scope", p.Name, ScopeWrite))
				return
			}
			if !p.Can(ScopeWrite) && !scopedRoute(r.URL.Path) {
				WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %q lacks the %q scope", p.Name, ScopeWrite))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// scopedRoute lists the mutating paths whose handlers check a scope other
// than write themselves: gate exceptions (gate:grant) and ingest (ingest).
func scopedRoute(path string) bool {
	return strings.HasPrefix(path, "/api/v1/gate/exceptions") || path == "/api/v1/write" ||
		path == "/api/v1/otlp/v1/metrics" || path == "/api/v1/otlp/v1/traces"
}

// Auth is the server's authenticator, for handlers that check a scope of
// their own (Authenticator.RequireScope).
func (s *Server) Auth() *Authenticator { return s.auth }

func isMutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// isReadOnlyPost lists the Prometheus query endpoints that accept POST only
// because queries can be longer than a URL. Grafana posts to them by default.
func isReadOnlyPost(path string) bool {
	switch path {
	case "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
		"/api/v1/query_exemplars", "/api/v1/format_query", "/api/v1/parse_query":
		return true
	}
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush lets streaming handlers (pprof, event streams) flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument counts requests by mux pattern, never by raw path, so that IDs in
// URLs cannot explode the stack's own series count.
func instrument(mux *http.ServeMux, requests *prometheus.CounterVec, duration *prometheus.HistogramVec, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		_, pattern := mux.Handler(r)
		if pattern == "" {
			pattern = "unmatched"
		}
		requests.WithLabelValues(pattern, fmt.Sprint(rec.code)).Inc()
		duration.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
	})
}
