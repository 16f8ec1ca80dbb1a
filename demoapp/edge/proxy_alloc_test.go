package edge_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/edge"
)

// The proxy's body copy must not cost a fresh 32 KiB buffer per request:
// at the demo's rates that was a third of every byte the request path
// allocated, and the collector's work that came with it.
func TestTheProxyReusesItsCopyBuffersAcrossRequests(t *testing.T) {
	body := strings.Repeat("p", 2048)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	}))
	defer api.Close()
	e, _ := newEdge(t, edge.Config{RateLimit: 1e9, Burst: 1 << 30, MaxConcurrent: 64}, nil, api.URL)
	h := e.Handler()
	serve := func() {
		rec := httptest.NewRecorder()
		rec.Body = bytes.NewBuffer(make([]byte, 0, 4096))
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/products/1", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, body, rec.Body.String(), "the body arrives whole through pooled buffers")
	}
	for range 20 {
		serve()
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		serve()
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per proxied request (edge and upstream together)", perRequest)
	require.Less(t, perRequest, uint64(45<<10), "about 29 KiB with the pool, 61 KiB with a fresh 32 KiB buffer per request")
}

// Read on every request: in canonical form, Header.Get does not allocate.
func TestTheClientIDHeaderIsSpeltCanonically(t *testing.T) {
	require.Equal(t, http.CanonicalHeaderKey(edge.ClientIDHeader), edge.ClientIDHeader)
}
