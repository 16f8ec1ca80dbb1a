package app

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/internal/httpserver"
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
		// With collector.require_token the demo's exports need a token
		// with the ingest scope, like anyone else's.
		OTLPToken: cmp.Or(a.opts.Demo.OTLPToken, a.ingestToken()),
	})
	if err != nil {
		return err
	}
	a.addCloser("demo store shards", p.Close)
	a.faults = set
	a.mount("/api/v1/demo/", set.Handler())
	a.mount("/api/v1/demo/load", loadHandler(p))
	g := &gamedays{url: a.URL(), edge: p.EdgeURL(), token: a.opts.APIToken, app: a}
	a.mount("/api/v1/demo/gamedays", g.Handler())
	a.mount("/api/v1/demo/gamedays/", g.Handler())
	{
		// Drills started from the API stop with the process.
		a.addRunner("game days", g.run)
	}
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

// loadHandler serves the background load's switch: GET answers
// {"enabled": bool}, PUT or POST {"enabled": bool} switches it.
func loadHandler(p *demoapp.Platform) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPost:
			var body struct {
				Enabled *bool `json:"enabled"`
			}
			raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<12))
			if err == nil {
				err = json.Unmarshal(raw, &body)
			}
			if err != nil || body.Enabled == nil {
				httpserver.WriteError(w, http.StatusBadRequest, "bad_data", `body: want {"enabled": true} or {"enabled": false}`)
				return
			}
			p.SetLoad(*body.Enabled)
		default:
			w.Header().Set("Allow", "GET, PUT, POST")
			httpserver.WriteError(w, http.StatusMethodNotAllowed, "bad_data", "use GET, PUT or POST")
			return
		}
		httpserver.WriteData(w, http.StatusOK, map[string]bool{"enabled": p.LoadOn()})
	})
}

// ingestToken is a configured secret with the ingest scope, for the demo's
// exports to this process when collector.require_token is set; empty
// otherwise (ingest is open, and no secret is sent needlessly).
func (a *App) ingestToken() string {
	if !a.opts.Collector.RequireToken {
		return ""
	}
	for _, t := range a.opts.APITokens {
		if (&httpserver.Principal{Name: t.Name, Scopes: t.Scopes}).Can(httpserver.ScopeIngest) {
			return t.Token
		}
	}
	return a.opts.APIToken
}
