// Package testutil holds the leaf helpers of Burnrate's tests: golden files,
// a logger through t.Log, HTTP and metric reads, and Debian's prometheus on
// loopback. It imports nothing of Burnrate, so any package's own tests can
// use it; starting a whole Burnrate process is internal/apptest.
package testutil

import (
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files with the output under test")

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
