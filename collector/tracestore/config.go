package tracestore

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is the trace store's configuration section (`collector.traces` or
// wherever the collector mounts it). The mapstructure tags are the keys.
type Config struct {
	// Retention is how long spans are kept after they were received. Whole
	// segment files are deleted, so spans live up to one segment duration
	// (Retention/12, between 1m and 2h) longer.
	Retention time.Duration `mapstructure:"retention"`
	// MaxBytes bounds the segment files on disk. When it is exceeded the
	// oldest segment is deleted, whatever its age.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// Forward optionally sends every accepted span on to another OTLP/HTTP
	// receiver (Tempo, Jaeger, an OpenTelemetry Collector).
	Forward ForwardConfig `mapstructure:"forward"`
}

// ForwardConfig configures the optional OTLP/HTTP (protobuf) forward.
type ForwardConfig struct {
	// Endpoint is the receiver's URL, e.g. http://tempo:4318/v1/traces. An
	// endpoint without a path gets /v1/traces, as OpenTelemetry exporters do.
	// Empty disables forwarding.
	Endpoint string `mapstructure:"endpoint"`
	// Headers are sent with every request (e.g. an Authorization header).
	Headers map[string]string `mapstructure:"headers" secret:"true"`
	// Timeout bounds one request.
	Timeout time.Duration `mapstructure:"timeout"`
	// QueueSize is how many spans may wait to be forwarded. Spans that do not
	// fit are dropped and counted; ingest never waits for the forward.
	QueueSize int `mapstructure:"queue_size"`
	// QueueBytes bounds the encoded size of the spans waiting to be
	// forwarded, so that a few huge spans cannot take the memory a span
	// count suggests. Zero means the default, 64 MiB.
	QueueBytes int64 `mapstructure:"queue_bytes"`
}

// defaultQueueBytes is ForwardConfig.QueueBytes when unset.
const defaultQueueBytes = 64 << 20

// Enabled reports whether spans are forwarded.
func (c ForwardConfig) Enabled() bool { return c.Endpoint != "" }

const (
	minRetention = time.Minute
	minMaxBytes  = 1 << 20
)

// DefaultConfig keeps spans for 24 hours and at most 1 GiB, and forwards
// nothing.
func DefaultConfig() Config {
	return Config{
		Retention: 24 * time.Hour,
		MaxBytes:  1 << 30,
		Forward: ForwardConfig{
			Timeout:   10 * time.Second,
			QueueSize: 100_000,
		},
	}
}

// Validate reports the first invalid field, naming its configuration key.
func (c Config) Validate() error {
	if c.Retention < minRetention {
		return fmt.Errorf("retention: %s is too short: must be at least %s", c.Retention, minRetention)
	}
	if c.MaxBytes < minMaxBytes {
		return fmt.Errorf("max_bytes: %d is too small: must be at least %d (1 MiB)", c.MaxBytes, minMaxBytes)
	}
	return c.Forward.validate()
}

func (c ForwardConfig) validate() error {
	if c.Endpoint == "" {
		return nil
	}
	if _, err := c.url(); err != nil {
		return fmt.Errorf("forward.endpoint: %w", err)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("forward.timeout: %s must be positive", c.Timeout)
	}
	if c.QueueSize < 1 {
		return fmt.Errorf("forward.queue_size: %d must be at least 1", c.QueueSize)
	}
	if c.QueueBytes < 0 {
		return fmt.Errorf("forward.queue_bytes: %d must not be negative", c.QueueBytes)
	}
	for k := range c.Headers {
		if k == "" {
			return errors.New("forward.headers: a header name is empty")
		}
	}
	return nil
}

// url parses the endpoint, adding the OTLP traces path when it has none.
func (c ForwardConfig) url() (string, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", c.Endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", c.Endpoint)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}
