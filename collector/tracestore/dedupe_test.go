package tracestore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetriedBatchIsStoredOnce appends a batch twice, as an SDK does when
// its export timed out after the store took it, and requires each span once
// in the trace, the retry answered as accepted, and the duplicates counted.
func TestRetriedBatchIsStoredOnce(t *testing.T) {
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{})
	defer func() { _ = s.Close() }()
	b := checkoutBatches()
	appendAll(t, s.Store, b...)
	appendAll(t, s.Store, b[1]) // the retry: no rejection for the sender

	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	require.Equal(t, 2.0, counter(t, s.m.duplicates))
	td, err = s.Trace(context.Background(), traceID(traceB))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/GET /items"}, spanNames(td))
}

// TestBatchLargerThanMaxBytesIsRefused requires a batch that could never fit
// in max_bytes to be refused with its span count, not written and then
// deleted at once by the size retention together with everything else.
func TestBatchLargerThanMaxBytesIsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes = 1 << 20
	s := openTest(t, t.TempDir(), cfg, Options{})
	defer func() { _ = s.Close() }()
	appendAll(t, s.Store, checkoutBatches()...)

	var spans []span
	for i := range 300 {
		spans = append(spans, span{service: "demo-api", name: "big " + strings.Repeat("x", 4096), trace: fmt.Sprintf("%032x", i+1), id: "1111111111111111", dur: time.Millisecond})
	}
	rejected, err := s.Append(context.Background(), batch(spans...))
	require.NoError(t, err)
	require.Equal(t, 300, rejected)
	require.Equal(t, 300.0, counter(t, s.m.rejected.WithLabelValues("too_large")))
	_, err = s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err, "what was stored before is still there")
	_, err = s.Trace(context.Background(), traceID(fmt.Sprintf("%032x", 1)))
	require.ErrorIs(t, err, ErrNotFound)
}
