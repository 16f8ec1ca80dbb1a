package tracestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestFailedFsyncIsRetriedAndCounted makes the first fsync of a segment
// fail and requires it counted, reported, and retried at the next sync
// until it succeeds.
func TestFailedFsyncIsRetriedAndCounted(t *testing.T) {
	var calls []string
	fail := true
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{Sync: func(f *os.File) error {
		calls = append(calls, filepath.Base(f.Name()))
		if fail {
			fail = false
			return errors.New("EIO")
		}
		return f.Sync()
	}})
	defer func() { _ = s.Close() }()
	appendAll(t, s.Store, checkoutBatches()...)

	err := s.sync()
	require.ErrorContains(t, err, "EIO")
	require.Equal(t, 1.0, counter(t, s.m.fsyncFailures))
	require.NoError(t, s.sync(), "retried")
	require.Len(t, calls, 2)
	require.Equal(t, calls[0], calls[1], "the same segment again")
	require.NoError(t, s.sync())
	require.Len(t, calls, 2, "nothing left to sync")
}

// TestSealingASegmentDoesNotWaitForTheDisk blocks fsync and requires
// appends that seal segments to go on: the sealed segment is fsynced by the
// next sync, outside the store's lock.
func TestSealingASegmentDoesNotWaitForTheDisk(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Int32
	s := openTest(t, t.TempDir(), DefaultConfig(), Options{SegmentBytes: 1, Sync: func(f *os.File) error {
		blocked.Add(1)
		<-release
		return f.Sync()
	}})
	appendAll(t, s.Store, checkoutBatches()[0])
	syncDone := make(chan error)
	go func() { syncDone <- s.sync() }()
	require.Eventually(t, func() bool { return blocked.Load() == 1 }, 10*time.Second, time.Millisecond)
	// Each of these seals the segment before it (SegmentBytes is 1).
	appendAll(t, s.Store, checkoutBatches()...)
	require.GreaterOrEqual(t, s.Stats().Segments, 3)
	close(release)
	require.NoError(t, <-syncDone)
	require.NoError(t, s.sync())
	require.NoError(t, s.Close())
}

// TestRetentionDeletesDamagedSegmentsSetAside requires the unreadable
// segment files Open sets aside (.corrupt) to go once they are older than
// the retention, and the recent ones to stay for inspection.
func TestRetentionDeletesDamagedSegmentsSetAside(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	cfg := DefaultConfig()
	old, recent := filepath.Join(dir, "0000000001.seg.corrupt"), filepath.Join(dir, "0000000002.seg.corrupt")
	for _, p := range []string{old, recent} {
		require.NoError(t, os.WriteFile(p, []byte("damaged"), 0o640))
	}
	require.NoError(t, os.Chtimes(old, t0.Add(-cfg.Retention-time.Minute), t0.Add(-cfg.Retention-time.Minute)))
	require.NoError(t, os.Chtimes(recent, t0.Add(-time.Minute), t0.Add(-time.Minute)))

	s := openTest(t, dir, cfg, Options{Now: c.Now})
	defer func() { _ = s.Close() }()
	require.NoFileExists(t, old)
	require.FileExists(t, recent)
	c.Advance(cfg.Retention)
	s.mu.Lock()
	s.applyRetention(c.Now())
	s.mu.Unlock()
	require.NoFileExists(t, recent)
	require.Equal(t, 2.0, counter(t, s.m.deleted.WithLabelValues("corrupt")))
}
