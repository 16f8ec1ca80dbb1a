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
