// Package testutil starts a whole Burnrate process inside a test and compares
// generated output with golden files.
package testutil

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
)

var update = flag.Bool("update", false, "rewrite golden files with the output under test")

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
		opts.Logger = Logger(t)
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
	WaitReady(t, r.URL, 60*time.Second)
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

// WaitReady polls base+"/-/ready" until it answers 200 or timeout passes.
func WaitReady(t testing.TB, base string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, 20*time.Millisecond, "%s/-/ready never answered 200", base)
}

// Logger returns a logger that writes through t.Log, so output shows only for
// failing tests (or with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// Golden compares got with testdata/<name>. With -update it rewrites the file
// instead, so generated output is reviewed as a diff in the commit.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run `go test %s -update` to create it", "./...")
	require.Equal(t, string(want), string(got), "output differs from %s; if the change is intended, rerun with -update", path)
}

// HTTPGet fetches url and returns the status code and body.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test helper
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
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
