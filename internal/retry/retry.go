// Package retry holds the one retry policy of Burnrate's senders: how long
// a Retry-After answer asks a sender to wait, and exponential backoff with
// jitter between attempts.
//
// Every sender that retries (the notification outbox, the trace
// forwarder, the demo platform's resilient client) reads Retry-After here,
// so "seconds or an HTTP date" means the same everywhere.
package retry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// After parses a Retry-After header value, delta-seconds or an HTTP date
// (RFC 9110, section 10.2.3), as a wait from now. It reports false when v
// is empty or neither; a date in the past is a wait of zero.
func After(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Backoff is the delay before attempt number attempt+1 (attempt counts
// the attempts made, from 1): exponential from initial, doubled each time,
// capped at maxDelay, with ±50% jitter so that many senders failing
// together do not retry in lockstep.
func Backoff(attempt int, initial, maxDelay time.Duration) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         maxDelay,
	}
	b.Reset()
	var d time.Duration
	for range min(max(attempt, 1), 64) {
		d = b.NextBackOff()
	}
	return d
}
