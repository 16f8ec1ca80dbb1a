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
	// corrupt describes why reading stopped early; nil when the whole file
	// was read.
	corrupt error
}

// scanSegment reads frames from r until the end or the first bad frame, and
// calls fn for each good one with the frame's offset and decoded chunks. A
// bad frame (a torn tail after a crash, or damage) ends the scan: nothing
// after it can be trusted to start at a frame boundary.
func scanSegment(r io.Reader, size int64, fn func(off int64, received int64, chunks []chunkMeta)) scanResult {
	br := bufio.NewReaderSize(r, int(min(max(size, 4096), 1<<20)))
	hdr := make([]byte, segmentHeader)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return scanResult{corrupt: fmt.Errorf("%w: short segment header", errCorrupt)}
	}
	if string(hdr[:4]) != segmentMagic || binary.LittleEndian.Uint32(hdr[4:]) != segmentVersion {
		return scanResult{corrupt: fmt.Errorf("%w: not a version %d trace segment", errCorrupt, segmentVersion)}
	}
	off := int64(segmentHeader)
	var payload []byte
	fh := make([]byte, frameHeader)
	for {
		if _, err := io.ReadFull(br, fh); err != nil {
			if errors.Is(err, io.EOF) {
				return scanResult{valid: off}
			}
			return scanResult{valid: off, corrupt: fmt.Errorf("%w: torn frame header at offset %d", errCorrupt, off)}
		}
		n := binary.LittleEndian.Uint32(fh)
		if n > maxPayloadBytes || int64(n) > size-off-frameHeader {
			return scanResult{valid: off, corrupt: fmt.Errorf("%w: frame at offset %d claims %d bytes", errCorrupt, off, n)}
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return scanResult{valid: off, corrupt: fmt.Errorf("%w: torn frame at offset %d", errCorrupt, off)}
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
			return scanResult{valid: off, corrupt: fmt.Errorf("%w: checksum mismatch in frame at offset %d", errCorrupt, off)}
		}
		received, chunks, err := decodePayload(payload)
		if err != nil {
			return scanResult{valid: off, corrupt: fmt.Errorf("frame at offset %d: %w", off, err)}
		}
		fn(off, received, chunks)
		off += frameHeader + int64(n)
	}
}
