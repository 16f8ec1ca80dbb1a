package tracestore

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// spanKey identifies a span: its trace and span IDs.
type spanKey [24]byte

func keyOf(trace pcommon.TraceID, span pcommon.SpanID) spanKey {
	var k spanKey
	copy(k[:16], trace[:])
	copy(k[16:], span[:])
	return k
}

// recentGeneration is how many span keys one generation of recentSpans
// holds: two generations remember the last 256k-512k spans stored, what an
// SDK retrying a timed-out export resends within seconds.
const recentGeneration = 256 << 10

// recentSpans remembers the spans stored lately, so that a batch an SDK
// retries after a timeout (the first attempt was stored, its answer lost)
// is not stored twice. Memory is bounded: when the current generation is
// full the previous one is forgotten. It is not rebuilt on restart.
type recentSpans struct {
	mu        sync.Mutex
	cur, prev map[spanKey]struct{}
}

func newRecentSpans() *recentSpans {
	return &recentSpans{cur: make(map[spanKey]struct{})}
}

func (r *recentSpans) contains(k spanKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[k]; ok {
		return true
	}
	_, ok := r.prev[k]
	return ok
}

func (r *recentSpans) add(keys []spanKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if len(r.cur) >= recentGeneration {
			r.prev, r.cur = r.cur, make(map[spanKey]struct{}, recentGeneration)
		}
		r.cur[k] = struct{}{}
	}
}
