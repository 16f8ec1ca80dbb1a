package tracestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"unique"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// On-disk layout (little endian throughout):
//
//	segment = magic "BRTS" | uint32 version (1) | frame*
//	frame   = uint32 payload length | uint32 CRC-32C(payload) | payload
//	payload = byte version (1) | int64 received (unix ns) | uvarint chunks | chunk*
//	chunk   = [16]byte trace ID | varint start | varint end (unix ns) |
//	          uvarint spans | byte flags | string root service | string root name |
//	          uvarint services | string* | uvarint data length |
//	          uint32 CRC-32C(data) | data
//	string  = uvarint length | bytes
//
// One frame holds one Append call, so a batch is either wholly on disk or
// (torn by a crash) wholly skipped. Inside it, one chunk per trace holds that
// trace's spans as an OTLP protobuf TracesData message: a by-ID lookup reads
// and decodes only its own chunks, never the rest of the batch. The chunk
// header repeats what search needs, so Open rebuilds the index without
// decoding any protobuf.

const (
	segmentMagic    = "BRTS"
	segmentVersion  = 1
	segmentHeader   = 8
	frameHeader     = 8
	payloadVersion  = 1
	maxPayloadBytes = 64 << 20 // a frame claiming more is corrupt
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks bytes that are not a valid frame or payload.
var errCorrupt = errors.New("corrupt record")

const (
	flagError = 1 << iota // a span has status Error
	flagOK                // a span has status Ok
	flagRoot              // the chunk holds the root span (no parent)
)

// chunkMeta is what a chunk header says about one trace's spans in one batch.
type chunkMeta struct {
	traceID  pcommon.TraceID
	start    int64 // unix ns, earliest span start
	end      int64 // unix ns, latest span end
	spans    uint32
	flags    uint8
	rootSvc  unique.Handle[string]
	rootName unique.Handle[string]
	services []unique.Handle[string]
	dataOff  int // offset of data in the payload
	dataLen  int
	dataCRC  uint32
}

// traceGroup collects one trace's spans of a batch while it is split.
type traceGroup struct {
	meta   chunkMeta
	td     ptrace.Traces
	lastRS int
	lastSS int
	data   []byte
	dstRS  ptrace.ResourceSpans
	dstSS  ptrace.ScopeSpans
}

// splitByTrace groups a batch's spans by trace ID, keeping each span's
// resource and scope. Spans without a valid trace or span ID are counted as
// rejected: they could never be looked up. Spans stored already (seen, or
// twice in the batch) are left out and counted as duplicates; keys lists
// the spans kept.
func splitByTrace(td ptrace.Traces, seen func(spanKey) bool) (groups []*traceGroup, rejected, duplicates int, keys []spanKey) {
	inBatch := make(map[spanKey]struct{})
	byID := make(map[pcommon.TraceID]*traceGroup)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc := serviceName(rs.Resource())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id := sp.TraceID()
				if id.IsEmpty() || sp.SpanID().IsEmpty() {
					rejected++
					continue
				}
				key := keyOf(id, sp.SpanID())
				if _, twice := inBatch[key]; twice || seen(key) {
					duplicates++
					continue
				}
				inBatch[key] = struct{}{}
				keys = append(keys, key)
				g := byID[id]
				if g == nil {
					g = &traceGroup{td: ptrace.NewTraces(), lastRS: -1, lastSS: -1}
					g.meta.traceID = id
					g.meta.start = math.MaxInt64
					g.meta.end = math.MinInt64
					byID[id] = g
					groups = append(groups, g)
				}
				if g.lastRS != i {
					g.dstRS = g.td.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(g.dstRS.Resource())
					g.dstRS.SetSchemaUrl(rs.SchemaUrl())
					g.lastRS, g.lastSS = i, -1
					g.meta.services = appendUnique(g.meta.services, svc)
				}
				if g.lastSS != j {
					g.dstSS = g.dstRS.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(g.dstSS.Scope())
					g.dstSS.SetSchemaUrl(ss.SchemaUrl())
					g.lastSS = j
				}
				sp.CopyTo(g.dstSS.Spans().AppendEmpty())
				g.add(sp, svc)
			}
		}
	}
	return groups, rejected, duplicates, keys
}

func (g *traceGroup) add(sp ptrace.Span, svc unique.Handle[string]) {
	m := &g.meta
	start, end := spanTimes(sp)
	m.start = min(m.start, start)
	m.end = max(m.end, end)
	m.spans++
	switch sp.Status().Code() {
	case ptrace.StatusCodeError:
		m.flags |= flagError
	case ptrace.StatusCodeOk:
		m.flags |= flagOK
	}
	if sp.ParentSpanID().IsEmpty() && m.flags&flagRoot == 0 {
		m.flags |= flagRoot
		m.rootSvc = svc
		m.rootName = unique.Make(sp.Name())
	}
}

// spanTimes returns a span's start and end in unix ns, clamped so that an
// end before the start (a clock or SDK bug) counts as zero duration.
func spanTimes(sp ptrace.Span) (start, end int64) {
	start = clampNanos(uint64(sp.StartTimestamp()))
	end = clampNanos(uint64(sp.EndTimestamp()))
	return start, max(start, end)
}

func clampNanos(ns uint64) int64 {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(ns)
}

// unknownService is what the OpenTelemetry SDKs report when service.name is
// not set.
const unknownService = "unknown_service"

func serviceName(r pcommon.Resource) unique.Handle[string] {
	if v, ok := r.Attributes().Get("service.name"); ok && v.Str() != "" {
		return unique.Make(v.Str())
	}
	return unique.Make(unknownService)
}

func appendUnique(s []unique.Handle[string], h unique.Handle[string]) []unique.Handle[string] {
	for _, x := range s {
		if x == h {
			return s
		}
	}
	return append(s, h)
}

// marshal encodes every group's spans as OTLP protobuf.
func marshal(groups []*traceGroup) {
	var m ptrace.ProtoMarshaler
	for _, g := range groups {
		g.data, _ = m.MarshalTraces(g.td) // cannot fail: pdata sizes before it writes
		g.meta.dataLen = len(g.data)
		g.meta.dataCRC = crc32.Checksum(g.data, castagnoli)
	}
}

// chunkHeaderSize is an upper bound of a group's chunk header, used to pack
// groups into frames below maxPayloadBytes.
func chunkHeaderSize(c *chunkMeta) int {
	n := 16 + 3*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64 + 4 + binary.MaxVarintLen64
	n += len(handleValue(c.rootSvc)) + len(handleValue(c.rootName))
	for _, s := range c.services {
		n += binary.MaxVarintLen64 + len(s.Value())
	}
	return n
}

// encodeFrame builds one frame (header and payload) holding the groups,
// whose data must be marshalled, and sets each group's dataOff relative to
// the start of the payload.
func encodeFrame(buf []byte, received int64, groups []*traceGroup) []byte {
	buf = append(buf[:0], make([]byte, frameHeader)...)
	buf = append(buf, payloadVersion)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(received))
	buf = binary.AppendUvarint(buf, uint64(len(groups)))
	for _, g := range groups {
		c := &g.meta
		buf = append(buf, c.traceID[:]...)
		buf = binary.AppendVarint(buf, c.start)
		buf = binary.AppendVarint(buf, c.end)
		buf = binary.AppendUvarint(buf, uint64(c.spans))
		buf = append(buf, c.flags)
		buf = appendString(buf, handleValue(c.rootSvc))
		buf = appendString(buf, handleValue(c.rootName))
		buf = binary.AppendUvarint(buf, uint64(len(c.services)))
		for _, s := range c.services {
			buf = appendString(buf, s.Value())
		}
		buf = binary.AppendUvarint(buf, uint64(len(g.data)))
		buf = binary.LittleEndian.AppendUint32(buf, c.dataCRC)
		c.dataOff = len(buf) - frameHeader
		buf = append(buf, g.data...)
	}
	payload := buf[frameHeader:]
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(payload, castagnoli))
	return buf
}

func handleValue(h unique.Handle[string]) string {
	if h == (unique.Handle[string]{}) {
		return ""
	}
	return h.Value()
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodePayload parses a record payload's chunk headers. It never decodes the
// chunks' protobuf data and never panics on bad input.
func decodePayload(p []byte) (received int64, chunks []chunkMeta, err error) {
	d := decoder{buf: p}
	if v := d.byte(); v != payloadVersion {
		return 0, nil, fmt.Errorf("%w: payload version %d", errCorrupt, v)
	}
	received = int64(d.uint64())
	n := d.uvarint()
	// Every chunk takes at least 16+1+1+1+1+1+1+1+1+4 bytes: a count beyond
	// what the payload can hold is corruption, not a reason to allocate.
	if d.err != nil || n > uint64(len(p))/28 {
		return 0, nil, fmt.Errorf("%w: chunk count %d", errCorrupt, n)
	}
	chunks = make([]chunkMeta, 0, n)
	for range n {
		var c chunkMeta
		copy(c.traceID[:], d.bytes(16))
		c.start = d.varint()
		c.end = d.varint()
		spans := d.uvarint()
		if spans > math.MaxUint32 {
			d.fail("span count")
		}
		c.spans = uint32(spans)
		c.flags = d.byte()
		rootSvc, rootName := d.string(), d.string()
		if c.flags&flagRoot != 0 {
			c.rootSvc, c.rootName = unique.Make(rootSvc), unique.Make(rootName)
		}
		ns := d.uvarint()
		if ns > uint64(d.remaining()) {
			d.fail("service count")
		}
		for i := uint64(0); i < ns && d.err == nil; i++ {
			c.services = append(c.services, unique.Make(d.string()))
		}
		dl := d.uvarint()
		c.dataCRC = d.uint32()
		if dl > uint64(d.remaining()) {
			d.fail("data length")
		}
		c.dataLen = int(dl)
		c.dataOff = d.off
		d.bytes(c.dataLen)
		if d.err != nil {
			return 0, nil, d.err
		}
		chunks = append(chunks, c)
	}
	if d.remaining() != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, d.remaining())
	}
	return received, chunks, nil
}

// decoder reads a payload; the first error sticks and later reads return
// zero values, so callers check once.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s at offset %d", errCorrupt, what, d.off)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > d.remaining() {
		d.fail("length")
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uint32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(d.remaining()) {
		d.fail("string length")
		return ""
	}
	return string(d.bytes(int(n)))
}
