// Package faults holds the demo platform's fault flags: named switches that
// make a component fail, slow down or misbehave while the platform runs, so
// that SLOs, alerts and incident drills have something real to react to.
//
// Flags are changed at run time through the HTTP API (and the CLI and UI on
// top of it). Every change is recorded as an event in SQLite so that it can be
// drawn as a dashboard annotation and placed on an incident timeline. The hot
// path reads one immutable State through an atomic pointer, so a request pays
// one load, not a lock, to learn which faults apply.
package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownFlag is returned for a flag name that is not in the catalogue.
var ErrUnknownFlag = errors.New("unknown fault flag")

// ErrBadValue is returned when a flag value does not parse or is out of range.
var ErrBadValue = errors.New("bad fault value")

// Component names a tier of the demo platform.
type Component int

// The four tiers, in request order.
const (
	Edge Component = iota
	API
	Cache
	Store
	numComponents
)

// Components lists every tier in request order.
var Components = []Component{Edge, API, Cache, Store}

func (c Component) String() string {
	switch c {
	case Edge:
		return "edge"
	case API:
		return "api"
	case Cache:
		return "cache"
	case Store:
		return "store"
	}
	return "unknown"
}

// Cache modes.
const (
	CacheOn    = "on"
	CacheOff   = "off"
	CacheLeaky = "leaky"
)

// DefaultShardSlowLatency is the delay of a slow shard when the flag value
// does not name one ("1" rather than "1@2s").
const DefaultShardSlowLatency = 250 * time.Millisecond

// MaxLatency bounds injected latency: longer than any hop's timeout is
// pointless and a typo such as 10h must not hold connections for hours.
const MaxLatency = time.Minute

// MaxLeakMB bounds the memory-leak fault so that a drill cannot take the
// machine down with it.
const MaxLeakMB = 1024

// kind is how a flag's value is written and parsed.
type kind string

const (
	kindFraction kind = "fraction" // 0..1
	kindDuration kind = "duration" // Go duration
	kindShards   kind = "shards"   // comma-separated shard numbers, each optionally @duration
	kindEnum     kind = "enum"
	kindRate     kind = "rate"       // requests per second, > 0
	kindCores    kind = "cores"      // CPU cores to burn, 0..NumCPU
	kindMB       kind = "megabytes"  // bounded memory
	kindTargets  kind = "components" // comma-separated component names
	kindBool     kind = "bool"       // true or false
)

// Spec describes one flag of the catalogue.
type Spec struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Example     string `json:"example"`
	kind        kind
	enum        []string
}

// Catalog is every fault flag the platform understands, in display order.
var Catalog = func() []Spec {
	var out []Spec
	for _, c := range Components {
		out = append(out, Spec{
			Name: c.String() + ".error_fraction", kind: kindFraction, Example: "0.1",
			Description: fmt.Sprintf("fraction of requests the %s answers with 500 (injected)", c),
		})
	}
	for _, c := range Components {
		out = append(out, Spec{
			Name: c.String() + ".latency", kind: kindDuration, Example: "200ms",
			Description: fmt.Sprintf("latency added to every request the %s serves", c),
		})
	}
	out = append(out,
		Spec{Name: "store.shard_down", kind: kindShards, Example: "1",
			Description: "shards that refuse every request with 503"},
		Spec{Name: "store.shard_slow", kind: kindShards, Example: "2@500ms",
			Description: "shards that answer late (default " + DefaultShardSlowLatency.String() + " unless N@duration)"},
		Spec{Name: "cache.mode", kind: kindEnum, enum: []string{CacheOn, CacheOff, CacheLeaky}, Example: "leaky",
			Description: "off bypasses the cache, leaky misses on half of the lookups"},
		Spec{Name: "edge.rate_limit", kind: kindRate, Example: "5",
			Description: "lowered per-client rate limit at the edge, requests per second"},
		Spec{Name: "cpu.burn", kind: kindCores, Example: "1",
			Description: "CPU cores to keep busy (fractions allowed)"},
		Spec{Name: "memory.leak", kind: kindMB, Example: "256",
			Description: fmt.Sprintf("megabytes to leak, growing at 16 MB/s, at most %d", MaxLeakMB)},
		Spec{Name: "api.unready", kind: kindBool, Example: "true",
			Description: "API replicas fail their readiness check (/healthz answers 503), so the edge takes them out of rotation"},
		Spec{Name: "dependency.unreachable", kind: kindTargets, Example: "store",
			Description: "tiers whose callers cannot connect to them (api, cache, store)"},
	)
	for i := range out {
		out[i].Kind = string(out[i].kind)
	}
	return out
}()

func lookup(name string) (Spec, bool) {
	for _, s := range Catalog {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// State is the set of active faults, in a form the hot path reads directly.
// A State is never modified after it is published.
type State struct {
	ErrorFraction [numComponents]float64
	Latency       [numComponents]time.Duration
	Unreachable   [numComponents]bool
	// ShardDown and ShardSlow are keyed by shard number.
	ShardDown map[int]bool
	ShardSlow map[int]time.Duration
	// CacheMode is CacheOn, CacheOff or CacheLeaky.
	CacheMode string
	// EdgeRateLimit, when above zero, replaces the configured per-client rate.
	EdgeRateLimit float64
	CPUBurn       float64
	MemoryLeakMB  int
	// APIUnready fails the API replicas' readiness check (api.unready).
	APIUnready bool
}

// Fail tells whether this request of component c should fail, by its error
// fraction.
func (s *State) Fail(c Component) bool {
	f := s.ErrorFraction[c]
	return f > 0 && (f >= 1 || rand.Float64() < f)
}

// Leak tells whether a cache lookup should miss on purpose (leaky mode).
func (s *State) Leak() bool {
	return s.CacheMode == CacheLeaky && rand.IntN(2) == 0
}

// Value is one flag's current setting as the API shows it.
type Value struct {
	Name  string    `json:"name"`
	Value string    `json:"value"`
	SetAt time.Time `json:"set_at"`
}

// apply parses raw for the flag spec and writes it into st.
func apply(st *State, spec Spec, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s=%q: %s", ErrBadValue, spec.Name, raw, fmt.Sprintf(format, args...))
	}
	comp := func() Component {
		for _, c := range Components {
			if strings.HasPrefix(spec.Name, c.String()+".") {
				return c
			}
		}
		return Edge
	}()
	switch spec.kind {
	case kindFraction:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || f < 0 || f > 1 {
			return "", bad("want a fraction between 0 and 1")
		}
		st.ErrorFraction[comp] = f
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case kindDuration:
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 || d > MaxLatency {
			return "", bad("want a duration between 0s and %s, such as 200ms", MaxLatency)
		}
		st.Latency[comp] = d
		return d.String(), nil
	case kindShards:
		m, canon, err := parseShards(raw)
		if err != nil {
			return "", bad("%v", err)
		}
		if spec.Name == "store.shard_down" {
			st.ShardDown = map[int]bool{}
			for n := range m {
				st.ShardDown[n] = true
			}
			return canon, nil
		}
		st.ShardSlow = m
		return canon, nil
	case kindEnum:
		if !slices.Contains(spec.enum, raw) {
			return "", bad("want one of %s", strings.Join(spec.enum, ", "))
		}
		st.CacheMode = raw
		return raw, nil
	case kindRate:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || f <= 0 {
			return "", bad("want requests per second above 0")
		}
		st.EdgeRateLimit = f
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case kindCores:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || f < 0 || f > 64 {
			return "", bad("want a number of cores between 0 and 64")
		}
		st.CPUBurn = f
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case kindMB:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > MaxLeakMB {
			return "", bad("want whole megabytes between 0 and %d", MaxLeakMB)
		}
		st.MemoryLeakMB = n
		return strconv.Itoa(n), nil
	case kindBool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return "", bad("want true or false")
		}
		st.APIUnready = b
		return strconv.FormatBool(b), nil
	case kindTargets:
		var names []string
		for part := range strings.SplitSeq(raw, ",") {
			part = strings.TrimSpace(part)
			var found bool
			for _, c := range []Component{API, Cache, Store} {
				if c.String() == part {
					st.Unreachable[c] = true
					found = true
				}
			}
			if !found {
				return "", bad("want a comma-separated list of api, cache, store")
			}
			names = append(names, part)
		}
		sort.Strings(names)
		return strings.Join(slices.Compact(names), ","), nil
	}
	return "", bad("unsupported kind %s", spec.kind)
}

// parseShards parses "1,3@2s" into shard -> latency.
func parseShards(raw string) (map[int]time.Duration, string, error) {
	out := map[int]time.Duration{}
	for part := range strings.SplitSeq(raw, ",") {
		num, lat, hasLat := strings.Cut(strings.TrimSpace(part), "@")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > 1023 {
			return nil, "", errors.New("want shard numbers such as 1 or 0,2 (slow shards may add @duration)")
		}
		d := DefaultShardSlowLatency
		if hasLat {
			d, err = time.ParseDuration(lat)
			if err != nil || d < 0 || d > MaxLatency {
				return nil, "", fmt.Errorf("shard %d: want a duration between 0s and %s", n, MaxLatency)
			}
		}
		out[n] = d
	}
	keys := make([]int, 0, len(out))
	for n := range out {
		keys = append(keys, n)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, n := range keys {
		parts[i] = strconv.Itoa(n)
		if out[n] != DefaultShardSlowLatency {
			parts[i] += "@" + out[n].String()
		}
	}
	return out, strings.Join(parts, ","), nil
}
