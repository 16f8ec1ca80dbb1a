package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/retry"
)

func TestRetryAfterIsSecondsOrAnHTTPDate(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero seconds", "0", 0, true},
		{"an HTTP date ahead", "Mon, 02 Mar 2026 10:00:30 GMT", 30 * time.Second, true},
		{"an HTTP date passed is no wait", "Mon, 02 Mar 2026 09:00:00 GMT", 0, true},
		{"empty is no answer", "", 0, false},
		{"negative seconds are no answer", "-5", 0, false},
		{"garbage is no answer", "soon", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := retry.After(tc.in, now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBackoffDoublesWithinItsJitterAndStopsAtTheCap(t *testing.T) {
	for attempt := 1; attempt <= 10; attempt++ {
		base := min(time.Second<<(attempt-1), 30*time.Second)
		for range 50 {
			d := retry.Backoff(attempt, time.Second, 30*time.Second)
			require.GreaterOrEqual(t, d, base/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, base*3/2, "attempt %d", attempt)
		}
	}
}
