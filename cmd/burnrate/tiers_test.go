package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestATierOnAWindowTheSLOEngineDoesNotEvaluateIsRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(f, []byte(`alerting:
  rules:
    tiers:
      - {name: page-quick, severity: page, long_window: 1h, short_window: 15m, factor: 10}
`), 0o600))
	_, err := loadConfig(f, nil)
	require.ErrorContains(t, err, "tier page-quick: short_window 15m is not an evaluated window (5m, 30m, 1h, 2h, 6h, 1d, 3d)")
	require.ErrorContains(t, err, "c.yml:2: alerting.rules: tiers:", "the file and line of the key")
}

// TestExportedRulesUseTheConfiguredTiers: `slo rules` exports the tiers the
// running engine evaluates and pages on, alerting.rules.tiers included.
func TestExportedRulesUseTheConfiguredTiers(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "shop.yml")
	require.NoError(t, os.WriteFile(spec, []byte(validSLO), 0o644))
	cfg := filepath.Join(dir, "c.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`alerting:
  rules:
    tiers:
      - {name: page-quick, severity: page, long_window: 1h, short_window: 5m, factor: 5}
`), 0o600))
	out := filepath.Join(dir, "rules")
	code, _, stderr := runCLI("slo", "rules", "--config", cfg, "--out", out, spec)
	require.Equal(t, exitOK, code, stderr)
	body, err := os.ReadFile(filepath.Join(out, "shop.rules.yml"))
	require.NoError(t, err)
	require.Contains(t, string(body), "> (5 * 0.005", "the configured factor on the 99.5% budget")
	require.NotContains(t, string(body), "14.4", "not the default tiers")
	require.Equal(t, 1, strings.Count(string(body), "- alert:"), "one tier")
}
