package incidents_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run `go test ./incidents -update`")
	require.Equal(t, string(want), string(got), "output differs from %s; if intended, rerun with -update", path)
}

func TestPostmortemDraftOfAWorkedIncident(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	require.NoError(t, e.svc.Notify(ctx, pageNotification(1, "g1", alerting.StatusFiring)))
	e.clock.Advance(90 * time.Second)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/ack", map[string]string{"by": "ann"}, nil))
	e.clock.Advance(time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/assign", map[string]string{"by": "ann", "user": "ann", "role": "commander"}, nil))
	require.Equal(t, 204, e.call(t, "POST", "/api/v1/incidents/events", map[string]string{"service": "api", "kind": "deploy", "text": "api v2.4.0 rolled out 10:02"}, nil))
	e.clock.Advance(3 * time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/note", map[string]string{"by": "ann", "text": "errors | timeouts from the store shard 3"}, nil))
	e.clock.Advance(5 * time.Minute)
	require.NoError(t, e.svc.Notify(ctx, pageNotification(2, "g1", alerting.StatusResolved)))
	e.clock.Advance(time.Minute)
	require.Equal(t, 200, e.call(t, "POST", "/api/v1/incidents/1/resolve", map[string]string{"by": "ann", "text": "rolled back to v2.3.9"}, nil))

	md, err := e.svc.Postmortem(ctx, 1)
	require.NoError(t, err)
	golden(t, "postmortem.golden.md", md)

	// The API serves the same draft.
	resp, err := e.srv.Client().Get(e.srv.URL + "/api/v1/incidents/1/postmortem")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/markdown; charset=utf-8", resp.Header.Get("Content-Type"))
}
