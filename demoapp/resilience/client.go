// Package resilience is how one demo component calls another: every call has
// a timeout, idempotent calls are retried with exponential backoff and jitter,
// and every dependency has its own circuit breaker.
//
// The rules, and why:
//   - Timeout on every attempt. A hop without one turns a slow dependency into
//     a pile of stuck goroutines upstream; the edge's budget is split across
//     hops so that an inner hop gives up before its caller does.
//   - Retries only for idempotent methods (GET, HEAD, PUT, DELETE). Retrying a
//     POST that timed out may place the order twice. Only failures that a new
//     attempt can fix are retried: connection errors, timeouts, 502, 503, 504.
//     A 500 is the dependency's answer, not a transport accident.
//   - Backoff with full jitter, few attempts, so that retries spread out
//     instead of arriving as synchronised waves that keep a recovering
//     dependency down (retry storms).
//   - A circuit breaker per dependency (per shard for the store) opens after
//     consecutive failures and fails calls at once while open, which both
//     protects the dependency and frees the caller to degrade (serve stale).
//     After OpenTimeout one probe is let through (half-open); success closes
//     it again.
package resilience

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// ErrBreakerOpen is returned, without calling the dependency, while its
// circuit breaker is open (or half-open and already probing).
var ErrBreakerOpen = errors.New("circuit breaker open")

// UnreachableAddr is where calls go while a dependency is marked unreachable:
// a loopback port nothing listens on, so the failure is a real refused
// connection on the wire.
const UnreachableAddr = "127.0.0.1:1"

// Config tunes a client. Zero fields take the defaults noted.
type Config struct {
	// Timeout bounds each attempt. Default 1s.
	Timeout time.Duration
	// MaxAttempts bounds attempts of idempotent calls, including the first.
	// Default 3.
	MaxAttempts int
	// BackoffInitial and BackoffMax shape the exponential backoff. Defaults
	// 10ms and 200ms.
	BackoffInitial, BackoffMax time.Duration
	// FailuresToOpen consecutive failures open the breaker. Default 5.
	FailuresToOpen uint32
	// OpenTimeout is how long the breaker stays open before probing. Default 2s.
	OpenTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = 10 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 200 * time.Millisecond
	}
	if c.FailuresToOpen == 0 {
		c.FailuresToOpen = 5
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 2 * time.Second
	}
	return c
}

// Response is a dependency's answer, body read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client calls one dependency.
type Client struct {
	name        string
	cfg         Config
	http        *http.Client
	breaker     *gobreaker.CircuitBreaker[*Response]
	unreachable func() bool
	retries     metric.Int64Counter
	attrs       metric.MeasurementOption
}

// Pool holds the clients of one component and reports their breaker states
// as the demo.breaker.state gauge (0 closed, 1 half-open, 2 open).
type Pool struct {
	tel       *telemetry.Providers
	transport http.RoundTripper
	retries   metric.Int64Counter

	mu      sync.Mutex
	clients []*Client
}

// NewPool builds the shared transport (instrumented with otelhttp when
// telemetry is on) and the breaker gauge for one component.
func NewPool(tel *telemetry.Providers) (*Pool, error) {
	base := &http.Transport{
		Proxy:               nil, // loopback only; never via a proxy
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	p := &Pool{tel: tel}
	p.transport = otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tel.Tracer),
		otelhttp.WithMeterProvider(tel.Meter),
		otelhttp.WithPropagators(tel.Propagator),
	)
	meter := tel.Meter.Meter("github.com/burnrate/burnrate/demoapp/resilience")
	var err error
	p.retries, err = meter.Int64Counter("demo.client.retries",
		metric.WithDescription("Retried attempts of idempotent calls, by dependency."))
	if err != nil {
		return nil, fmt.Errorf("resilience metrics: %w", err)
	}
	_, err = meter.Int64ObservableGauge("demo.breaker.state",
		metric.WithDescription("Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, c := range p.clients {
				o.Observe(breakerValue(c.breaker.State()), metric.WithAttributes(attribute.String("dependency", c.name)))
			}
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("resilience metrics: %w", err)
	}
	return p, nil
}

func breakerValue(s gobreaker.State) int64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// Client returns a client for dependency name. unreachable, when it returns
// true, sends calls to UnreachableAddr (the dependency.unreachable fault).
func (p *Pool) Client(name string, cfg Config, unreachable func() bool) *Client {
	cfg = cfg.withDefaults()
	c := &Client{
		name:        name,
		cfg:         cfg,
		http:        &http.Client{Transport: p.transport},
		unreachable: unreachable,
		retries:     p.retries,
		attrs:       metric.WithAttributes(attribute.String("dependency", name)),
	}
	c.breaker = gobreaker.NewCircuitBreaker[*Response](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= cfg.FailuresToOpen
		},
		// A caller that gave up (its own deadline) says nothing about the
		// dependency's health.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	})
	p.mu.Lock()
	p.clients = append(p.clients, c)
	p.mu.Unlock()
	return c
}

// Name is the dependency this client calls.
func (c *Client) Name() string { return c.name }

// BreakerState is the breaker's current state: "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// Idempotent tells whether a method may be retried safely.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// retryable marks a failure that a new attempt may fix.
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// serverError makes the breaker count a 5xx answer as a failure while the
// caller still receives the answer.
type serverError struct{ resp *Response }

func (e *serverError) Error() string { return fmt.Sprintf("dependency answered %d", e.resp.Status) }

// Do calls the dependency. A 5xx answer is returned as a Response, not an
// error; err is set when no answer came (timeout, refused, breaker open).
func (c *Client) Do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*Response, error) {
	attempts := 1
	if Idempotent(method) {
		attempts = c.cfg.MaxAttempts
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.cfg.BackoffInitial
	b.MaxInterval = c.cfg.BackoffMax
	b.RandomizationFactor = 0.5 // jitter
	n := 0
	resp, err := backoff.Retry(ctx, func() (*Response, error) {
		if n > 0 {
			c.retries.Add(ctx, 1, c.attrs)
		}
		n++
		resp, err := c.breaker.Execute(func() (*Response, error) {
			return c.attempt(ctx, method, rawURL, body, header)
		})
		var se *serverError
		switch {
		case errors.As(err, &se):
			if se.resp.Status == http.StatusBadGateway || se.resp.Status == http.StatusServiceUnavailable ||
				se.resp.Status == http.StatusGatewayTimeout {
				return se.resp, err
			}
			return se.resp, nil
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return nil, backoff.Permanent(fmt.Errorf("%s: %w", c.name, ErrBreakerOpen))
		case err != nil:
			var r retryable
			if errors.As(err, &r) {
				return nil, err
			}
			return nil, backoff.Permanent(err)
		}
		return resp, nil
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(attempts)), backoff.WithMaxElapsedTime(0))
	var se *serverError
	if errors.As(err, &se) {
		return se.resp, nil
	}
	return resp, err
}

func (c *Client) attempt(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.unreachable != nil && c.unreachable() {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, err
		}
		u.Host = UnreachableAddr
		rawURL = u.String()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	r, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, err // the caller gave up
		}
		return nil, retryable{fmt.Errorf("%s: %w", c.name, err)}
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, retryable{fmt.Errorf("%s: read answer: %w", c.name, err)}
	}
	resp := &Response{Status: r.StatusCode, Header: r.Header, Body: data}
	if r.StatusCode >= 500 {
		return resp, &serverError{resp: resp}
	}
	return resp, nil
}
