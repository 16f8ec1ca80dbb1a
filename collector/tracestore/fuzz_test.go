package tracestore

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedSegment is a real segment file written by the store.
func seedSegment(t testing.TB) []byte {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Config: DefaultConfig()})
	require.NoError(t, err)
	for _, td := range checkoutBatches() {
		_, err := s.Append(context.Background(), td)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	require.NoError(t, err)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return data
}

// FuzzScanSegment feeds arbitrary bytes to the reader Open uses on every
// segment file: it must skip damage, never panic, and report only
// chunks that lie inside the bytes it was given.
func FuzzScanSegment(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(seg[:segmentHeader])
	f.Add([]byte("BRTS\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := scanSegment(bytes.NewReader(data), int64(len(data)), func(off, _ int64, chunks []chunkMeta) {
			for _, c := range chunks {
				end := off + frameHeader + int64(c.dataOff) + int64(c.dataLen)
				if end > int64(len(data)) {
					t.Fatalf("chunk at frame %d ends at %d, past the %d bytes", off, end, len(data))
				}
			}
		})
		if res.valid > int64(len(data)) {
			t.Fatalf("valid prefix %d longer than the data (%d)", res.valid, len(data))
		}
		if res.corrupt == nil && res.valid != int64(len(data)) {
			t.Fatalf("no damage reported but only %d of %d bytes read", res.valid, len(data))
		}
	})
}

// FuzzDecodePayload checks the chunk-header decoder on arbitrary payloads:
// whatever it accepts must encode back to the same headers.
func FuzzDecodePayload(f *testing.F) {
	seg := seedSegment(f)
	first := int(le32(seg[segmentHeader:]))
	f.Add(seg[segmentHeader+frameHeader : segmentHeader+frameHeader+first])
	f.Add([]byte{payloadVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{payloadVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		received, chunks, err := decodePayload(payload)
		if err != nil {
			return
		}
		groups := make([]*traceGroup, len(chunks))
		for i, c := range chunks {
			groups[i] = &traceGroup{meta: c, data: payload[c.dataOff : c.dataOff+c.dataLen]}
		}
		frame := encodeFrame(nil, received, groups)
		received2, chunks2, err := decodePayload(frame[frameHeader:])
		require.NoError(t, err)
		require.Equal(t, received, received2)
		require.Len(t, chunks2, len(chunks))
		for i := range chunks {
			a, b := chunks[i], chunks2[i]
			a.dataOff, b.dataOff = 0, 0
			require.Equal(t, a, b)
		}
	})
}

// FuzzParseQuery checks the search parameter parser on arbitrary query
// strings: an accepted query is always within bounds.
func FuzzParseQuery(f *testing.F) {
	for _, q := range []string{
		"service=demo-api&status=error&min_duration=200ms&start=2026-03-01T12:00:00Z&end=1772366400.5&limit=20",
		"min_duration=0.25&max_duration=1h",
		"start=1e400", "limit=-1", "status=%ff", "end=NaN", "min_duration=9223372036854775807",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/api/v1/traces", nil)
		require.NoError(t, err)
		r.URL.RawQuery = raw
		q, err := ParseQuery(r)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > maxLimit || q.MinDuration < 0 || q.MaxDuration < 0 {
			t.Fatalf("out-of-bounds query accepted: %+v", q)
		}
		if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
			t.Fatalf("end before start accepted: %+v", q)
		}
	})
}

// FuzzParseTraceID checks the trace ID parser: what it accepts is 16 or 32
// hex digits, and prints back as the same digits in lower case.
func FuzzParseTraceID(f *testing.F) {
	for _, s := range []string{traceA, strings.ToUpper(traceB), "0000000000c0ffee", "00000000000000000000000000000000", "xyz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseTraceID(s)
		if err != nil {
			return
		}
		got := hex.EncodeToString(id[:])
		if !strings.HasSuffix(got, strings.ToLower(s)) || (len(s) != 32 && len(s) != 16) {
			t.Fatalf("%q parsed as %s", s, got)
		}
	})
}
