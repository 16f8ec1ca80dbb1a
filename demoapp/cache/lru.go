package cache

import (
	"container/list"
	"sync"
	"time"
)

// entryOverhead approximates what an entry costs beyond its key and value:
// the list element, the map slot and the entry struct.
const entryOverhead = 96

// lru is a least-recently-used map bounded in bytes (keys, values and a
// fixed overhead per entry) and in entries, with an optional TTL. The byte
// bound is what keeps the cache's memory bounded whatever the values weigh:
// an entry bound alone lets 500 one-megabyte carts take 500 MB.
type lru struct {
	mu         sync.Mutex
	maxBytes   int64
	maxEntries int
	ttl        time.Duration // 0: entries never expire
	now        func() time.Time

	ll    *list.List
	items map[string]*list.Element
	bytes int64
}

type entry struct {
	key     string
	value   []byte
	missing bool // a cached "not found"
	expires time.Time
}

func newLRU(maxBytes int64, maxEntries int, ttl time.Duration, now func() time.Time) *lru {
	return &lru{maxBytes: maxBytes, maxEntries: maxEntries, ttl: ttl, now: now, ll: list.New(), items: map[string]*list.Element{}}
}

func cost(key string, value []byte) int64 { return int64(len(key) + len(value) + entryOverhead) }

// get returns the entry of key unless it expired.
func (c *lru) get(key string) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return entry{}, false
	}
	e := el.Value.(*entry)
	if c.ttl > 0 && !c.now().Before(e.expires) {
		c.removeLocked(el)
		return entry{}, false
	}
	c.ll.MoveToFront(el)
	return *e, true
}

// add sets key, with ttl overriding the cache's own when above 0. A value
// larger than the whole bound is not kept.
func (c *lru) add(key string, value []byte, missing bool, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
	sz := cost(key, value)
	if sz > c.maxBytes {
		return
	}
	if ttl <= 0 {
		ttl = c.ttl
	}
	e := &entry{key: key, value: value, missing: missing}
	if ttl > 0 {
		e.expires = c.now().Add(ttl)
	}
	c.items[key] = c.ll.PushFront(e)
	c.bytes += sz
	for c.bytes > c.maxBytes || (c.maxEntries > 0 && c.ll.Len() > c.maxEntries) {
		c.removeLocked(c.ll.Back())
	}
}

func (c *lru) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
}

func (c *lru) removeLocked(el *list.Element) {
	e := el.Value.(*entry)
	c.ll.Remove(el)
	delete(c.items, e.key)
	c.bytes -= cost(e.key, e.value)
}

// size is the number of entries and their bytes.
func (c *lru) size() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}
