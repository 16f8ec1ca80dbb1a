package sloengine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/cespare/xxhash/v2"
)

// The slice checkpoint.
//
// Final slices (older than the TSDB's accept horizon when computed) never
// change, so the engine saves them to <state dir>/slices.ckpt every
// checkpoint interval and when it stops, and a new engine starts from them:
// its first cycle computes only the slices after the checkpoint's newest
// final one, instead of 30 days of them. A slice is restored only for an
// SLO whose slice expressions are unchanged (the fingerprint); anything
// else is recomputed from storage.

const checkpointFile = "slices.ckpt"

// checkpointMagic names the format: version 2 adds the number of values
// per slice (2, or 4 with the increments' cross values).
var checkpointMagic = [8]byte{'B', 'R', 'S', 'L', 'I', 'C', 'E', '2'}

// fingerprint identifies what an SLO's slices hold: the 5m expressions.
func fingerprint(s *SLO) uint64 {
	h := xxhash.New()
	for _, x := range []string{string(s.SLI.Kind), s.SLI.badExpr(SliceWidth), s.SLI.totalExpr(SliceWidth), s.SLI.ratioExpr(SliceWidth)} {
		_, _ = h.WriteString(x)
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// SaveCheckpoint saves every SLO's final slices atomically (temporary
// file, fsync, rename).
func (e *Engine) SaveCheckpoint() error {
	if e.opts.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(e.opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("slice checkpoint: %w", err)
	}
	path := filepath.Join(e.opts.StateDir, checkpointFile)
	f, err := os.CreateTemp(e.opts.StateDir, checkpointFile+".tmp*")
	if err != nil {
		return fmt.Errorf("slice checkpoint: %w", err)
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	put := func(v any) { _ = binary.Write(w, binary.LittleEndian, v) }
	put(checkpointMagic)
	put(uint32(len(e.states)))
	for _, st := range e.states {
		first, last := int64(0), int64(-1)
		if !st.ring.empty() && st.final != math.MinInt64 {
			last = min(st.final, st.ring.last)
			first = max(st.ring.first, st.ring.last-int64(len(st.ring.bad))+1)
		}
		put(uint16(len(st.slo.ID)))
		_, _ = w.WriteString(st.slo.ID)
		put(fingerprint(st.slo))
		put(first)
		put(last)
		put(st.ring.width())
		var b [8]byte
		for k := first; k <= last; k++ {
			i := st.ring.index(k)
			vals := []float64{st.ring.bad[i], st.ring.all[i]}
			if st.ring.xbad != nil {
				vals = append(vals, float64(st.ring.xbad[i]), float64(st.ring.xall[i]))
			}
			for _, v := range vals {
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
				_, _ = w.Write(b[:])
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("slice checkpoint: write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("slice checkpoint: sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("slice checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("slice checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint restores the final slices of every SLO whose fingerprint
// matches; it reports how many SLOs it restored. A missing file is no
// error; a damaged one is reported and ignored (slices are recomputed).
func (e *Engine) readCheckpoint() (int, error) {
	if e.opts.StateDir == "" {
		return 0, nil
	}
	path := filepath.Join(e.opts.StateDir, checkpointFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("slice checkpoint: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	get := func(v any) error { return binary.Read(r, binary.LittleEndian, v) }
	var magic [8]byte
	var n uint32
	if err := get(&magic); err != nil || magic != checkpointMagic {
		return 0, fmt.Errorf("slice checkpoint %s: not a checkpoint file", path)
	}
	if err := get(&n); err != nil {
		return 0, fmt.Errorf("slice checkpoint %s: %w", path, err)
	}
	restored := 0
	var raw []byte
	for range n {
		var idLen uint16
		var fp uint64
		var first, last int64
		var width uint8
		if err := get(&idLen); err != nil {
			return restored, fmt.Errorf("slice checkpoint %s: %w", path, err)
		}
		id := make([]byte, idLen)
		if _, err := io.ReadFull(r, id); err != nil {
			return restored, fmt.Errorf("slice checkpoint %s: %w", path, err)
		}
		if err := errors.Join(get(&fp), get(&first), get(&last), get(&width)); err != nil {
			return restored, fmt.Errorf("slice checkpoint %s: %w", path, err)
		}
		if last-first+1 > 1<<22 || (width != 2 && width != 4) {
			return restored, fmt.Errorf("slice checkpoint %s: %s holds %d slices of %d values", path, id, last-first+1, width)
		}
		count := max(0, last-first+1)
		size := 8 * int64(width)
		if need := int(count * size); cap(raw) < need {
			raw = make([]byte, need)
		}
		raw = raw[:count*size]
		if _, err := io.ReadFull(r, raw); err != nil {
			return restored, fmt.Errorf("slice checkpoint %s: %w", path, err)
		}
		st, ok := e.byID[string(id)]
		// Slices of 5m rates and slices of increments do not mix.
		if !ok || fp != fingerprint(st.slo) || count == 0 || !st.ring.empty() || width != st.ring.width() {
			continue
		}
		f := func(j int64) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(raw[j:])) }
		for k := first; k <= last; k++ {
			j := size * (k - first)
			st.ring.put(k, f(j), f(j+8))
			if width == 4 {
				st.ring.putCross(k, f(j+16), f(j+24))
			}
		}
		st.final = last
		restored++
	}
	return restored, nil
}
