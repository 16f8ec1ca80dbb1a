// Package resilience is how one demo component calls another: every call has
// a timeout, idempotent calls are retried with exponential backoff and jitter,
// and every dependency has its own circuit breaker.
//
// The rules, and why (the Google SRE book's chapter on cascading failures):
//   - A deadline, not only a timeout. Each attempt is bounded by the nearer of
//     its own timeout and the caller's deadline, and the time left travels to
//     the next hop in TimeoutHeader, which serves the request under it. So no
//     hop works on a request its caller has given up on, and config
//     validation checks that each hop's Budget fits in its caller's timeout.
//   - Retries at one layer only. In the demo only the cache retries (its calls
//     to the store shards); the API and the edge make one attempt. A tier
//     whose own retries failed answers with NoRetryHeader, and a 502 (what
//     failed is behind the dependency) is never retried, so one user request
//     does not become attempts-to-the-power-of-layers calls on the shard.
//   - Retries only for idempotent methods (GET, HEAD, PUT, DELETE), and only
//     for failures that a new attempt may fix: no answer (refused, reset,
//     timed out), 503, 504. A 500 is the dependency's answer.
//   - A retry budget per client: retries are at most RetryBudget (10%) of
//     calls over time, plus a small burst. Under an outage the load on the
//     failing dependency grows by 10%, not by the attempt count.
//   - Retry-After is honoured: a retry never comes sooner than the answer
//     asked, and when that is longer than the backoff cap the call is not
//     retried at all; the caller degrades (stale copy) or fails at once.
//   - Backoff with full jitter, few attempts, so that retries spread out
//     instead of arriving as synchronised waves (retry storms).
//   - A circuit breaker per dependency (per shard for the store) opens after
//     consecutive failures (no answer, 503, 504) and fails calls at once while
//     open, which both protects the dependency and frees the caller to
//     degrade. After OpenTimeout one probe is let through (half-open); success
//     closes it again. 500 and 502 answers do not count: the dependency is up.
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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/burnrate/burnrate/demoapp/telemetry"

	"github.com/burnrate/burnrate/internal/retry"
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
	// RetryBudget is the fraction of calls that may be retried, over time;
	// RetryBurst the retries allowed at once (the bucket starts full).
	// Defaults 0.1 and 10, as the SRE book's per-client retry budget.
	RetryBudget float64
	RetryBurst  float64
}

// Budget is the longest a call can take: every attempt's timeout plus the
// longest backoff between them (the cap, jitter included). A caller's
// timeout must be longer, or its dependency's retries outlast it.
func (c Config) Budget() time.Duration {
	c = c.withDefaults()
	total := time.Duration(c.MaxAttempts) * c.Timeout
	wait := c.BackoffInitial
	for range c.MaxAttempts - 1 {
		total += min(c.BackoffMax, time.Duration(float64(wait)*1.5))
		wait *= 2
	}
	return total
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
	if c.RetryBudget <= 0 {
		c.RetryBudget = 0.1
	}
	if c.RetryBurst <= 0 {
		c.RetryBurst = 10
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
	attrs       metric.AddOption
	skipped     metric.AddOption
	budget      *budget
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

// NewTransport is the keep-alive pool for calls between tiers over the
// network: loopback only (never via a proxy), many idle connections per
// host, no compression.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		// No tier compresses its answers: asking for gzip on every call is
		// a header to write and parse on each side for nothing.
		DisableCompression: true,
	}
}

// NewPool builds the shared transport (base, instrumented when telemetry is
// on; NewTransport when nil) and the breaker gauge for one component.
func NewPool(tel *telemetry.Providers, base http.RoundTripper) (*Pool, error) {
	if base == nil {
		base = NewTransport()
	}
	p := &Pool{tel: tel}
	p.transport = tel.ClientTransport(base)
	meter := tel.Meter.Meter("github.com/burnrate/burnrate/demoapp/resilience")
	var err error
	p.retries, err = meter.Int64Counter("demo.client.retries",
		metric.WithDescription("Retries of idempotent calls by dependency and outcome: retried, or budget_exhausted (not made because the retry budget was spent)."))
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
		attrs:       metric.WithAttributes(attribute.String("dependency", name), attribute.String("outcome", "retried")),
		skipped:     metric.WithAttributes(attribute.String("dependency", name), attribute.String("outcome", "budget_exhausted")),
		budget:      &budget{ratio: cfg.RetryBudget, burst: cfg.RetryBurst, tokens: cfg.RetryBurst},
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

// serverError makes the breaker count an answer as a failure (503, 504:
// the dependency is unavailable or overloaded) while the caller still
// receives the answer.
type serverError struct{ resp *Response }

func (e *serverError) Error() string { return fmt.Sprintf("dependency answered %d", e.resp.Status) }

// ErrRetryBudget is reported (in the retries metric's reason) when a retry
// was not made because the client's retry budget was spent.
var ErrRetryBudget = errors.New("retry budget exhausted")

// budget is a token bucket of retries: every first attempt adds ratio of a
// token (up to burst), every retry takes a whole one. Under a total outage
// the retries are then at most ratio of the calls (plus burst), instead of
// multiplying the load on a dependency that is already failing.
type budget struct {
	mu            sync.Mutex
	tokens, ratio float64
	burst         float64
}

func (b *budget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+b.ratio)
	b.mu.Unlock()
}

func (b *budget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// retryAfter parses a Retry-After answer header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	return retry.After(h.Get("Retry-After"), now)
}

// Do calls the dependency. Any answer is returned as a Response, not an
// error; err is set when no answer came (timeout, refused, breaker open).
//
// A call is retried only when it is idempotent, the failure is one a new
// attempt may fix (no answer, 503, 504), the answer does not say
// NoRetryHeader, its Retry-After (if any) is no longer than the backoff cap
// and fits in the caller's deadline, the deadline leaves room for another
// attempt, and the retry budget has a token.
func (c *Client) Do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*Response, error) {
	attempts := 1
	if Idempotent(method) {
		attempts = c.cfg.MaxAttempts
	}
	c.budget.deposit()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.cfg.BackoffInitial
	b.MaxInterval = c.cfg.BackoffMax
	b.RandomizationFactor = 0.5 // jitter
	for n := 1; ; n++ {
		resp, err := c.breaker.Execute(func() (*Response, error) {
			return c.attempt(ctx, method, rawURL, body, header)
		})
		var se *serverError
		if errors.As(err, &se) {
			resp, err = se.resp, nil
		}
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return nil, fmt.Errorf("%s: %w", c.name, ErrBreakerOpen)
		case err != nil && !errors.As(err, new(retryable)):
			return nil, err
		case err == nil && !retryStatus(resp):
			return resp, nil
		}
		wait := b.NextBackOff()
		if resp != nil {
			if ra, ok := retryAfter(resp.Header, time.Now()); ok {
				if ra > c.cfg.BackoffMax {
					// The dependency asked for more time than a retry
					// within this call may take: honour it by not
					// retrying; the caller degrades or fails now.
					return resp, nil
				}
				wait = max(wait, ra)
			}
		}
		if n >= attempts || !c.roomFor(ctx, wait) {
			return resp, err
		}
		if !c.budget.withdraw() {
			c.retries.Add(ctx, 1, c.skipped)
			return resp, err
		}
		c.retries.Add(ctx, 1, c.attrs)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, err
		case <-t.C:
		}
	}
}

// retryStatus tells whether an answer is worth another attempt: 503 and 504
// say the dependency is unavailable or overloaded right now, unless it
// added NoRetryHeader. A 502 is not retried: the dependency answered, and
// what failed is behind it, where the layer that owns it has retried
// already; retrying it here would multiply attempts across layers.
func retryStatus(r *Response) bool {
	if r.Header.Get(NoRetryHeader) != "" {
		return false
	}
	return r.Status == http.StatusServiceUnavailable || r.Status == http.StatusGatewayTimeout
}

// roomFor tells whether ctx's deadline leaves time to wait and make one
// more attempt of a useful length.
func (c *Client) roomFor(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx.Err() == nil
	}
	return time.Until(dl) > wait+c.cfg.Timeout/4
}

func (c *Client) attempt(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	dl, _ := ctx.Deadline() // the nearer of the caller's and this attempt's
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
	SetTimeoutHeader(req.Header, time.Until(dl))
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
	if r.StatusCode == http.StatusServiceUnavailable || r.StatusCode == http.StatusGatewayTimeout {
		// Unavailable or overloaded: counts against the breaker. A 500 is
		// the dependency's own answer and a 502 is about what is behind it;
		// neither says this dependency is down.
		return resp, &serverError{resp: resp}
	}
	return resp, nil
}
