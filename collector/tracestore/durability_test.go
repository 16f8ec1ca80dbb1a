package tracestore

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	require.NoError(t, err)
	return m
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segmentFiles(t, dir) {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		n += fi.Size()
	}
	return n
}

// copyDir copies the segment files as a crash would leave them: whatever
// write(2) handed to the kernel, with no Close.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, p := range segmentFiles(t, src) {
		in, err := os.Open(p)
		require.NoError(t, err)
		out, err := os.Create(filepath.Join(dst, filepath.Base(p)))
		require.NoError(t, err)
		_, err = io.Copy(out, in)
		require.NoError(t, err)
		_ = in.Close()
		require.NoError(t, out.Close())
	}
	return dst
}

func present(s *Store, ids ...string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		_, err := s.Trace(context.Background(), traceID(id))
		out[id] = err == nil
	}
	return out
}

func TestRetentionByAgeDeletesWholeOldSegments(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	cfg := DefaultConfig()
	cfg.Retention = time.Hour
	s := openTest(t, dir, cfg, Options{Now: c.Now, SegmentDuration: 10 * time.Minute})
	defer func() { _ = s.Close() }()

	b := checkoutBatches()
	appendAll(t, s.Store, b[0]) // traceA's edge span at t0
	c.Advance(5 * time.Minute)
	appendAll(t, s.Store, b[1], b[2]) // the rest of traceA, and traceB, at t0+5m
	c.Advance(25 * time.Minute)
	appendAll(t, s.Store, batch(span{service: "demo-cache", name: "GET", trace: traceC, id: "cccccccccccccccc"}))
	require.Len(t, segmentFiles(t, dir), 2, "the first segment was sealed after 10m")

	c.Advance(34 * time.Minute) // t0+64m: the first batch is 64m old, the segment's newest 59m
	s.applyRetention(c.Now())
	require.Equal(t, map[string]bool{traceA: true, traceB: true, traceC: true}, present(s.Store, traceA, traceB, traceC),
		"a segment goes only when its newest batch is past retention")

	c.Advance(2 * time.Minute) // t0+66m
	s.applyRetention(c.Now())
	require.Equal(t, map[string]bool{traceA: false, traceB: false, traceC: true}, present(s.Store, traceA, traceB, traceC))
	require.Len(t, segmentFiles(t, dir), 1)
	require.Empty(t, s.Search(Query{Service: "demo-edge"}))
	require.InDelta(t, 1, counter(t, s.m.deleted.WithLabelValues("age")), 0)

	c.Advance(time.Hour) // the store was idle for longer than retention
	s.applyRetention(c.Now())
	require.Equal(t, map[string]bool{traceC: false}, present(s.Store, traceC))
	require.Equal(t, 0, s.Stats().Traces)
	appendAll(t, s.Store, checkoutBatches()...)
	require.Equal(t, map[string]bool{traceA: true}, present(s.Store, traceA), "the store keeps working after emptying")
}

func TestRetentionBySizeKeepsTheFilesUnderMaxBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.MaxBytes = 1 << 20
	s := openTest(t, dir, cfg, Options{})
	first, last := "", ""
	for i := range 2000 {
		var spans []span
		for j := range 5 {
			spans = append(spans, span{
				service: "demo-api", name: "GET /items", trace: fmt.Sprintf("%032x", i+1), id: fmt.Sprintf("%016x", j+1),
				start: time.Duration(i) * time.Millisecond, dur: time.Millisecond,
			})
		}
		appendAll(t, s.Store, batch(spans...))
		if i == 0 {
			first = fmt.Sprintf("%032x", i+1)
		}
		last = fmt.Sprintf("%032x", i+1)
		require.LessOrEqual(t, s.Stats().Bytes, cfg.MaxBytes)
	}
	require.LessOrEqual(t, dirBytes(t, dir), cfg.MaxBytes)
	require.Equal(t, dirBytes(t, dir), s.Stats().Bytes, "the size accounting matches the files")
	require.Equal(t, map[string]bool{first: false, last: true}, present(s.Store, first, last))
	require.Positive(t, counter(t, s.m.deleted.WithLabelValues("size")))
	kept := s.Stats().Traces
	require.Greater(t, kept, 100)
	require.NoError(t, s.Close())

	s = openTest(t, dir, cfg, Options{})
	defer func() { _ = s.Close() }()
	require.Equal(t, kept, s.Stats().Traces)
	require.Equal(t, map[string]bool{first: false, last: true}, present(s.Store, first, last))
}

func TestRunAppliesRetentionAndSyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := DefaultConfig()
		cfg.Retention = time.Minute
		s := openTest(t, dir, cfg, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()

		appendAll(t, s.Store, checkoutBatches()...)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Equal(t, map[string]bool{traceA: true}, present(s.Store, traceA))
		s.mu.RLock()
		require.Empty(t, s.unsynced, "Run fsyncs within a second")
		s.mu.RUnlock()

		time.Sleep(45 * time.Second) // past retention plus one retention tick
		synctest.Wait()
		require.Equal(t, map[string]bool{traceA: false}, present(s.Store, traceA))

		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Close())
	})
}

func TestCrashLosesNoAcceptedBatch(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	defer func() { _ = s.Close() }()
	appendAll(t, s.Store, checkoutBatches()...)

	// The store is still open: no Close, no fsync.
	crashed := openTest(t, copyDir(t, dir), DefaultConfig(), Options{})
	defer func() { _ = crashed.Close() }()
	td, err := crashed.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	require.Equal(t, s.Search(Query{}), crashed.Search(Query{}))
}

func TestTornTailIsSkippedNotFatal(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	defer func() { _ = s.Close() }()
	b := checkoutBatches()
	appendAll(t, s.Store, b[0], b[1])
	sizeBefore := s.Stats().Bytes
	appendAll(t, s.Store, b[2]) // the store span of traceA, the last frame

	for _, cut := range []int64{1, 5, 9, 40} {
		t.Run(fmt.Sprintf("the last frame cut %d bytes short", cut), func(t *testing.T) {
			cp := copyDir(t, dir)
			files := segmentFiles(t, cp)
			require.Len(t, files, 1)
			fi, err := os.Stat(files[0])
			require.NoError(t, err)
			require.Greater(t, fi.Size()-cut, sizeBefore-segmentHeader)
			require.NoError(t, os.Truncate(files[0], fi.Size()-cut))

			r := openTest(t, cp, DefaultConfig(), Options{})
			require.InDelta(t, 1, counter(t, r.m.corrupt), 0)
			td, err := r.Trace(context.Background(), traceID(traceA))
			require.NoError(t, err)
			require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout"}, spanNames(td), "the frames before the torn one are intact")

			// Writing goes on in a new segment, never after the torn tail.
			appendAll(t, r.Store, b[2])
			require.NoError(t, r.Close())
			r = openTest(t, cp, DefaultConfig(), Options{})
			defer func() { _ = r.Close() }()
			td, err = r.Trace(context.Background(), traceID(traceA))
			require.NoError(t, err)
			require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
		})
	}
}

func TestDamagedSegmentsDoNotStopOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	b := checkoutBatches()
	appendAll(t, s.Store, b...)
	require.NoError(t, s.Close())
	good := segmentFiles(t, dir)[0]
	data, err := os.ReadFile(good)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   map[string]bool
	}{
		{"a byte flipped in the second frame keeps the first", func(t *testing.T, dir string) {
			d := append([]byte(nil), data...)
			first := int(le32(d[segmentHeader:])) + segmentHeader + frameHeader
			d[first+frameHeader+20] ^= 0xff
			require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(good)), d, 0o640))
		}, map[string]bool{traceA: true, traceB: false}},
		{"a file of garbage is set aside", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(good)), data, 0o640))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000099.seg"), []byte("this is not a segment, just text"), 0o640))
		}, map[string]bool{traceA: true, traceB: true}},
		{"a header-only file is removed", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(good)), data, 0o640))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000.seg"), data[:segmentHeader], 0o640))
		}, map[string]bool{traceA: true, traceB: true}},
		{"a frame claiming 4 GiB hides only itself", func(t *testing.T, dir string) {
			d := append([]byte(nil), data...)
			d[segmentHeader], d[segmentHeader+1], d[segmentHeader+2], d[segmentHeader+3] = 0xff, 0xff, 0xff, 0xff
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000001.seg"), d, 0o640))
		}, map[string]bool{traceA: true, traceB: true}},
		{"an empty file is removed", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000007.seg"), nil, 0o640))
		}, map[string]bool{traceA: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			tc.damage(t, d)
			r := openTest(t, d, DefaultConfig(), Options{})
			defer func() { _ = r.Close() }()
			var ids []string
			for id := range tc.want {
				ids = append(ids, id)
			}
			require.Equal(t, tc.want, present(r.Store, ids...))
			appendAll(t, r.Store, b[1])
			require.Equal(t, map[string]bool{traceB: true}, present(r.Store, traceB), "the store takes new spans")
		})
	}
}

// TestDamagedFrameHidesOnlyItself damages the middle one of three frames
// and requires the frames after it to be read: the scan resumes at the
// next frame that checks out.
func TestDamagedFrameHidesOnlyItself(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	appendAll(t, s.Store, checkoutBatches()...)
	require.NoError(t, s.Close())
	path := segmentFiles(t, dir)[0]
	d, err := os.ReadFile(path)
	require.NoError(t, err)
	second := int(le32(d[segmentHeader:])) + segmentHeader + frameHeader
	d[second+frameHeader+20] ^= 0xff
	require.NoError(t, os.WriteFile(path, d, 0o640))

	r := openTest(t, dir, DefaultConfig(), Options{})
	defer func() { _ = r.Close() }()
	require.InDelta(t, 1, counter(t, r.m.corrupt), 0)
	td, err := r.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td), "the third frame is read past the damaged second")
	require.Equal(t, map[string]bool{traceB: false}, present(r.Store, traceB))
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func TestDamagedChunkIsSkippedOnRead(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, DefaultConfig(), Options{})
	defer func() { _ = s.Close() }()
	appendAll(t, s.Store, checkoutBatches()...)
	s.mu.RLock()
	c := s.entries[s.traces[traceID(traceA)]].chunks[0] // the edge span
	s.mu.RUnlock()
	f, err := os.OpenFile(c.seg.path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xde, 0xad}, c.off+4)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-store/SELECT"}, spanNames(td))
	require.InDelta(t, 1, counter(t, s.m.corrupt), 0)
}

// TestKilledProcessLosesNoAcceptedBatch appends in a child process that
// SIGKILLs itself right after Append returned, with no Close.
func TestKilledProcessLosesNoAcceptedBatch(t *testing.T) {
	if dir := os.Getenv("TRACESTORE_CRASH_DIR"); dir != "" {
		s, err := Open(Options{Dir: dir, Config: DefaultConfig()})
		if err != nil {
			os.Exit(3)
		}
		for _, td := range checkoutBatches() {
			if _, err := s.Append(context.Background(), td); err != nil {
				os.Exit(4)
			}
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledProcessLosesNoAcceptedBatch$")
	cmd.Env = append(os.Environ(), "TRACESTORE_CRASH_DIR="+dir)
	err := cmd.Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, "signal: killed", exitErr.Error())

	s := openTest(t, dir, DefaultConfig(), Options{})
	defer func() { _ = s.Close() }()
	td, err := s.Trace(context.Background(), traceID(traceA))
	require.NoError(t, err)
	require.Equal(t, []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}, spanNames(td))
	require.Len(t, s.Search(Query{}), 2)
}

func TestOpenAppliesTheRetentionAtOnce(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	s := openTest(t, dir, DefaultConfig(), Options{Now: c.Now})
	appendAll(t, s.Store, checkoutBatches()...)
	require.NoError(t, s.Close())

	c.Advance(25 * time.Hour) // down for longer than the 24h retention
	s = openTest(t, dir, DefaultConfig(), Options{Now: c.Now})
	defer func() { _ = s.Close() }()
	require.Equal(t, map[string]bool{traceA: false, traceB: false}, present(s.Store, traceA, traceB))
	require.Len(t, segmentFiles(t, dir), 1, "only the new, empty segment is left")
}
