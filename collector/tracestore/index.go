package tracestore

import (
	"bytes"
	"container/heap"
	"encoding/hex"
	"slices"
	"time"
	"unique"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// chunkRef locates one trace's spans of one batch on disk and keeps that
// batch's summary, so that dropping a segment can recompute the trace's.
type chunkRef struct {
	seg      *segment
	off      int64 // of the data in the segment file
	size     uint32
	crc      uint32
	spans    uint32
	start    int64
	end      int64
	flags    uint8
	rootSvc  unique.Handle[string]
	rootName unique.Handle[string]
	services []unique.Handle[string]
}

// traceEntry is the in-memory index entry of one trace: where its spans are
// and the summary search filters on.
type traceEntry struct {
	id       pcommon.TraceID
	chunks   []chunkRef
	start    int64
	end      int64
	spans    uint32
	flags    uint8
	rootSvc  unique.Handle[string]
	rootName unique.Handle[string]
	services []unique.Handle[string]
	// svc0 is services[0], inline: most traces of a search are rejected on
	// it without a second memory access.
	svc0 unique.Handle[string]
}

func (e *traceEntry) add(c chunkRef) {
	e.merge(&c, len(e.chunks) == 0)
	e.chunks = append(e.chunks, c)
}

// merge folds a chunk's summary into the trace's.
func (e *traceEntry) merge(c *chunkRef, first bool) {
	if first {
		e.start, e.end = c.start, c.end
	} else {
		e.start, e.end = min(e.start, c.start), max(e.end, c.end)
	}
	e.spans += c.spans
	if c.flags&flagRoot != 0 && e.flags&flagRoot == 0 {
		e.rootSvc, e.rootName = c.rootSvc, c.rootName
	}
	e.flags |= c.flags
	if e.services == nil {
		// Shared with the chunk until a second service shows up: cap == len,
		// so appendUnique copies rather than writing into the chunk's slice.
		e.services = c.services
	} else {
		for _, s := range c.services {
			e.services = appendUnique(e.services, s)
		}
	}
	if len(e.services) > 0 {
		e.svc0 = e.services[0]
	}
}

// dropSegment removes the chunks stored in seg and recomputes the summary.
// It reports whether any chunk is left.
func (e *traceEntry) dropSegment(seg *segment) bool {
	chunks := slices.DeleteFunc(e.chunks, func(c chunkRef) bool { return c.seg == seg })
	*e = traceEntry{id: e.id, chunks: chunks}
	for i := range chunks {
		e.merge(&chunks[i], i == 0)
	}
	return len(chunks) > 0
}

// Status is a trace's status as search sees it: error when any span failed,
// ok when none failed and at least one was explicitly marked Ok, unset
// otherwise.
type Status string

// The trace statuses search filters on.
const (
	StatusUnset Status = "unset"
	StatusOK    Status = "ok"
	StatusError Status = "error"
)

func (e *traceEntry) status() Status {
	switch {
	case e.flags&flagError != 0:
		return StatusError
	case e.flags&flagOK != 0:
		return StatusOK
	}
	return StatusUnset
}

// Query selects traces. Zero fields do not filter.
type Query struct {
	// Service matches traces with at least one span from this service.name.
	Service string
	// Status matches the trace status (see Status).
	Status Status
	// MinDuration and MaxDuration bound the trace duration: latest span end
	// minus earliest span start.
	MinDuration time.Duration
	MaxDuration time.Duration
	// Start and End select traces with any span time in [Start, End].
	Start time.Time
	End   time.Time
	// Limit caps the result; the newest traces (by start) are kept.
	Limit int
}

// TraceSummary is one search result.
type TraceSummary struct {
	TraceID string `json:"traceID"`
	// RootServiceName and RootSpanName come from the span without a parent;
	// they are empty while that span has not arrived.
	RootServiceName string    `json:"rootServiceName"`
	RootSpanName    string    `json:"rootSpanName"`
	StartTime       time.Time `json:"startTime"`
	DurationSeconds float64   `json:"durationSeconds"`
	SpanCount       int       `json:"spanCount"`
	Status          Status    `json:"status"`
	Error           bool      `json:"error"`
	Services        []string  `json:"services"`
}

type matcher struct {
	q       Query
	service unique.Handle[string]
	start   int64
	end     int64
}

func newMatcher(q Query) matcher {
	m := matcher{q: q, start: 0, end: int64(^uint64(0) >> 1)}
	if q.Service != "" {
		m.service = unique.Make(q.Service)
	}
	if !q.Start.IsZero() {
		m.start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		m.end = q.End.UnixNano()
	}
	return m
}

func (m *matcher) match(e *traceEntry) bool {
	if e.end < m.start || e.start > m.end {
		return false
	}
	d := time.Duration(e.end - e.start)
	if d < m.q.MinDuration || (m.q.MaxDuration > 0 && d > m.q.MaxDuration) {
		return false
	}
	if m.q.Status != "" && e.status() != m.q.Status {
		return false
	}
	if m.q.Service != "" && e.svc0 != m.service && (len(e.services) < 2 || !slices.Contains(e.services[1:], m.service)) {
		return false
	}
	return true
}

// hit is a search candidate; the heap keeps the newest Limit of them with
// the oldest on top.
type hit struct {
	id    pcommon.TraceID
	entry *traceEntry // valid while the read lock is held
}

type hitHeap []hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return newer(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// newer orders by start time, then trace ID, so results are deterministic.
func newer(a, b hit) bool {
	if a.entry.start != b.entry.start {
		return a.entry.start > b.entry.start
	}
	return bytes.Compare(a.id[:], b.id[:]) > 0
}

func summarize(id pcommon.TraceID, e *traceEntry) TraceSummary {
	s := TraceSummary{
		TraceID:         hex.EncodeToString(id[:]),
		StartTime:       time.Unix(0, e.start).UTC(),
		DurationSeconds: time.Duration(e.end - e.start).Seconds(),
		SpanCount:       int(e.spans),
		Status:          e.status(),
		Error:           e.flags&flagError != 0,
		Services:        make([]string, 0, len(e.services)),
	}
	if e.flags&flagRoot != 0 {
		s.RootServiceName, s.RootSpanName = e.rootSvc.Value(), e.rootName.Value()
	}
	for _, h := range e.services {
		s.Services = append(s.Services, h.Value())
	}
	slices.Sort(s.Services)
	return s
}

// search returns the newest traces matching q. The caller holds the read
// lock.
func search(entries []traceEntry, q Query) []TraceSummary {
	m := newMatcher(q)
	h := make(hitHeap, 0, q.Limit+1)
	for i := range entries {
		e := &entries[i]
		if !m.match(e) {
			continue
		}
		c := hit{id: e.id, entry: e}
		if len(h) < q.Limit {
			heap.Push(&h, c)
		} else if newer(c, h[0]) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	slices.SortFunc(h, func(a, b hit) int {
		if newer(a, b) {
			return -1
		}
		return 1
	})
	out := make([]TraceSummary, 0, len(h))
	for _, c := range h {
		out = append(out, summarize(c.id, c.entry))
	}
	return out
}
