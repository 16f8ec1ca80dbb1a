package tracestore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var (
	// ErrOverloaded is returned (wrapped) by Append when the store must push
	// back: too many batches are already waiting to be written. The receiver
	// answers 429/503 with Retry-After; the sender retries later.
	ErrOverloaded = errors.New("trace store overloaded")
	// ErrNotFound is returned by Trace for a trace ID the store does not
	// hold (never received, or deleted by retention).
	ErrNotFound = errors.New("trace not found")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("trace store closed")
)

// Options are what Open needs: the directory and configuration, the logger
// and registerer, and knobs for tests and benchmarks whose zero values are
// the defaults.
type Options struct {
	// Dir is the store's directory, created if missing. Required.
	Dir    string
	Config Config
	// Logger and Registerer default to discarding.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now stamps the receive time of batches and drives age retention.
	// Default time.Now.
	Now func() time.Time
	// SegmentBytes is the size at which the active segment is sealed and a
	// new one started. Default MaxBytes/16, between 64 KiB and 256 MiB.
	SegmentBytes int64
	// SegmentDuration is the age at which the active segment is sealed, the
	// granularity of age retention. Default Retention/12, between 1m and 2h.
	SegmentDuration time.Duration
	// MaxPendingAppends bounds the Append calls running or waiting at once;
	// more wait up to AppendWait and then get ErrOverloaded. Default
	// 4 x GOMAXPROCS, 1s.
	MaxPendingAppends int
	AppendWait        time.Duration
	// ForwardWorkers is how many forward requests may be in flight.
	// Default 4.
	ForwardWorkers int
	// ForwardBackoff is the first retry delay of a failed forward; it doubles
	// up to ForwardMaxBackoff (default 500ms and 30s). A batch is dropped
	// after ForwardMaxElapsed (default 5m) of retries.
	ForwardBackoff    time.Duration
	ForwardMaxBackoff time.Duration
	ForwardMaxElapsed time.Duration
	// ForwardDrainTimeout is how long a clean stop (Run's context done)
	// keeps forwarding what is queued. Default 1s, inside the process's 5s
	// stop budget.
	ForwardDrainTimeout time.Duration
	// Sync makes a segment file durable. Default (*os.File).Sync; tests
	// make it fail or block.
	Sync func(*os.File) error
}

func (o *Options) defaults(cfg Config) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sync == nil {
		o.Sync = (*os.File).Sync
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(cfg.MaxBytes/16, 64<<10), 256<<20)
	}
	if o.SegmentDuration <= 0 {
		o.SegmentDuration = min(max(cfg.Retention/12, time.Minute), 2*time.Hour)
	}
	if o.MaxPendingAppends <= 0 {
		o.MaxPendingAppends = 4 * runtime.GOMAXPROCS(0)
	}
	if o.AppendWait <= 0 {
		o.AppendWait = time.Second
	}
	if o.ForwardWorkers <= 0 {
		o.ForwardWorkers = 4
	}
	if o.ForwardBackoff <= 0 {
		o.ForwardBackoff = 500 * time.Millisecond
	}
	if o.ForwardMaxBackoff <= 0 {
		o.ForwardMaxBackoff = 30 * time.Second
	}
	if o.ForwardMaxElapsed <= 0 {
		o.ForwardMaxElapsed = 5 * time.Minute
	}
	if o.ForwardDrainTimeout <= 0 {
		o.ForwardDrainTimeout = time.Second
	}
}

// Store keeps spans in append-only segment files under one directory, with
// an in-memory index of every trace. It is safe for concurrent use.
type Store struct {
	dir    string
	cfg    Config
	opts   Options
	logger *slog.Logger
	m      *metrics
	fwd    *forwarder
	// pending bounds the Append calls in progress (see ErrOverloaded).
	pending chan struct{}
	recent  *recentSpans

	mu       sync.RWMutex
	segments []*segment // oldest first; the last one is written
	// traces maps a trace ID to its entry in entries. The entries are
	// values in one slice, so that search scans contiguous memory.
	traces  map[pcommon.TraceID]int32
	entries []traceEntry
	bytes   int64
	// unsynced are the segments written since their last successful fsync
	// (the active one, and sealed ones until the next sync).
	unsynced map[*segment]struct{}
	closed   bool
}

// Open opens (creating if needed) the store in opts.Dir and rebuilds the
// index from the segment files. Damaged or torn records are logged and
// skipped; they never make Open fail.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("trace store: a directory is required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	dir, cfg, logger, reg := opts.Dir, opts.Config, opts.Logger, opts.Registerer
	opts.defaults(cfg)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("trace store: %w", err)
	}
	s := &Store{
		dir:      dir,
		cfg:      cfg,
		opts:     opts,
		logger:   logger,
		pending:  make(chan struct{}, opts.MaxPendingAppends),
		recent:   newRecentSpans(),
		unsynced: map[*segment]struct{}{},
		traces:   make(map[pcommon.TraceID]int32),
	}
	if cfg.Forward.Enabled() {
		fwd, err := newForwarder(cfg.Forward, opts, logger)
		if err != nil {
			return nil, err
		}
		s.fwd = fwd
	}
	m, err := newMetrics(reg, s)
	if err != nil {
		return nil, fmt.Errorf("trace store: register metrics: %w", err)
	}
	s.m = m
	if s.fwd != nil {
		s.fwd.m = m
	}

	start := time.Now()
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("trace store: %w", err)
	}
	seg, err := createSegment(dir, s.nextSeq())
	if err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("trace store: %w", err)
	}
	s.segments = append(s.segments, seg)
	s.bytes += seg.size
	// A store that was down longer than the retention (or reopened with a
	// smaller one) is trimmed now, not at the first tick of Run.
	s.applyRetention(opts.Now())
	s.enforceSize()
	s.updateGauges()
	logger.Info("trace store opened", "dir", dir, "segments", len(s.segments), "traces", len(s.traces),
		"bytes", s.bytes, "duration", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// load reads every segment file into the index. A new segment is always
// started afterwards, so a torn tail is never appended to.
func (s *Store) load() error {
	seqs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		path := segmentPath(s.dir, seq)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return err
		}
		seg := &segment{seq: seq, path: path, f: f, size: fi.Size()}
		res := scanSegment(f, fi.Size(), func(off, received int64, chunks []chunkMeta) {
			s.index(seg, off, received, chunks)
		})
		if res.corrupt != nil {
			s.m.corrupt.Inc()
			s.logger.Warn("trace segment damaged: the damaged bytes are skipped, intact frames after them kept (a torn tail after a crash looks like this)",
				"file", path, "offset", res.valid, "skipped_bytes", res.skipped, "err", res.corrupt)
		}
		if seg.records == 0 {
			_ = f.Close()
			if res.corrupt != nil && fi.Size() > segmentHeader {
				// Not a segment this version can read (or damaged from its
				// first frame): keep it for inspection, out of the way.
				if err := os.Rename(path, path+corruptSuffix); err != nil {
					return err
				}
				continue
			}
			// Empty (a clean stop with nothing written, or a crash right
			// after the file was created): nothing to serve from it.
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		s.segments = append(s.segments, seg)
		s.bytes += seg.size
	}
	return nil
}

func (s *Store) nextSeq() uint64 {
	if len(s.segments) == 0 {
		return 1
	}
	return s.segments[len(s.segments)-1].seq + 1
}

// index adds one frame's chunks to the in-memory index. The caller holds
// the write lock (or owns the store, during load).
func (s *Store) index(seg *segment, frameOff, received int64, chunks []chunkMeta) {
	if seg.records == 0 {
		seg.firstRecv = received
	}
	seg.lastRecv = max(seg.lastRecv, received)
	seg.records++
	base := frameOff + frameHeader
	for i := range chunks {
		c := &chunks[i]
		i, ok := s.traces[c.traceID]
		if !ok {
			i = int32(len(s.entries))
			s.entries = append(s.entries, traceEntry{id: c.traceID})
			s.traces[c.traceID] = i
		}
		s.entries[i].add(chunkRef{
			seg:      seg,
			off:      base + int64(c.dataOff),
			size:     uint32(c.dataLen),
			crc:      c.dataCRC,
			spans:    c.spans,
			start:    c.start,
			end:      c.end,
			flags:    c.flags,
			rootSvc:  c.rootSvc,
			rootName: c.rootName,
			services: slices.Clip(c.services),
		})
		seg.traces = append(seg.traces, c.traceID)
	}
}

// Append stores a batch of spans. It returns once the batch is written to
// the segment file (not yet fsynced, see the package documentation), so a
// crash of the process after Append returned loses nothing. Spans without
// a valid trace or span ID are rejected and counted in the first result;
// the rest are stored. The batch is not modified.
func (s *Store) Append(ctx context.Context, td ptrace.Traces) (rejected int, err error) {
	total := td.SpanCount()
	if total == 0 {
		return 0, nil
	}
	if err := s.acquire(ctx); err != nil {
		s.m.rejected.WithLabelValues(reasonOf(err)).Add(float64(total))
		return total, err
	}
	defer func() { <-s.pending }()
	begin := time.Now()

	groups, invalid, dups, keys := splitByTrace(td, s.storedAlready())
	if invalid > 0 {
		s.m.rejected.WithLabelValues("invalid_id").Add(float64(invalid))
	}
	if dups > 0 {
		// Stored already (a retried export): nothing is lost, nothing to
		// report to the sender.
		s.m.duplicates.Add(float64(dups))
	}
	marshal(groups)
	var tooLarge int
	frames := s.pack(groups, &tooLarge)
	if tooLarge > 0 {
		s.m.rejected.WithLabelValues("too_large").Add(float64(tooLarge))
	}
	if size := framesBytes(frames); size+segmentHeader > s.cfg.MaxBytes {
		// Written, it would be deleted at once by the size retention (with
		// everything else): refuse it instead, with the count.
		n := total - invalid - dups - tooLarge
		s.m.rejected.WithLabelValues("too_large").Add(float64(n))
		return invalid + tooLarge + n, nil
	}
	written, err := s.write(frames)
	if err != nil {
		lost := total - invalid - dups - tooLarge - written
		s.m.rejected.WithLabelValues(reasonOf(err)).Add(float64(lost))
		s.m.accepted.Add(float64(written))
		return total - dups - written, err
	}
	s.recent.add(keys)
	s.m.accepted.Add(float64(written))
	s.m.appendDuration.Observe(time.Since(begin).Seconds())
	if s.fwd != nil && written > 0 {
		s.fwd.enqueue(td)
	}
	return invalid + tooLarge, nil
}

// storedAlready returns a check for spans stored lately whose trace is
// still in the store (retention may have deleted it since: then the span is
// stored again).
func (s *Store) storedAlready() func(spanKey) bool {
	held := map[pcommon.TraceID]bool{}
	return func(k spanKey) bool {
		if !s.recent.contains(k) {
			return false
		}
		id := pcommon.TraceID(k[:16])
		ok, known := held[id]
		if !known {
			s.mu.RLock()
			_, ok = s.traces[id]
			s.mu.RUnlock()
			held[id] = ok
		}
		return ok
	}
}

func framesBytes(frames []frame) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f.buf))
	}
	return n
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "write_error"
}

func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.pending <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.opts.AppendWait)
	defer t.Stop()
	select {
	case s.pending <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: %d batches already in progress", ErrOverloaded, cap(s.pending))
	}
}

// frame is one encoded record and the groups in it.
type frame struct {
	buf      []byte
	received int64
	groups   []*traceGroup
	spans    int
}

// pack encodes the groups into frames of at most maxPayloadBytes. Almost
// always that is one frame; a giant batch becomes several, each written
// whole. A single trace too large for a frame is rejected.
func (s *Store) pack(groups []*traceGroup, tooLarge *int) []frame {
	var frames []frame
	var cur frame
	size := 1 + 8 + 10
	received := s.opts.Now().UnixNano()
	flush := func() {
		if len(cur.groups) > 0 {
			cur.buf = encodeFrame(make([]byte, 0, frameHeader+size), received, cur.groups)
			cur.received = received
			frames = append(frames, cur)
		}
		cur, size = frame{}, 1+8+10
	}
	for _, g := range groups {
		n := chunkHeaderSize(&g.meta) + len(g.data)
		if n+19 > maxPayloadBytes {
			*tooLarge += int(g.meta.spans)
			continue
		}
		if size+n > maxPayloadBytes {
			flush()
		}
		cur.groups = append(cur.groups, g)
		cur.spans += int(g.meta.spans)
		size += n
	}
	flush()
	for i := range frames {
		frames[i].buf = frames[i].buf[:len(frames[i].buf):len(frames[i].buf)]
	}
	return frames
}

// write appends the frames to the active segment and indexes them. It
// returns how many spans were written.
func (s *Store) write(frames []frame) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	written := 0
	for _, fr := range frames {
		if err := s.writeFrame(fr); err != nil {
			return written, err
		}
		written += fr.spans
	}
	s.enforceSize()
	s.updateGauges()
	return written, nil
}

func (s *Store) writeFrame(fr frame) error {
	now := s.opts.Now()
	seg := s.active()
	if seg.records > 0 && (seg.size+int64(len(fr.buf)) > s.opts.SegmentBytes ||
		now.Sub(time.Unix(0, seg.firstRecv)) >= s.opts.SegmentDuration) {
		var err error
		if seg, err = s.roll(); err != nil {
			return err
		}
	}
	off := seg.size
	if _, err := seg.f.WriteAt(fr.buf, off); err != nil {
		// A partly written frame must not stay in front of later ones:
		// cut it off, or if even that fails, leave the file to the scan's
		// torn-tail handling and write on in a new segment.
		if terr := seg.f.Truncate(off); terr != nil {
			_, _ = s.roll()
		}
		return fmt.Errorf("trace store: write %s: %w", seg.path, err)
	}
	seg.size += int64(len(fr.buf))
	s.bytes += int64(len(fr.buf))
	s.unsynced[seg] = struct{}{}
	chunks := make([]chunkMeta, len(fr.groups))
	for i, g := range fr.groups {
		chunks[i] = g.meta
	}
	s.index(seg, off, fr.received, chunks)
	return nil
}

func (s *Store) active() *segment { return s.segments[len(s.segments)-1] }

// roll seals the active segment and starts a new one. The caller holds
// the write lock. The sealed segment is fsynced by the next sync, outside
// the lock, so that appends never wait for the disk.
func (s *Store) roll() (*segment, error) {
	old := s.active()
	seg, err := createSegment(s.dir, old.seq+1)
	if err != nil {
		return nil, fmt.Errorf("trace store: new segment: %w", err)
	}
	s.segments = append(s.segments, seg)
	s.bytes += seg.size
	return seg, nil
}

// enforceSize deletes the oldest segments while the files exceed MaxBytes.
// The caller holds the write lock.
func (s *Store) enforceSize() {
	for s.bytes > s.cfg.MaxBytes {
		if len(s.segments) == 1 {
			if s.active().records == 0 {
				return
			}
			if _, err := s.roll(); err != nil {
				s.logger.Error("trace store: cannot start a segment to free space", "err", err)
				return
			}
		}
		s.deleteOldest("size")
	}
}

// applyRetention deletes segments whose newest record is older than the
// retention. The caller holds the write lock.
func (s *Store) applyRetention(now time.Time) {
	cutoff := now.Add(-s.cfg.Retention).UnixNano()
	for len(s.segments) > 0 {
		seg := s.segments[0]
		if seg.records == 0 || seg.lastRecv >= cutoff {
			break
		}
		if len(s.segments) == 1 {
			// Idle for the whole retention: start a fresh segment so the old
			// one can go.
			if _, err := s.roll(); err != nil {
				s.logger.Error("trace store: cannot start a segment", "err", err)
				return
			}
		}
		s.deleteOldest("age")
	}
	s.removeOldCorrupt(now)
	s.updateGauges()
}

// corruptSuffix marks a segment file set aside as unreadable.
const corruptSuffix = ".corrupt"

// removeOldCorrupt deletes the segment files set aside as unreadable once
// they are older than the retention: kept for inspection, not for ever.
func (s *Store) removeOldCorrupt(now time.Time) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), corruptSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < s.cfg.Retention {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		if err := os.Remove(path); err != nil {
			s.logger.Error("trace store: cannot delete a damaged segment", "file", path, "err", err)
			continue
		}
		s.m.deleted.WithLabelValues("corrupt").Inc()
	}
}

func (s *Store) deleteOldest(reason string) {
	seg := s.segments[0]
	s.segments = slices.Delete(s.segments, 0, 1)
	delete(s.unsynced, seg)
	for _, id := range seg.traces {
		if i, ok := s.traces[id]; ok && !s.entries[i].dropSegment(seg) {
			s.removeEntry(i)
		}
	}
	s.bytes -= seg.size
	_ = seg.f.Close()
	if err := os.Remove(seg.path); err != nil {
		s.logger.Error("trace store: cannot delete segment", "file", seg.path, "err", err)
	}
	s.m.deleted.WithLabelValues(reason).Inc()
	s.logger.Debug("trace segment deleted", "file", seg.path, "reason", reason, "bytes", seg.size)
}

// removeEntry deletes a trace from the index by moving the last entry into
// its place. The caller holds the write lock.
func (s *Store) removeEntry(i int32) {
	last := int32(len(s.entries) - 1)
	delete(s.traces, s.entries[i].id)
	if i != last {
		s.entries[i] = s.entries[last]
		s.traces[s.entries[i].id] = i
	}
	s.entries[last] = traceEntry{} // drop the references to chunks and segments
	s.entries = s.entries[:last]
}

// sync fsyncs every segment written since its last fsync, outside the
// lock: appends go on meanwhile. A failed fsync is counted, and the
// segment stays in line for the next sync: the kernel may still hold the
// data, and a later fsync that succeeds makes it durable.
func (s *Store) sync() error {
	s.mu.Lock()
	if s.closed || len(s.unsynced) == 0 {
		s.mu.Unlock()
		return nil
	}
	segs := make([]*segment, 0, len(s.unsynced))
	for seg := range s.unsynced {
		segs = append(segs, seg)
	}
	clear(s.unsynced)
	s.mu.Unlock()
	var errs []error
	for _, seg := range segs {
		err := s.opts.Sync(seg.f)
		if err == nil || errors.Is(err, os.ErrClosed) { // closed: deleted by retention
			continue
		}
		s.m.fsyncFailures.Inc()
		errs = append(errs, fmt.Errorf("fsync %s: %w", seg.path, err))
		s.mu.Lock()
		if !s.closed && slices.Contains(s.segments, seg) {
			s.unsynced[seg] = struct{}{}
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// syncInterval bounds what an operating-system crash or power loss can take:
// the spans of the last second. A process crash loses nothing.
const syncInterval = time.Second

// retentionInterval is how often age retention runs.
const retentionInterval = 10 * time.Second

// Run fsyncs once a second, applies age retention, seals idle segments and
// forwards spans, until ctx is done.
func (s *Store) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.fwd != nil {
		wg.Go(func() { s.fwd.run(ctx) })
	}
	defer wg.Wait()
	syncT := time.NewTicker(syncInterval)
	defer syncT.Stop()
	retT := time.NewTicker(retentionInterval)
	defer retT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-syncT.C:
			if err := s.sync(); err != nil {
				s.logger.Error("trace store: fsync failed", "err", err)
			}
		case <-retT.C:
			s.mu.Lock()
			if !s.closed {
				s.applyRetention(s.opts.Now())
			}
			s.mu.Unlock()
		}
	}
}

// Close fsyncs and closes the segment files. Spans appended before Close
// are there when the directory is opened again. Spans still waiting to be
// forwarded are dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for seg := range s.unsynced {
		if err := s.opts.Sync(seg.f); err != nil && !errors.Is(err, os.ErrClosed) {
			s.m.fsyncFailures.Inc()
			errs = append(errs, fmt.Errorf("fsync %s: %w", seg.path, err))
		}
	}
	clear(s.unsynced)
	if len(s.segments) > 0 {
		seg := s.active()
		if seg.records == 0 {
			_ = seg.f.Close()
			s.segments = s.segments[:len(s.segments)-1]
			if err := os.Remove(seg.path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.closeFiles()
	if s.fwd != nil {
		s.fwd.close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trace store: close: %w", err)
	}
	return nil
}

func (s *Store) closeFiles() {
	for _, seg := range s.segments {
		_ = seg.f.Close()
	}
}

// Trace returns every stored span of a trace, from all services, as one
// ptrace.Traces (one ResourceSpans per stored batch). It returns ErrNotFound
// for an unknown ID. Damaged chunks are skipped and logged.
func (s *Store) Trace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error) {
	s.mu.RLock()
	var chunks []chunkRef
	if i, ok := s.traces[id]; ok {
		chunks = slices.Clone(s.entries[i].chunks)
	}
	s.mu.RUnlock()
	if len(chunks) == 0 {
		return ptrace.Traces{}, ErrNotFound
	}
	out := ptrace.NewTraces()
	var u ptrace.ProtoUnmarshaler
	var buf []byte
	read := 0
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return ptrace.Traces{}, err
		}
		if cap(buf) < int(c.size) {
			buf = make([]byte, c.size)
		}
		buf = buf[:c.size]
		if _, err := c.seg.f.ReadAt(buf, c.off); err != nil {
			if !errors.Is(err, os.ErrClosed) { // closed: deleted by retention meanwhile
				s.logger.Warn("trace store: cannot read chunk", "file", c.seg.path, "offset", c.off, "err", err)
			}
			continue
		}
		if crc32.Checksum(buf, castagnoli) != c.crc {
			s.m.corrupt.Inc()
			s.logger.Warn("trace store: chunk checksum mismatch, skipped", "file", c.seg.path, "offset", c.off)
			continue
		}
		td, err := u.UnmarshalTraces(buf)
		if err != nil {
			s.m.corrupt.Inc()
			s.logger.Warn("trace store: chunk does not decode, skipped", "file", c.seg.path, "offset", c.off, "err", err)
			continue
		}
		td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
		read++
	}
	if read == 0 {
		return ptrace.Traces{}, ErrNotFound
	}
	return out, nil
}

// defaultLimit and maxLimit bound search results.
const (
	defaultLimit = 20
	maxLimit     = 1000
)

// Search returns summaries of the newest traces matching q (Limit defaults
// to 20).
func (s *Store) Search(q Query) []TraceSummary {
	if q.Limit <= 0 {
		q.Limit = defaultLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return search(s.entries, q)
}

// Stats is a snapshot of the store's size.
type Stats struct {
	Bytes    int64
	Segments int
	Traces   int
}

// Stats returns the store's current size.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{Bytes: s.bytes, Segments: len(s.segments), Traces: len(s.traces)}
}

func (s *Store) updateGauges() {
	s.m.bytes.Set(float64(s.bytes))
	s.m.segments.Set(float64(len(s.segments)))
	s.m.traces.Set(float64(len(s.traces)))
}
