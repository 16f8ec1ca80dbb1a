package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/resilience"
)

// ErrUnavailable is returned when the shard owning a key did not answer
// (down, too slow, breaker open, unreachable).
var ErrUnavailable = errors.New("shard unavailable")

// Ring places keys on shards by consistent hashing (buraksezer/consistent,
// bounded loads). Adding a shard moves only about 1/N of the keys, which is
// why it is used instead of hash(key) mod N.
type Ring struct{ c *consistent.Consistent }

type member string

func (m member) String() string { return string(m) }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// NewRing returns the ring of n shards.
func NewRing(n int) *Ring {
	members := make([]consistent.Member, n)
	for i := range n {
		members[i] = member("shard-" + strconv.Itoa(i))
	}
	return &Ring{c: consistent.New(members, consistent.Config{
		PartitionCount:    271,
		ReplicationFactor: 40,
		Load:              1.25,
		Hasher:            hasher{},
	})}
}

// Shard is the shard that owns key. A key with a hash tag, a part in braces
// such as order:{cart:ann}:1f, is placed by the tag alone (as in Redis
// Cluster), so keys that must be written together live on one shard.
func (r *Ring) Shard(key string) int {
	name := r.c.LocateKey([]byte(RoutingKey(key))).String()
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "shard-"))
	return n
}

// RoutingKey is the part of key that places it: its hash tag if it has one,
// else the whole key.
func RoutingKey(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// ErrCrossShard is returned for a batch whose keys live on different shards.
var ErrCrossShard = errors.New("batch spans shards: give its keys one hash tag")

// Client reads and writes keys, routing each to its shard with a resilient
// client (timeout, retries, breaker) per shard.
type Client struct {
	base    string
	ring    *Ring
	clients []*resilience.Client
}

// NewClient returns a store client for the store at base (http://host:port).
func NewClient(base string, shards int, pool *resilience.Pool, cfg resilience.Config, set *faults.Set) *Client {
	c := &Client{base: strings.TrimSuffix(base, "/"), ring: NewRing(shards)}
	unreachable := func() bool { return set.State().Unreachable[faults.Store] }
	for i := range shards {
		c.clients = append(c.clients, pool.Client("store-shard-"+strconv.Itoa(i), cfg, unreachable))
	}
	return c
}

// Ring is the client's placement of keys.
func (c *Client) Ring() *Ring { return c.ring }

// Get reads key. It returns ErrNotFound or ErrUnavailable (wrapped) on failure.
func (c *Client) Get(ctx context.Context, key string, h http.Header) ([]byte, error) {
	n := c.ring.Shard(key)
	resp, err := c.clients[n].Do(ctx, http.MethodGet, c.url(n, key), nil, h)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w: %w", n, ErrUnavailable, err)
	}
	switch {
	case resp.Status == http.StatusNotFound:
		return nil, ErrNotFound
	case resp.Status != http.StatusOK:
		return nil, fmt.Errorf("shard %d: %w: answered %d", n, ErrUnavailable, resp.Status)
	}
	return resp.Body, nil
}

// Put writes key.
func (c *Client) Put(ctx context.Context, key string, value []byte, h http.Header) error {
	n := c.ring.Shard(key)
	resp, err := c.clients[n].Do(ctx, http.MethodPut, c.url(n, key), value, h)
	if err != nil {
		return fmt.Errorf("shard %d: %w: %w", n, ErrUnavailable, err)
	}
	if resp.Status != http.StatusNoContent {
		return fmt.Errorf("shard %d: %w: answered %d: %s", n, ErrUnavailable, resp.Status, strings.TrimSpace(string(resp.Body)))
	}
	return nil
}

// PutBatch writes every key of kvs at once (one log line on one shard):
// all of them or none. The keys must share a shard (a hash tag).
func (c *Client) PutBatch(ctx context.Context, kvs []KV, h http.Header) error {
	if len(kvs) == 0 {
		return nil
	}
	n := c.ring.Shard(kvs[0].K)
	for _, kv := range kvs[1:] {
		if c.ring.Shard(kv.K) != n {
			return fmt.Errorf("%w: %s and %s", ErrCrossShard, kvs[0].K, kv.K)
		}
	}
	body, err := json.Marshal(kvs)
	if err != nil {
		return err
	}
	resp, err := c.clients[n].Do(ctx, http.MethodPost, c.base+"/shards/"+strconv.Itoa(n)+"/batch", body, h)
	if err != nil {
		return fmt.Errorf("shard %d: %w: %w", n, ErrUnavailable, err)
	}
	if resp.Status != http.StatusNoContent {
		return fmt.Errorf("shard %d: %w: answered %d: %s", n, ErrUnavailable, resp.Status, strings.TrimSpace(string(resp.Body)))
	}
	return nil
}

func (c *Client) url(n int, key string) string {
	return c.base + "/shards/" + strconv.Itoa(n) + "/kv/" + url.PathEscape(key)
}
