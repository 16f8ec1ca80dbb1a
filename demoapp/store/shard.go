// Package store is the demo platform's data tier: N shards, each an on-disk
// key-value log, with keys placed on shards by consistent hashing.
//
// A shard keeps its keys in memory and appends every write to
// <dir>/shard-N/data.log (one JSON object a line), replayed on open. That is
// the simplest durable store that behaves like one: a restart keeps the data,
// and each shard can be taken down or slowed on its own by a fault flag while
// the others keep serving, which is what sharding buys.
//
// What "persisted" means here. A Put returns once its line has been written
// to the log file with write(2), so it is in the kernel's page cache: a crash
// of the process (kill -9, panic, OOM) loses nothing acknowledged. The log is
// fsynced every SyncInterval (1s by default, or after every write when it is
// negative), on compaction and on Close, so a kernel crash or power loss
// loses at most the writes of the last SyncInterval. On open, a torn last
// line (a crash in the middle of an append) is cut off the file before
// anything is appended, so later writes never land behind a bad line, and
// any number of crashes keeps every acknowledged write.
//
// The log is compacted when it holds more than twice as many lines as live
// keys (and at least CompactMinLines): the live keys are written to a new
// file, fsynced and renamed over the old one, so the log's size follows the
// data, not the number of writes.
package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// ErrNotFound is returned for a key that was never written.
var ErrNotFound = errors.New("key not found")

// DefaultSyncInterval is how often a shard fsyncs its log by default.
const DefaultSyncInterval = time.Second

// DefaultCompactMinLines is the smallest log that is compacted by default.
const DefaultCompactMinLines = 4096

// ShardOptions tune a shard; zero fields take the defaults.
type ShardOptions struct {
	// SyncInterval is how often the log is fsynced when it has unsynced
	// writes; negative fsyncs every write before it is acknowledged.
	SyncInterval time.Duration
	// CompactMinLines is the smallest log (in lines) worth compacting.
	CompactMinLines int
	// Sync makes the log durable. Default (*os.File).Sync; tests slow it
	// down.
	Sync func(*os.File) error
}

// Shard is one partition of the data.
type Shard struct {
	ID int

	opts ShardOptions
	path string

	mu      sync.RWMutex
	data    map[string][]byte
	f       *os.File
	lines   int  // records in the log file
	dirty   bool // written since the last fsync
	stop    chan struct{}
	stopped chan struct{}
}

// record is one line of the log: one key, or a batch of keys written
// together (B), which a crash keeps whole or not at all.
type record struct {
	K string          `json:"k,omitempty"`
	V json.RawMessage `json:"v,omitempty"`
	B []KV            `json:"b,omitempty"`
}

// KV is one key and its JSON value.
type KV struct {
	K string          `json:"k"`
	V json.RawMessage `json:"v"`
}

// OpenShard opens (creating it if needed) shard id under dir with the
// default options and replays its log.
func OpenShard(dir string, id int) (*Shard, error) {
	return OpenShardWith(dir, id, ShardOptions{})
}

// OpenShardWith opens shard id under dir, replays its log, cuts a torn tail
// off it and compacts it when it is mostly overwritten records.
func OpenShardWith(dir string, id int, o ShardOptions) (*Shard, error) {
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.CompactMinLines <= 0 {
		o.CompactMinLines = DefaultCompactMinLines
	}
	if o.Sync == nil {
		o.Sync = (*os.File).Sync
	}
	sdir := filepath.Join(dir, fmt.Sprintf("shard-%d", id))
	if err := os.MkdirAll(sdir, 0o750); err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	s := &Shard{ID: id, opts: o, path: filepath.Join(sdir, "data.log"), data: map[string][]byte{}}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	good, err := s.replay(f)
	if err == nil {
		err = s.cutTail(f, good)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shard %d: %s: %w", id, s.path, err)
	}
	s.f = f
	if s.needsCompaction() {
		s.mu.Lock()
		err := s.compactLocked()
		s.mu.Unlock()
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	if o.SyncInterval > 0 {
		s.stop, s.stopped = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// replay reads the log into memory and returns the offset just past the last
// complete, valid line: everything after it is a torn append.
func (s *Shard) replay(f *os.File) (int64, error) {
	rd := bufio.NewReaderSize(f, 64<<10)
	var off, good int64
	for {
		line, err := rd.ReadBytes('\n')
		off += int64(len(line))
		if errors.Is(err, io.EOF) {
			// An unterminated last line is a write the crash cut short; it
			// was never acknowledged.
			return good, nil
		}
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		var r record
		if json.Unmarshal(bytes.TrimSuffix(line, []byte("\n")), &r) != nil {
			// A line mangled in the middle of the log (written by an older
			// version behind a torn tail) is skipped; what follows is kept.
			continue
		}
		if r.B != nil {
			for _, kv := range r.B {
				s.data[kv.K] = kv.V
			}
		} else {
			s.data[r.K] = r.V
		}
		s.lines++
		good = off
	}
}

// cutTail truncates the file to good bytes and places the write offset
// there, so the next append starts on a line of its own.
func (s *Shard) cutTail(f *os.File, good int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != good {
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("cut torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cut torn tail: %w", err)
		}
	}
	_, err = f.Seek(good, io.SeekStart)
	return err
}

func (s *Shard) needsCompaction() bool {
	return s.lines >= s.opts.CompactMinLines && s.lines > 2*len(s.data)
}

// compactLocked writes the live keys to a new log and renames it over the
// old one. s.mu is held for writing.
func (s *Shard) compactLocked() error {
	tmp := s.path + ".compact"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("shard %d: compact: %w", s.ID, err)
	}
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := bufio.NewWriterSize(f, 64<<10)
	for _, k := range keys {
		line, err := json.Marshal(record{K: k, V: s.data[k]})
		if err != nil {
			f.Close()
			return fmt.Errorf("shard %d: compact: %w", s.ID, err)
		}
		_, _ = w.Write(append(line, '\n'))
	}
	if err := errors.Join(w.Flush(), f.Sync()); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("shard %d: compact: %w", s.ID, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("shard %d: compact: %w", s.ID, err)
	}
	// The new file is the log now, whatever the directory sync says.
	_ = s.f.Close()
	s.f, s.lines, s.dirty = f, len(keys), false
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("shard %d: compact: sync directory: %w", s.ID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Shard) syncLoop() {
	defer close(s.stopped)
	t := time.NewTicker(s.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.syncOnce()
		}
	}
}

// syncOnce fsyncs the log if it has unsynced writes, outside the lock: an
// fsync can take tens of milliseconds on a busy disk, and holding the lock
// through it stalled every read and write of the shard once a second, long
// enough for the cache's 250ms deadline to fire under load. Writes go on
// meanwhile and mark the log dirty again; a failed fsync leaves it dirty.
// A file replaced by compaction (which fsyncs the new one) or closed
// meanwhile fails with os.ErrClosed and needs nothing more.
func (s *Shard) syncOnce() {
	s.mu.Lock()
	f, dirty := s.f, s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty || f == nil {
		return
	}
	if err := s.opts.Sync(f); err != nil && !errors.Is(err, os.ErrClosed) {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
}

// Get returns the value of key.
func (s *Shard) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// Put writes key. The value must be JSON. It returns once the record is in
// the log file (see the package comment for what that survives).
func (s *Shard) Put(key string, value []byte) error {
	return s.write(record{K: key, V: value}, []KV{{K: key, V: value}})
}

// PutBatch writes every key of kvs in one log line: after a crash either
// all of them are there or none is. Values must be JSON.
func (s *Shard) PutBatch(kvs []KV) error {
	if len(kvs) == 0 {
		return nil
	}
	return s.write(record{B: kvs}, kvs)
}

func (s *Shard) write(r record, kvs []KV) error {
	for _, kv := range kvs {
		if !json.Valid(kv.V) {
			return fmt.Errorf("value of %q is not JSON", kv.K)
		}
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("shard %d: closed", s.ID)
	}
	// One write(2) of the whole line: a crash leaves it whole or torn, and
	// a torn one is cut on the next open.
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("shard %d: append: %w", s.ID, err)
	}
	if s.opts.SyncInterval < 0 {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("shard %d: fsync: %w", s.ID, err)
		}
	} else {
		s.dirty = true
	}
	for _, kv := range kvs {
		s.data[kv.K] = append([]byte(nil), kv.V...)
	}
	s.lines++
	if s.needsCompaction() {
		// The write itself is in the log; a failed compaction is tried
		// again on the next write.
		_ = s.compactLocked()
	}
	return nil
}

// Len is the number of keys.
func (s *Shard) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}

// LogLines is the number of records in the log file (live and overwritten).
func (s *Shard) LogLines() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lines
}

// Close syncs and closes the log.
func (s *Shard) Close() error {
	if s.stop != nil {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
		<-s.stopped
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}
