package resilience

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// TimeoutHeader carries the time a caller has left for a call, in
// milliseconds, to the next hop, which serves the request under that
// deadline (gRPC's grpc-timeout, over HTTP). A deadline, unlike a fixed
// per-hop timeout, shrinks as the request travels inward, so no hop keeps
// working on a request its caller has already given up on.
const TimeoutHeader = "X-Request-Timeout-Ms"

// NoRetryHeader, on an answer, tells the caller not to retry: the tier has
// retried already or is overloaded ("overloaded; don't retry" in the SRE
// book), so one layer only retries a failure.
const NoRetryHeader = "X-No-Retry"

// SetTimeoutHeader sets TimeoutHeader to d (at least 1ms).
func SetTimeoutHeader(h http.Header, d time.Duration) {
	h.Set(TimeoutHeader, strconv.FormatInt(max(1, d.Milliseconds()), 10))
}

// WithDeadline serves every request under the deadline its caller sent in
// TimeoutHeader, if any. A value that does not parse is ignored.
func WithDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(TimeoutHeader); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 && ms < 24*3600*1000 {
				ctx, cancel := context.WithTimeout(r.Context(), time.Duration(ms)*time.Millisecond)
				defer cancel()
				r = r.WithContext(ctx)
			}
		}
		next.ServeHTTP(w, r)
	})
}
