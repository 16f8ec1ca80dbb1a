package app

import "github.com/burnrate/burnrate/dashboards"

// buildUI serves the built-in web UI at / (assets under /ui/). It reads the
// same JSON APIs as every other client, so it needs no component of its
// own.
func (a *App) buildUI() error {
	h := dashboards.UIHandler()
	a.mount("GET /{$}", h)
	a.mount("GET /ui/", h)
	a.endpoints = append([]Endpoint{{Name: "ui", URL: a.URL() + "/"}}, a.endpoints...)
	return nil
}
