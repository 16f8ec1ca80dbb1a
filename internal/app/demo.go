package app

import (
	"context"
	"path/filepath"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
)

// buildDemo builds the demo platform (`burnrate up` only): its tiers on
// loopback ports with the edge on demo.edge_listen, the fault API under
// /api/v1/demo/ on the main listener, and fault events in <data_dir>/demo.db.
// Telemetry goes over OTLP/HTTP to demo.otlp_endpoint, by default this
// process's own listener: the same wire a separate deployment would use.
func (a *App) buildDemo() error {
	cfg := a.opts.Demo
	if !cfg.Enabled {
		return nil
	}
	if cfg.OTLPEndpoint == "" {
		cfg.OTLPEndpoint = a.URL()
	}
	logger := a.logger.With("component", "demo")
	set, err := faults.Open(context.Background(), filepath.Join(a.opts.DataDir, "demo.db"), logger, nil)
	if err != nil {
		return err
	}
	a.addCloser("demo fault events", set.Close)
	p, err := demoapp.New(context.Background(), demoapp.Options{
		Config:  cfg,
		DataDir: a.opts.DataDir,
		Faults:  set,
		Logger:  logger,
	})
	if err != nil {
		return err
	}
	a.addCloser("demo store shards", p.Close)
	a.mount("/api/v1/demo/", set.Handler())
	{
		// The platform serves its tiers and the background load, and exports
		// its telemetry to this process's listener: it stops and flushes
		// before the listener drains, so its last export is still received.
		a.addClient("demo", p.Run)
	}
	a.addReady("demo", p.Ready)
	a.addStatic("demo (restart to change demo.*)")
	a.endpoints = append(a.endpoints, Endpoint{Name: "demo edge", URL: p.EdgeURL() + "/api/products/1"})
	a.addEndpoint("faults", "/api/v1/demo/faults")
	return nil
}
