package resilience_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/resilience"
)

// Every header on a hop is written by one tier and parsed by the next; the
// tiers never compress, so the transport's automatic "Accept-Encoding: gzip"
// was work on both sides for nothing. What the caller sends still goes.
func TestCallsBetweenTiersSendOnlyTheHeadersTheyNeed(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer srv.Close()
	c := pool(t).Client("dep", resilience.Config{}, nil)
	_, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, http.Header{"X-Request-Id": {"r1"}})
	require.NoError(t, err)
	h := <-got
	require.Empty(t, h.Get("Accept-Encoding"), "no gzip asked of a tier that never compresses")
	require.Equal(t, "r1", h.Get("X-Request-Id"))
	require.NotEmpty(t, h.Get(resilience.TimeoutHeader), "the deadline still travels")
}
