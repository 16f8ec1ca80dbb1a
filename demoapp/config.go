// Package demoapp is Burnrate's demo platform: an edge, a stateless API, a
// cache and a sharded store, instrumented with OpenTelemetry and exporting
// over OTLP/HTTP, with fault flags to break it on purpose, an open-model load
// generator (demoapp/load) and scripted game days (demoapp/gameday).
//
// Every tier is an HTTP server of its own, also when all of them run in one
// process (`burnrate up`): calls between tiers are HTTP requests with real
// timeouts, retries, breakers and trace context, so what the collector sees
// is what a deployment of four services would show. In one process they are
// handed to the callee's handler without the loopback wire
// (demo.tier_calls, demoapp/internal/inproc), which was a third of the
// process's CPU per request; every tier still listens, for callers outside
// the process.
package demoapp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/burnrate/burnrate/demoapp/load"
	"github.com/burnrate/burnrate/demoapp/resilience"
)

// Config is the `demo` section of the configuration.
type Config struct {
	// Enabled runs the demo platform (on in `burnrate up`, off in `serve`).
	Enabled bool `mapstructure:"enabled"`
	// EdgeListen is the edge's address, where users and the load go.
	EdgeListen string `mapstructure:"edge_listen"`
	// OTLPEndpoint is the collector's base URL (…/v1/metrics, …/v1/traces).
	// Empty means the process's own listener.
	OTLPEndpoint string `mapstructure:"otlp_endpoint"`
	// OTLPToken is sent as a bearer token with every export, for a
	// collector that requires one (collector.require_token: a token with
	// the ingest scope). `burnrate up` uses one of its own tokens when
	// this is empty; `burnrate demo --role` processes need it set.
	OTLPToken string `mapstructure:"otlp_token" secret:"true"`
	// Instrumentation turns OpenTelemetry on (traces, metrics, export).
	Instrumentation bool `mapstructure:"instrumentation"`
	// MetricInterval is how often metrics are exported; short so that SLOs
	// react within seconds.
	MetricInterval time.Duration `mapstructure:"metric_interval"`
	// TraceSampleRatio is the share of traces kept whole whatever they did,
	// decided on the trace ID at the edge. Outside it, spans that failed
	// or took at least TraceKeepSlowerThan are kept too (docs/traces.md).
	TraceSampleRatio float64 `mapstructure:"trace_sample_ratio"`
	// TraceKeepSlowerThan is the latency from which a span is kept outside
	// the share: the demo latency SLO's threshold (250ms). 0 keeps only
	// failed spans outside the share.
	TraceKeepSlowerThan time.Duration `mapstructure:"trace_keep_slower_than"`
	// TierCalls is how tiers running in one process call each other:
	// in_process (default) hands each call to the callee's handler without
	// the wire (demoapp/internal/inproc); loopback sends it over TCP to the
	// callee's listener. Tiers in other processes are always called over
	// the network.
	TierCalls string `mapstructure:"tier_calls"`
	// APIReplicas is how many API replicas the edge balances over.
	APIReplicas int `mapstructure:"api_replicas"`
	// Shards is the number of store shards.
	Shards int `mapstructure:"shards"`
	// Products is the size of the seeded catalogue.
	Products int `mapstructure:"products"`
	// CacheSize (entries), CacheMaxBytes and CacheTTL bound the cache;
	// the stale copies get eight times the size and bytes.
	CacheSize     int           `mapstructure:"cache_size"`
	CacheMaxBytes int64         `mapstructure:"cache_max_bytes"`
	CacheTTL      time.Duration `mapstructure:"cache_ttl"`
	// RateLimit and RateBurst are each client's token bucket at the edge.
	RateLimit float64 `mapstructure:"rate_limit"`
	RateBurst int     `mapstructure:"rate_burst"`
	// ClientIDSecret, when set, lets a client name itself for rate limiting
	// with an X-Client-ID signed by it (edge.SignClientID); otherwise, and
	// for unsigned IDs, a client is its remote IP address.
	ClientIDSecret string `mapstructure:"client_id_secret" secret:"true"`
	// MaxConcurrent bounds requests in flight at the edge before shedding.
	MaxConcurrent int `mapstructure:"max_concurrent"`
	// HealthInterval is how often the edge checks each API replica's
	// readiness; two failed checks in a row take a replica out.
	HealthInterval time.Duration `mapstructure:"health_interval"`
	// Timeouts of each hop; inner hops give up before their callers.
	EdgeTimeout  time.Duration `mapstructure:"edge_timeout"`
	CacheTimeout time.Duration `mapstructure:"cache_timeout"`
	StoreTimeout time.Duration `mapstructure:"store_timeout"`
	// Load is the background load `burnrate up` sends to its own edge.
	Load LoadConfig `mapstructure:"load"`
}

// LoadConfig is the background load.
type LoadConfig struct {
	Enabled bool    `mapstructure:"enabled"`
	Rate    float64 `mapstructure:"rate"`
	Shape   string  `mapstructure:"shape"`
	// Period is the sine shape's period (a compressed day).
	Period  time.Duration `mapstructure:"period"`
	Clients int           `mapstructure:"clients"`
}

// Values of demo.tier_calls.
const (
	TierCallsInProcess = "in_process"
	TierCallsLoopback  = "loopback"
)

// DefaultConfig is what `burnrate up` runs.
func DefaultConfig() Config {
	return Config{
		Enabled:             true,
		EdgeListen:          "127.0.0.1:8000",
		Instrumentation:     true,
		MetricInterval:      5 * time.Second,
		TraceSampleRatio:    0.1,
		TraceKeepSlowerThan: 250 * time.Millisecond,
		TierCalls:           TierCallsInProcess,
		APIReplicas:         2,
		Shards:              4,
		Products:            2000,
		CacheSize:           500,
		CacheMaxBytes:       4 << 20,
		CacheTTL:            30 * time.Second,
		RateLimit:           50,
		RateBurst:           50,
		MaxConcurrent:       512,
		HealthInterval:      time.Second,
		EdgeTimeout:         3 * time.Second,
		CacheTimeout:        time.Second,
		StoreTimeout:        250 * time.Millisecond,
		Load: LoadConfig{
			Enabled: true,
			Rate:    20,
			Shape:   "sine",
			Period:  10 * time.Minute,
			Clients: 10,
		},
	}
}

// storeAttempts is how many times the cache tries a shard: the one layer
// of the platform that retries.
const storeAttempts = 3

// storeClient is how the cache calls the store's shards.
func (c Config) storeClient() resilience.Config {
	return resilience.Config{Timeout: c.StoreTimeout, MaxAttempts: storeAttempts, OpenTimeout: 2 * time.Second}
}

// cacheClient is how the API calls the cache: one attempt, since the cache
// retries the shards itself and retrying at two layers multiplies calls.
func (c Config) cacheClient() resilience.Config {
	return resilience.Config{Timeout: c.CacheTimeout, MaxAttempts: 1, OpenTimeout: 2 * time.Second}
}

// Validate reports the first invalid field, naming its key. A disabled
// platform is valid whatever the rest says.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.EdgeListen); err != nil {
		return fmt.Errorf("demo.edge_listen: %q is not host:port: %w", c.EdgeListen, err)
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("demo.otlp_endpoint: %q is not an http(s) base URL", c.OTLPEndpoint)
		}
	}
	checks := []struct {
		ok  bool
		msg string
	}{
		{c.MetricInterval >= 100*time.Millisecond, "demo.metric_interval: must be at least 100ms"},
		{c.TraceSampleRatio >= 0 && c.TraceSampleRatio <= 1, "demo.trace_sample_ratio: must be between 0 and 1"},
		{c.TraceKeepSlowerThan >= 0, "demo.trace_keep_slower_than: must not be negative"},
		{c.TierCalls == TierCallsInProcess || c.TierCalls == TierCallsLoopback, "demo.tier_calls: must be in_process or loopback"},
		{c.APIReplicas >= 1 && c.APIReplicas <= 16, "demo.api_replicas: must be between 1 and 16"},
		{c.Shards >= 1 && c.Shards <= 64, "demo.shards: must be between 1 and 64"},
		{c.Products >= 1 && c.Products <= 1_000_000, "demo.products: must be between 1 and 1000000"},
		{c.CacheSize >= 1, "demo.cache_size: must be at least 1"},
		{c.CacheMaxBytes >= 4096, "demo.cache_max_bytes: must be at least 4096"},
		{c.CacheTTL > 0, "demo.cache_ttl: must be above 0"},
		{c.RateLimit > 0, "demo.rate_limit: must be above 0"},
		{c.RateBurst >= 1, "demo.rate_burst: must be at least 1"},
		{c.MaxConcurrent >= 1, "demo.max_concurrent: must be at least 1"},
		{c.HealthInterval >= 10*time.Millisecond, "demo.health_interval: must be at least 10ms"},
		{c.EdgeTimeout > 0 && c.CacheTimeout > 0 && c.StoreTimeout > 0, "demo.*_timeout: must be above 0"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return errors.New(ch.msg)
		}
	}
	// The timeout budget: no inner hop may outlast its caller, retries and
	// backoff included.
	if b := c.cacheClient().Budget(); b >= c.EdgeTimeout {
		return fmt.Errorf("demo.cache_timeout: the API's call to the cache can take %s (one attempt), not shorter than demo.edge_timeout %s", b, c.EdgeTimeout)
	}
	if b := c.storeClient().Budget(); b >= c.CacheTimeout {
		return fmt.Errorf("demo.store_timeout: the cache's call to a shard can take %s (%d attempts of %s plus backoff), not shorter than demo.cache_timeout %s",
			b, storeAttempts, c.StoreTimeout, c.CacheTimeout)
	}
	if c.Load.Enabled {
		if err := (load.Options{Rate: c.Load.Rate, Shape: c.Load.Shape, Period: c.Load.Period, Clients: c.Load.Clients, Duration: time.Hour}).Validate(); err != nil {
			return fmt.Errorf("demo.load: %w", err)
		}
	}
	return nil
}
