// Package store is the demo platform's data tier: N shards, each an on-disk
// key-value log, with keys placed on shards by consistent hashing.
//
// A shard keeps its keys in memory and appends every write to
// <dir>/shard-N/data.log (one JSON object a line), replayed on open. That is
// the simplest durable store that behaves like one: a restart keeps the data,
// and each shard can be taken down or slowed on its own by a fault flag while
// the others keep serving, which is what sharding buys.
package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrNotFound is returned for a key that was never written.
var ErrNotFound = errors.New("key not found")

// Shard is one partition of the data.
type Shard struct {
	ID int

	mu   sync.RWMutex
	data map[string][]byte
	f    *os.File
	w    *bufio.Writer
}

type record struct {
	K string          `json:"k"`
	V json.RawMessage `json:"v"`
}

// OpenShard opens (creating it if needed) shard id under dir and replays its
// log.
func OpenShard(dir string, id int) (*Shard, error) {
	sdir := filepath.Join(dir, fmt.Sprintf("shard-%d", id))
	if err := os.MkdirAll(sdir, 0o750); err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	path := filepath.Join(sdir, "data.log")
	s := &Shard{ID: id, data: map[string][]byte{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				// A torn last line after a crash: keep what came before.
				break
			}
			s.data[r.K] = r.V
		}
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	s.f = f
	s.w = bufio.NewWriterSize(f, 64<<10)
	return s, nil
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

// Put writes key. The value must be JSON.
func (s *Shard) Put(key string, value []byte) error {
	if !json.Valid(value) {
		return errors.New("value is not JSON")
	}
	line, err := json.Marshal(record{K: key, V: value})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("shard %d: append: %w", s.ID, err)
	}
	// Flushed to the OS on every write, so another process reading the log
	// and a crash of this one see the write; fsync happens on Close.
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("shard %d: append: %w", s.ID, err)
	}
	s.data[key] = append([]byte(nil), value...)
	return nil
}

// Len is the number of keys.
func (s *Shard) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}

// Close flushes, syncs and closes the log.
func (s *Shard) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.w.Flush(), s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}
