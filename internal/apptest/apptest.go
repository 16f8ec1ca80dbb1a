// Package apptest starts a whole Burnrate process (internal/app) inside a
// test, on free loopback ports and a temporary data directory.
package apptest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/testutil"
)

// Running is an App started by StartApp.
type Running struct {
	*app.App
	// URL is the base URL of the HTTP listener, http://127.0.0.1:PORT.
	URL string
	// DataDir is the test's data directory.
	DataDir string
}

// StartApp builds opts (default ports become free ports and ./data a fresh
// temporary directory, see isolate), runs the app and waits until /-/ready answers 200. The
// app is stopped, and its error checked, when the test ends.
func StartApp(t testing.TB, opts app.Options) *Running {
	t.Helper()
	isolate(t, &opts)
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	a, err := app.New(opts)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("app did not stop within 10s")
		}
	})

	r := &Running{App: a, URL: a.URL(), DataDir: opts.DataDir}
	testutil.WaitReady(t, r.URL, 60*time.Second)
	return r
}

// isolate replaces the embedded defaults that would make tests collide, with
// each other or with a `burnrate up` on the same machine: fixed ports become
// port 0 (or off, for the optional OTLP listener) and ./data a temporary
// directory. Values a test set on purpose are kept.
func isolate(t testing.TB, opts *app.Options) {
	def := app.DefaultOptions()
	if opts.Listen == "" || opts.Listen == def.Listen {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.DataDir == "" || opts.DataDir == def.DataDir {
		opts.DataDir = t.TempDir()
	}
	if opts.Collector.OTLPListen == def.Collector.OTLPListen {
		opts.Collector.OTLPListen = ""
	}
	if opts.Demo.EdgeListen == def.Demo.EdgeListen {
		opts.Demo.EdgeListen = "127.0.0.1:0"
	}
}

// EdgeURL is the base URL of the demo platform's edge, from the endpoints
// the app prints at start-up ("" when the demo is off).
func (r *Running) EdgeURL() string {
	for _, e := range r.Endpoints() {
		if e.Name == "demo edge" {
			return strings.TrimSuffix(e.URL, "/api/products/1")
		}
	}
	return ""
}
