package app

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/burnrate/burnrate/collector"
	"github.com/burnrate/burnrate/collector/tracestore"
)

// buildCollector opens the TSDB (<data_dir>/tsdb) and the trace store
// (<data_dir>/traces), and mounts ingest (OTLP, remote write) and the
// Prometheus query API on the main listener. Storage is registered as a
// closer so that it outlives every actor that reads or writes it.
func (a *App) buildCollector() error {
	cfg := a.opts.Collector.WithDefaults()
	if a.opts.SelfScrape {
		// Burnrate keeps its own /metrics in its TSDB, as Prometheus
		// does, so its own dashboard has data with nothing else running.
		cfg.Scrape.Self = a.http.Addr()
	}
	logger := a.logger.With("component", "collector")
	if r, raised := a.tsdbRetention(); raised {
		cfg.TSDB.Retention = r
		logger.Info("TSDB retention raised to cover the longest SLO period plus 3 days", "retention", r)
	}
	c, err := collector.Open(collector.Options{Dir: filepath.Join(a.opts.DataDir, "tsdb"), Config: cfg, Logger: logger, Registerer: a.reg, Gatherer: a.reg})
	if err != nil {
		return err
	}
	a.addCloser("collector (tsdb)", c.Close)
	ts, err := tracestore.Open(tracestore.Options{Dir: filepath.Join(a.opts.DataDir, "traces"), Config: cfg.Traces, Logger: a.logger.With("component", "tracestore"), Registerer: a.reg})
	if err != nil {
		return fmt.Errorf("collector.traces: %w", err)
	}
	a.addCloser("trace store", ts.Close)
	c.SetAuthenticator(a.http.Auth())
	c.SetSpanStore(ts, func(err error) bool { return errors.Is(err, tracestore.ErrOverloaded) })
	a.collector = c

	c.Mount(a.mount)
	a.mount("/api/v1/traces", ts.Handler())
	a.mount("/api/v1/traces/", ts.Handler())

	{
		// The collector serves the OTLP listener and scrapes; it stops after
		// the main listener has drained, before the TSDB closes.
		a.addRunner("collector", c.Run)
	}
	{
		// The trace store applies retention and forwards spans.
		a.addRunner("trace store", ts.Run)
	}
	a.addReady("collector", c.Ready)
	a.addStatic("collector (restart to change collector.*)")
	a.addEndpoint("query", "/api/v1/query")
	a.addEndpoint("otlp", "/v1/metrics")
	if addr := c.OTLPAddr(); addr != "" {
		a.endpoints = append(a.endpoints, Endpoint{Name: "otlp", URL: "http://" + addr + "/v1/metrics"})
	}
	a.addEndpoint("traces", "/api/v1/traces")
	return nil
}
