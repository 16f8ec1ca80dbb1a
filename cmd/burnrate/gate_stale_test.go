package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

// staticSource answers the gate with fixed snapshots.
type staticSource map[string]deploy.Snapshot

func (s staticSource) Snapshot(service string) (deploy.Snapshot, bool) {
	v, ok := s[service]
	return v, ok
}

func (s staticSource) Services() []string { return []string{"checkout"} }

// runGate runs `burnrate gate` in process and returns its exit code.
func runGate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newGateCmd(&stdout, &stderr)
	cmd.SetArgs(args)
	cmd.SetOut(&stderr)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.code, stdout.String(), stderr.String() + ee.Error()
	}
	t.Fatalf("gate %v: %v", args, err)
	return 0, "", ""
}

func newStaticGate(t *testing.T, src staticSource) *httptest.Server {
	t.Helper()
	st, err := deploy.OpenStore(context.Background(), filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: src, Store: st})
	require.NoError(t, err)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestGateExitsOneWhenTheSLIsDataIsAbsent: the CLI a pipeline runs exits 1
// (do not ship) when the gate fails closed on absent data, and says why.
func TestGateExitsOneWhenTheSLIsDataIsAbsent(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	srv := newStaticGate(t, staticSource{"checkout": {Service: "checkout", SLOs: []deploy.SLOState{{
		ID: "checkout-availability", BudgetRemaining: 0.9, Coverage: 1, EvaluatedAt: time.Now(),
		BurnRates: map[time.Duration]float64{time.Hour: 0.2}, NoData: map[time.Duration]bool{5 * time.Minute: true}, Absent: true,
	}}}})
	code, out, errOut := runGate(t, "--service", "checkout", "--url", srv.URL)
	require.Equal(t, gateFail, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "SLO checkout-availability has no SLI data")
}
