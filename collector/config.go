package collector

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/burnrate/burnrate/collector/tracestore"
)

// Config configures the collector. Zero values mean the defaults of
// DefaultConfig, except for the limits, where zero means "no limit", and
// OTLPListen, where empty means "no separate OTLP listener".
type Config struct {
	// OTLPListen is a second listener, host:port, that serves only /v1/metrics
	// and /v1/traces, so that OpenTelemetry SDKs with default settings
	// (localhost:4318) deliver without configuration. Empty disables it; the
	// main listener always serves OTLP too.
	OTLPListen string `mapstructure:"otlp_listen"`
	// MaxRequestBytes bounds the body of every ingest request, after
	// decompression. Larger requests get 413.
	MaxRequestBytes int64 `mapstructure:"max_request_bytes"`
	// MaxInflightRequests bounds concurrent ingest requests; more get
	// Retry-After with 429 (OTLP) or 503 (remote write, whose senders drop a
	// batch answered 429), so that senders back off instead of piling up memory.
	MaxInflightRequests int `mapstructure:"max_inflight_requests"`
	// RequireToken makes OTLP and remote write, on both listeners, require
	// a bearer token with the ingest scope (api_tokens, or api_token):
	// 401 without one, 403 with a token lacking the scope. Without it
	// ingest is open to anyone who reaches the listener.
	RequireToken bool `mapstructure:"require_token"`
	// Ingest bounds how long and how many of the ingest requests one client
	// may hold.
	Ingest IngestConfig `mapstructure:"ingest"`

	TSDB        TSDBConfig        `mapstructure:"tsdb"`
	Limits      LimitsConfig      `mapstructure:"limits"`
	OTLP        OTLPConfig        `mapstructure:"otlp"`
	Query       QueryConfig       `mapstructure:"query"`
	Scrape      ScrapeConfig      `mapstructure:"scrape"`
	RemoteWrite RemoteWriteConfig `mapstructure:"remote_write"`
	// Traces configures the trace store in <data_dir>/traces.
	Traces tracestore.Config `mapstructure:"traces"`
}

// IngestConfig bounds ingest requests in time and per client, so that slow
// or numerous connections from a few clients cannot hold every ingest slot.
type IngestConfig struct {
	// BodyTimeout bounds the time from a request's headers to the end of
	// its body; a body not complete by then is answered 408 and its
	// connection closed. Zero means the time to send
	// collector.max_request_bytes at 1 MiB/s, and at least 5s.
	BodyTimeout time.Duration `mapstructure:"body_timeout"`
	// MaxInflightPerClient bounds the concurrent ingest requests of one
	// client (remote IP address) within collector.max_inflight_requests;
	// more get the same push-back (429 or 503 with Retry-After). Above
	// max_inflight_requests it has no effect.
	MaxInflightPerClient int `mapstructure:"max_inflight_per_client"`
	// WriteTimeout and IdleTimeout are those of the OTLP listener
	// (collector.otlp_listen): how long a response may take to write, and
	// how long a kept-alive connection may sit idle.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	IdleTimeout  time.Duration `mapstructure:"idle_timeout"`
}

// minBodyRate is the slowest sending rate the default body timeout allows
// for a body of collector.max_request_bytes.
const minBodyRate = 1 << 20 // bytes per second

// defaultBodyTimeout is the time to send maxBytes at minBodyRate, at least 5s.
func defaultBodyTimeout(maxBytes int64) time.Duration {
	return max(5*time.Second, time.Duration(maxBytes)*time.Second/minBodyRate)
}

// TSDBConfig configures the embedded Prometheus TSDB in <data_dir>/tsdb.
type TSDBConfig struct {
	// Retention is how long samples are kept.
	Retention time.Duration `mapstructure:"retention"`
	// RetentionBytes, when positive, also bounds the size of the persisted
	// blocks (the WAL comes on top), oldest blocks deleted first.
	RetentionBytes int64 `mapstructure:"retention_bytes"`
	// OutOfOrderWindow accepts samples up to this much older than the newest
	// sample of their series. OTLP senders (SDKs, Collectors with several
	// exporters or retries) deliver out of order routinely, so the default
	// is the 30m Prometheus's OTLP guide suggests; 0 rejects (and counts)
	// every out-of-order sample, as Prometheus does by default. Unlike the
	// other durations, 0 is kept by WithDefaults: DefaultConfig carries the
	// default.
	OutOfOrderWindow time.Duration `mapstructure:"out_of_order_window"`
	// MaxExemplars is the size of the in-memory exemplar ring buffer.
	MaxExemplars int64 `mapstructure:"max_exemplars"`
}

// LimitsConfig protects the TSDB from cardinality explosions. Rejected samples
// are counted by reason and reported to the sender; they never crash the
// process or fail the rest of the request.
type LimitsConfig struct {
	// MaxActiveSeries bounds the number of series in the TSDB head (series
	// stay there until the head compaction after their last sample, 2-4h
	// later), across restarts. Zero means no limit.
	MaxActiveSeries int `mapstructure:"max_active_series"`
	// MaxSeriesPerMetric bounds the active series of one metric name. Zero
	// means no limit.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`
	// MaxLabelsPerSeries bounds the number of labels of a series, the metric
	// name included. Zero means no limit.
	MaxLabelsPerSeries int `mapstructure:"max_labels_per_series"`
	// MaxLabelValueLength bounds the length in bytes of a label value. Zero
	// means no limit.
	MaxLabelValueLength int `mapstructure:"max_label_value_length"`
	// MaxDeltaStreams bounds the streams whose running total the
	// delta-to-cumulative conversion keeps (its max_streams); points of new
	// streams beyond it are rejected as delta_stream_limit until idle
	// streams expire (5m). Zero means no limit.
	MaxDeltaStreams int `mapstructure:"max_delta_streams"`
	// SeriesIdleTimeout is no longer used: series count against the limits
	// for as long as the TSDB head keeps them, so that the limits bound the
	// head. It is still accepted so that existing configurations load.
	SeriesIdleTimeout time.Duration `mapstructure:"series_idle_timeout"`
}

// OTLPConfig configures the translation of OTLP metrics to Prometheus series.
type OTLPConfig struct {
	// DeltaToCumulative accumulates delta sums and histograms into cumulative
	// series, as PromQL's rate() expects. Without it delta points are rejected.
	DeltaToCumulative bool `mapstructure:"delta_to_cumulative"`
	// PromoteResourceAttributes are resource attributes copied onto every
	// series as labels (service.name and service.instance.id always become
	// job and instance; every resource attribute lands on target_info).
	PromoteResourceAttributes []string `mapstructure:"promote_resource_attributes"`
}

// QueryConfig configures the PromQL engine behind the query API.
type QueryConfig struct {
	Timeout       time.Duration `mapstructure:"timeout"`
	MaxSamples    int           `mapstructure:"max_samples"`
	LookbackDelta time.Duration `mapstructure:"lookback_delta"`
}

// ScrapeConfig scrapes static Prometheus targets.
type ScrapeConfig struct {
	// Targets are host:port pairs; an empty list disables scraping.
	Targets     []string      `mapstructure:"targets"`
	JobName     string        `mapstructure:"job_name"`
	MetricsPath string        `mapstructure:"metrics_path"`
	Interval    time.Duration `mapstructure:"interval"`
	Timeout     time.Duration `mapstructure:"timeout"`
	// Self is Burnrate's own listener, scraped as job "burnrate" at the
	// same interval so its /metrics land in its own TSDB (as Prometheus
	// scrapes itself). Set by the app, not by configuration.
	Self string `mapstructure:"-"`
}

// RemoteWriteConfig sends every sample the TSDB accepts on to a
// Prometheus-compatible remote-write endpoint (Prometheus, Mimir, Thanos).
type RemoteWriteConfig struct {
	// URL of the receiving endpoint; empty disables remote write.
	URL         string        `mapstructure:"url"`
	BearerToken string        `mapstructure:"bearer_token" secret:"true"`
	Timeout     time.Duration `mapstructure:"timeout"`
	// WriteRelabelConfigs are Prometheus's write_relabel_configs, applied by
	// its own queue manager before sending: for example, dropping the
	// slo:* and ALERTS series Burnrate writes when the receiver evaluates
	// Burnrate's exported rules itself and would write the same series.
	WriteRelabelConfigs []map[string]any `mapstructure:"write_relabel_configs"`
}

// DefaultConfig is what `burnrate up` runs with.
func DefaultConfig() Config {
	return Config{
		OTLPListen:          "127.0.0.1:4318",
		MaxRequestBytes:     32 << 20,
		MaxInflightRequests: 64,
		Ingest: IngestConfig{
			MaxInflightPerClient: 16,
			WriteTimeout:         time.Minute,
			IdleTimeout:          2 * time.Minute,
		},
		TSDB: TSDBConfig{
			Retention:        15 * 24 * time.Hour,
			OutOfOrderWindow: 30 * time.Minute,
			MaxExemplars:     100_000,
		},
		Limits: LimitsConfig{
			MaxActiveSeries:     1_000_000,
			MaxSeriesPerMetric:  100_000,
			MaxLabelsPerSeries:  64,
			MaxLabelValueLength: 2048,
			MaxDeltaStreams:     100_000,
			SeriesIdleTimeout:   time.Hour,
		},
		OTLP: OTLPConfig{DeltaToCumulative: true},
		Query: QueryConfig{
			Timeout:       2 * time.Minute,
			MaxSamples:    50_000_000,
			LookbackDelta: 5 * time.Minute,
		},
		Scrape: ScrapeConfig{
			JobName:     "scrape",
			MetricsPath: "/metrics",
			Interval:    15 * time.Second,
			Timeout:     10 * time.Second,
		},
		RemoteWrite: RemoteWriteConfig{Timeout: 30 * time.Second},
		Traces:      tracestore.DefaultConfig(),
	}
}

// WithDefaults fills zero fields from DefaultConfig (limits and OTLPListen
// keep their zero meaning).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = d.MaxRequestBytes
	}
	if c.MaxInflightRequests == 0 {
		c.MaxInflightRequests = d.MaxInflightRequests
	}
	if c.Ingest.BodyTimeout == 0 {
		c.Ingest.BodyTimeout = defaultBodyTimeout(c.MaxRequestBytes)
	}
	if c.Ingest.MaxInflightPerClient == 0 {
		c.Ingest.MaxInflightPerClient = d.Ingest.MaxInflightPerClient
	}
	if c.Ingest.WriteTimeout == 0 {
		c.Ingest.WriteTimeout = d.Ingest.WriteTimeout
	}
	if c.Ingest.IdleTimeout == 0 {
		c.Ingest.IdleTimeout = d.Ingest.IdleTimeout
	}
	if c.TSDB.Retention == 0 {
		c.TSDB.Retention = d.TSDB.Retention
	}
	if c.TSDB.MaxExemplars == 0 {
		c.TSDB.MaxExemplars = d.TSDB.MaxExemplars
	}
	if c.Limits.SeriesIdleTimeout == 0 {
		c.Limits.SeriesIdleTimeout = d.Limits.SeriesIdleTimeout
	}
	if c.Query.Timeout == 0 {
		c.Query.Timeout = d.Query.Timeout
	}
	if c.Query.MaxSamples == 0 {
		c.Query.MaxSamples = d.Query.MaxSamples
	}
	if c.Query.LookbackDelta == 0 {
		c.Query.LookbackDelta = d.Query.LookbackDelta
	}
	if c.Scrape.JobName == "" {
		c.Scrape.JobName = d.Scrape.JobName
	}
	if c.Scrape.MetricsPath == "" {
		c.Scrape.MetricsPath = d.Scrape.MetricsPath
	}
	if c.Scrape.Interval == 0 {
		c.Scrape.Interval = d.Scrape.Interval
	}
	if c.Scrape.Timeout == 0 {
		c.Scrape.Timeout = min(d.Scrape.Timeout, c.Scrape.Interval)
	}
	if c.RemoteWrite.Timeout == 0 {
		c.RemoteWrite.Timeout = d.RemoteWrite.Timeout
	}
	if c.Traces.Retention == 0 {
		c.Traces.Retention = d.Traces.Retention
	}
	if c.Traces.MaxBytes == 0 {
		c.Traces.MaxBytes = d.Traces.MaxBytes
	}
	if c.Traces.Forward.Timeout == 0 {
		c.Traces.Forward.Timeout = d.Traces.Forward.Timeout
	}
	if c.Traces.Forward.QueueSize == 0 {
		c.Traces.Forward.QueueSize = d.Traces.Forward.QueueSize
	}
	return c
}

// Validate reports the first invalid field, naming its configuration key.
func (c Config) Validate() error {
	if c.OTLPListen != "" {
		if _, _, err := net.SplitHostPort(c.OTLPListen); err != nil {
			return fmt.Errorf("collector.otlp_listen: %q is not host:port: %w", c.OTLPListen, err)
		}
	}
	for key, v := range map[string]int64{
		"collector.max_request_bytes":              c.MaxRequestBytes,
		"collector.max_inflight_requests":          int64(c.MaxInflightRequests),
		"collector.ingest.max_inflight_per_client": int64(c.Ingest.MaxInflightPerClient),
		"collector.tsdb.retention_bytes":           c.TSDB.RetentionBytes,
		"collector.tsdb.max_exemplars":             c.TSDB.MaxExemplars,
		"collector.limits.max_active_series":       int64(c.Limits.MaxActiveSeries),
		"collector.limits.max_series_per_metric":   int64(c.Limits.MaxSeriesPerMetric),
		"collector.limits.max_labels_per_series":   int64(c.Limits.MaxLabelsPerSeries),
		"collector.limits.max_label_value_length":  int64(c.Limits.MaxLabelValueLength),
		"collector.limits.max_delta_streams":       int64(c.Limits.MaxDeltaStreams),
		"collector.query.max_samples":              int64(c.Query.MaxSamples),
	} {
		if v < 0 {
			return fmt.Errorf("%s: must not be negative, got %d", key, v)
		}
	}
	for key, v := range map[string]time.Duration{
		"collector.tsdb.retention":             c.TSDB.Retention,
		"collector.ingest.body_timeout":        c.Ingest.BodyTimeout,
		"collector.ingest.write_timeout":       c.Ingest.WriteTimeout,
		"collector.ingest.idle_timeout":        c.Ingest.IdleTimeout,
		"collector.tsdb.out_of_order_window":   c.TSDB.OutOfOrderWindow,
		"collector.limits.series_idle_timeout": c.Limits.SeriesIdleTimeout,
		"collector.query.timeout":              c.Query.Timeout,
		"collector.query.lookback_delta":       c.Query.LookbackDelta,
		"collector.scrape.interval":            c.Scrape.Interval,
		"collector.scrape.timeout":             c.Scrape.Timeout,
		"collector.remote_write.timeout":       c.RemoteWrite.Timeout,
	} {
		if v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", key, v)
		}
	}
	if c.Scrape.Interval > 0 && c.Scrape.Timeout > c.Scrape.Interval {
		return fmt.Errorf("collector.scrape.timeout: %s is longer than the interval %s", c.Scrape.Timeout, c.Scrape.Interval)
	}
	for _, t := range c.Scrape.Targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return fmt.Errorf("collector.scrape.targets: %q is not host:port: %w", t, err)
		}
	}
	if c.RemoteWrite.URL != "" {
		u, err := url.Parse(c.RemoteWrite.URL)
		if err != nil {
			return fmt.Errorf("collector.remote_write.url: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return errors.New("collector.remote_write.url: want an http:// or https:// URL with a host")
		}
	}
	if err := c.WithDefaults().Traces.Validate(); err != nil {
		return fmt.Errorf("collector.traces.%w", err)
	}
	return nil
}
