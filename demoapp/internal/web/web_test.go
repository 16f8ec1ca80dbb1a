package web

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A header name that is not in canonical form costs a new string on every
// Get and Set (four per hop for the request ID), and a map literal keyed
// with it is not found by Get.
func TestTheRequestIDHeaderIsSpeltCanonicallySoLookupsDoNotAllocate(t *testing.T) {
	require.Equal(t, http.CanonicalHeaderKey(RequestIDHeader), RequestIDHeader)
	h := http.Header{RequestIDHeader: {"r1"}}
	require.Equal(t, "r1", h.Get(RequestIDHeader), "a literal key is found by Get")
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = h.Get(RequestIDHeader) }))
}
