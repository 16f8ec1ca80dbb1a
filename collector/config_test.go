package collector_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/collector"
)

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name   string
		change func(*collector.Config)
		want   string
	}{
		{"the defaults are valid", func(*collector.Config) {}, ""},
		{"the zero value is valid and means the defaults", func(c *collector.Config) { *c = collector.Config{} }, ""},
		{"an OTLP address without a port is rejected", func(c *collector.Config) { c.OTLPListen = "localhost" }, "collector.otlp_listen"},
		{"a negative body limit is rejected", func(c *collector.Config) { c.MaxRequestBytes = -1 }, "collector.max_request_bytes: must not be negative"},
		{"a negative series limit is rejected", func(c *collector.Config) { c.Limits.MaxActiveSeries = -5 }, "collector.limits.max_active_series"},
		{"a negative retention is rejected", func(c *collector.Config) { c.TSDB.Retention = -time.Hour }, "collector.tsdb.retention"},
		{"a scrape timeout longer than the interval is rejected", func(c *collector.Config) {
			c.Scrape.Interval = 10 * time.Second
			c.Scrape.Timeout = 20 * time.Second
		}, "collector.scrape.timeout"},
		{"a scrape target without a port is rejected", func(c *collector.Config) { c.Scrape.Targets = []string{"example"} }, "collector.scrape.targets"},
		{"a remote-write URL without a scheme is rejected", func(c *collector.Config) { c.RemoteWrite.URL = "prometheus:9090/api/v1/write" }, "collector.remote_write.url"},
		{"a trace retention below a minute is rejected with its full key", func(c *collector.Config) { c.Traces.Retention = time.Second }, "collector.traces.retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := collector.DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
