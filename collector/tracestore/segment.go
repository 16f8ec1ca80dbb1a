package tracestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// segment is one append-only file of frames. Only the newest segment is
// written; the others are read by lookups until retention deletes them.
type segment struct {
	seq  uint64
	path string
	f    *os.File
	size int64
	// firstRecv and lastRecv are the receive times (unix ns) of the first
	// and last record: age retention compares lastRecv with the cutoff.
	firstRecv, lastRecv int64
	records             int
	// traces lists the trace IDs with a chunk here (with repeats), so that
	// deleting the segment touches only those index entries.
	traces []pcommon.TraceID
}

const segmentSuffix = ".seg"

func segmentPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%010d%s", seq, segmentSuffix))
}

// listSegments returns the sequence numbers of the segment files in dir,
// oldest first. Other files are left alone.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// createSegment creates a new, empty segment file and makes its directory
// entry durable.
func createSegment(dir string, seq uint64) (*segment, error) {
	path := segmentPath(dir, seq)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, 0, segmentHeader)
	hdr = append(hdr, segmentMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, segmentVersion)
	if _, err := f.Write(hdr); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return &segment{seq: seq, path: path, f: f, size: segmentHeader}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// scanResult is what reading a segment found.
type scanResult struct {
	// valid is the length of the readable prefix of the file.
	valid int64
	// corrupt describes the first damage found; nil when the whole file
	// was read.
	corrupt error
	// skipped is how many bytes were skipped as damaged.
	skipped int64
}

// scanSegment reads frames from r, calls fn for each good one with the
// frame's offset and decoded chunks. A bad frame (damage, or a torn tail
// after a crash) does not end the scan: it resumes at the next offset where
// a whole frame checks out (length, payload version and CRC), so one
// damaged frame hides only itself.
func scanSegment(r io.ReaderAt, size int64, fn func(off int64, received int64, chunks []chunkMeta)) scanResult {
	hdr := make([]byte, segmentHeader)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return scanResult{corrupt: fmt.Errorf("%w: short segment header", errCorrupt)}
	}
	if string(hdr[:4]) != segmentMagic || binary.LittleEndian.Uint32(hdr[4:]) != segmentVersion {
		return scanResult{corrupt: fmt.Errorf("%w: not a version %d trace segment", errCorrupt, segmentVersion)}
	}
	var res scanResult
	var resync []byte // findFrame's window, allocated on the first damage
	// The checksum work of resyncing, bounded so that crafted bytes cannot
	// make Open quadratic: past it the rest of the file is skipped.
	budget := 4*size + 1<<20
	off := int64(segmentHeader)
	for off < size {
		end, err := scanFrames(r, off, size, fn)
		if err == nil {
			break
		}
		if res.corrupt == nil {
			res.corrupt, res.valid = err, end
		}
		if resync == nil {
			resync = make([]byte, min(64<<10, size)+frameHeader+1)
		}
		next := findFrame(r, end+1, size, resync, &budget)
		if next < 0 {
			res.skipped += size - end
			break
		}
		res.skipped += next - end
		off = next
	}
	if res.corrupt == nil {
		res.valid = size
	}
	return res
}

// scanFrames reads good frames from off on, returning where it stopped
// and, before the end of the file, why.
func scanFrames(r io.ReaderAt, off, size int64, fn func(off int64, received int64, chunks []chunkMeta)) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), int(min(max(size-off, 4096), 1<<20)))
	var payload []byte
	fh := make([]byte, frameHeader)
	for {
		if _, err := io.ReadFull(br, fh); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, fmt.Errorf("%w: torn frame header at offset %d", errCorrupt, off)
		}
		n := binary.LittleEndian.Uint32(fh)
		if n > maxPayloadBytes || int64(n) > size-off-frameHeader {
			return off, fmt.Errorf("%w: frame at offset %d claims %d bytes", errCorrupt, off, n)
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return off, fmt.Errorf("%w: torn frame at offset %d", errCorrupt, off)
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
			return off, fmt.Errorf("%w: checksum mismatch in frame at offset %d", errCorrupt, off)
		}
		received, chunks, err := decodePayload(payload)
		if err != nil {
			return off, fmt.Errorf("frame at offset %d: %w", off, err)
		}
		fn(off, received, chunks)
		off += frameHeader + int64(n)
	}
}

// findFrame returns the first offset at or after from where a whole frame
// checks out, or -1. Candidates are cheap to rule out (the length must fit,
// the payload must start with its version byte); only those left get their
// CRC computed, and that work is taken from budget (bytes checksummed).
// buf is the read window, reused across calls.
func findFrame(r io.ReaderAt, from, size int64, buf []byte, budget *int64) int64 {
	window := len(buf) - frameHeader - 1
	var payload []byte
	for base := from; base+frameHeader+1 <= size; base += int64(window) {
		n, _ := r.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		for i := 0; i+frameHeader+1 <= n && i < window; i++ {
			p := base + int64(i)
			length := binary.LittleEndian.Uint32(buf[i:])
			if length < 1+8+1 || length > maxPayloadBytes || int64(length) > size-p-frameHeader || buf[i+frameHeader] != payloadVersion {
				continue
			}
			if *budget -= int64(length); *budget < 0 {
				return -1
			}
			if cap(payload) < int(length) {
				payload = make([]byte, length)
			}
			payload = payload[:length]
			if _, err := r.ReadAt(payload, p+frameHeader); err != nil {
				continue
			}
			if crc32.Checksum(payload, castagnoli) == binary.LittleEndian.Uint32(buf[i+4:]) {
				return p
			}
		}
	}
	return -1
}
