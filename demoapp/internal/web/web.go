// Package web holds the HTTP plumbing the demo components share: JSON
// answers, injected faults applied to a handler, and the instrumented
// server wrapper with the span names and options every tier uses.
package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// RequestIDHeader carries the request ID the edge assigns, to every hop.
// It is spelt in canonical form: Header.Get and Set then use it as the map
// key as it is, where "X-Request-ID" cost a new string on every call, on
// every hop; and a header map built with it as a literal key is found by
// Get. The wire form is the same (HTTP header names are case-insensitive).
const RequestIDHeader = "X-Request-Id"

// JSON writes v with status code.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Error writes {"error": msg} with status code.
func Error(w http.ResponseWriter, code int, msg string) {
	JSON(w, code, map[string]string{"error": msg})
}

// Sleep waits d or until ctx ends, and reports whether it waited in full.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// HealthPath is every tier's readiness check, polled by its caller.
const HealthPath = "/healthz"

// Faulty applies component c's latency and error-fraction faults before next.
// The health check is exempt: an error or latency fault breaks the traffic
// it names, not the check that decides whether the tier gets traffic at all
// (that is api.unready). Otherwise api.error_fraction=1 would take every
// replica out of rotation and users would see 503 "no healthy replica"
// instead of the injected 500s, and fractions below 1 would make replicas
// flap.
func Faulty(set *faults.Set, c faults.Component, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthPath {
			next.ServeHTTP(w, r)
			return
		}
		st := set.State()
		if !Sleep(r.Context(), st.Latency[c]) {
			Error(w, http.StatusServiceUnavailable, "request cancelled")
			return
		}
		if st.Fail(c) {
			Error(w, http.StatusInternalServerError, "injected failure ("+c.String()+".error_fraction)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Server instruments h (telemetry.Providers.Handler): a server span (child
// of the caller's span through W3C trace context) named by the matched
// pattern, and the semantic-convention HTTP server metrics
// (http.server.request.duration with method, status code and route).
// Spans and metrics carry the tier's name as the providers' service.name.
//
// The deadline from the caller's X-Request-Timeout-Ms is applied outside
// the instrumentation: inside, it served a copy of the request, so the
// pattern the routes matched never reached the span name or http.route.
func Server(h http.Handler, tel *telemetry.Providers) http.Handler {
	return resilience.WithDeadline(tel.Handler(h, telemetry.HandlerOptions{
		// Health checks are the edge's polling, not traffic: they would drown
		// the trace store and skew the latency SLOs.
		Skip: func(r *http.Request) bool { return r.URL.Path == HealthPath },
		SpanName: func(method, pattern string) string {
			if pattern != "" {
				return pattern
			}
			return method
		},
	}))
}
