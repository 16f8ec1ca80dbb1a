package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
)

func TestFaultCommandsDriveTheRunningPlatformWithTheToken(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.APIToken = "s3cret"
	opts.Collector.OTLPListen = ""
	opts.Demo.EdgeListen = "127.0.0.1:0"
	opts.Demo.Load.Enabled = false
	opts.Demo.Instrumentation = false
	r := apptest.StartApp(t, opts)

	var out, errb bytes.Buffer
	code := run([]string{"fault", "set", "store.shard_down", "1", "--url", r.URL}, &out, &errb)
	require.Equal(t, exitFailed, code, "without the token the API refuses")
	require.Contains(t, errb.String(), "401")

	out.Reset()
	errb.Reset()
	require.Equal(t, exitOK, run([]string{"fault", "set", "store.shard_down", "1", "--url", r.URL, "--token", "s3cret"}, &out, &errb), errb.String())
	require.Equal(t, "store.shard_down = 1\n", out.String())

	t.Setenv("BURNRATE_API_TOKEN", "s3cret")
	out.Reset()
	require.Equal(t, exitUsage, run([]string{"fault", "set", "cache.mode", "sometimes", "--url", r.URL}, &out, &errb))
	require.Contains(t, errb.String(), "on, off, leaky")

	out.Reset()
	require.Equal(t, exitOK, run([]string{"fault", "list", "--url", r.URL}, &out, &errb))
	require.Regexp(t, `store\.shard_down\s+1\s+20`, out.String())

	out.Reset()
	require.Equal(t, exitOK, run([]string{"fault", "clear", "--url", r.URL}, &out, &errb))
	require.Equal(t, "cleared store.shard_down\n", out.String())

	out.Reset()
	require.Equal(t, exitOK, run([]string{"fault", "events", "--url", r.URL}, &out, &errb))
	require.Regexp(t, `fault_set\s+store\.shard_down\s+1\s+cli`, out.String())
	require.Regexp(t, `fault_cleared\s+store\.shard_down\s+cli`, out.String())
}

func TestLoadWritesItsJSONReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "report.json")
	var out, errb bytes.Buffer
	code := run([]string{"load", "--target", srv.URL, "--rate", "100", "--duration", "300ms", "--max-requests", "20", "--quiet", "--report", file}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	require.Contains(t, out.String(), "requests      20")
	var rep struct {
		Requests int            `json:"requests"`
		Status   map[string]int `json:"status"`
	}
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Equal(t, 20, rep.Requests)
	require.Equal(t, 20, rep.Status["200"])

	require.Equal(t, exitUsage, run([]string{"load", "--target", srv.URL, "--shape", "square"}, &out, &errb))
}

func TestGamedayListsTheShippedScenarios(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"gameday", "list"}, &out, &errb))
	for _, name := range []string{"shard-outage", "latency-regression", "cache-failure", "traffic-spike"} {
		require.Contains(t, out.String(), name)
	}
	require.Equal(t, exitUsage, run([]string{"gameday", "run", "no-such-drill"}, &out, &errb))
}

func TestAPlainLoadRunIsNotThrottledByTheEdgeOfBurnrateUp(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Demo.Load.Enabled = false
	opts.Demo.Instrumentation = false
	r := apptest.StartApp(t, opts)
	edge := r.EdgeURL()
	require.NotEmpty(t, edge)

	// 600/s for a second from ten clients of one address or ten signed
	// clients: 60/s each against the edge's default 50/s with a burst of
	// 50 would be throttled. Run as a user would, with the running
	// platform's data directory, and nothing else.
	file := filepath.Join(t.TempDir(), "report.json")
	var out, errb bytes.Buffer
	code := run([]string{"load", "--target", edge, "--rate", "600", "--duration", "1500ms", "--data-dir", r.DataDir, "--mix", "product:1", "--quiet", "--report", file}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	var rep struct {
		Requests    int `json:"requests"`
		RateLimited int `json:"rate_limited"`
	}
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Greater(t, rep.Requests, 500)
	require.Zero(t, rep.RateLimited, out.String())

	// Named clients are what the user asked for: two clients at 300/s
	// each are limited.
	out.Reset()
	code = run([]string{"load", "--target", edge, "--rate", "600", "--duration", "1500ms", "--clients", "2", "--data-dir", r.DataDir, "--mix", "product:1", "--quiet", "--report", file}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Greater(t, rep.RateLimited, rep.Requests/3, out.String())
}
