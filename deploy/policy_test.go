package deploy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

func TestPoliciesLoadWithDefaultsAndPercentages(t *testing.T) {
	ps, err := deploy.ParsePolicies("p.yml", []byte(`
policies:
  - service: checkout
    min_budget_remaining: 25%
    warn_budget_remaining: 0.5
    max_burn_rate: {1h: 14.4, 6h: 6}
    freeze_on_incident: [sev1]
    freeze_windows:
      - name: weekend
        timezone: Europe/Berlin
        start: Fri 16:00
        end: Mon 08:00
    min_coverage: 10%
    on_stale: warn
  - service: "*"
    freeze_on_page: false
`))
	require.NoError(t, err)
	require.Len(t, ps, 2)
	c := ps[0]
	require.Equal(t, "checkout", c.Service)
	require.Equal(t, "p.yml:3", c.Source)
	require.InDelta(t, 0.25, c.MinBudgetRemaining, 1e-12)
	require.InDelta(t, 0.5, c.WarnBudgetRemaining, 1e-12)
	require.Equal(t, map[time.Duration]float64{time.Hour: 14.4, 6 * time.Hour: 6}, c.MaxBurnRate)
	require.Equal(t, []string{"SEV1"}, c.FreezeOnIncident)
	require.True(t, c.FreezeOnPage, "defaults stay on unless the file turns them off")
	require.Equal(t, deploy.Warn, c.OnStale)
	require.Equal(t, deploy.Warn, c.OnLowCoverage)
	require.Equal(t, []string{"p0", "security"}, c.Exceptions)
	require.Len(t, c.FreezeWindows, 1)
	require.False(t, ps[1].FreezeOnPage)

	idx := deploy.NewPolicies(ps...)
	require.Equal(t, "checkout", idx.For("checkout").Service)
	require.Equal(t, "*", idx.For("other").Service, "a service without a policy gets the file's default")
	require.Equal(t, "default", deploy.NewPolicies().For("x").Source)
}

func TestInvalidPoliciesNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"an unknown key is named with a suggestion", `
policies:
  - service: a
    min_budget_remainig: 0.2
`, `p.yml:4: policies[0].min_budget_remainig: unknown key "min_budget_remainig" (did you mean "min_budget_remaining"?)`},
		{"a ratio above one is refused", `
policies:
  - service: a
    min_budget_remaining: 150%
`, `p.yml:4: policies[0].min_budget_remaining: 1.5 is outside 0..1`},
		{"a missing service is refused", `
policies:
  - min_budget_remaining: 0.1
`, `p.yml:3: policies[0].service: required`},
		{"a bad time zone is named", `
policies:
  - service: a
    freeze_windows:
      - {timezone: Europe/Berln, start: Fri 16:00, end: Mon 08:00}
`, `p.yml:5: policies[0].freeze_windows[0].timezone: "Europe/Berln" is not an IANA time zone`},
		{"a freeze window that ends before it starts is refused", `
policies:
  - service: a
    freeze_windows:
      - timezone: UTC
        from: 2026-12-27 00:00
        to: 2026-12-24 00:00
`, `policies[0].freeze_windows[0].to: 2026-12-24 00:00 ends before it starts`},
		{"a weekday that is not one is refused", `
policies:
  - service: a
    freeze_windows:
      - {timezone: UTC, start: Frieday 16:00, end: Mon 08:00}
`, `freeze_windows[0].start: "Frieday 16:00" is not a weekday and time`},
		{"a bad burn-rate window is named", `
policies:
  - service: a
    max_burn_rate: {1hour: 2}
`, `p.yml:4: policies[0].max_burn_rate.1hour: "1hour" is not a window`},
		{"stale data may never pass", `
policies:
  - service: a
    on_stale: pass
`, `p.yml:4: policies[0].on_stale: stale data may warn or fail, never pass silently`},
		{"a wrong kind is named", `
policies:
  - service: a
    freeze_on_incident: SEV1
`, `p.yml:4: policies[0].freeze_on_incident: expected a list, got "SEV1"`},
		{"an unknown severity is named", `
policies:
  - service: a
    freeze_on_incident: [SEV9]
`, `policies[0].freeze_on_incident[0]: "SEV9" is not a severity`},
		{"a duplicate service is refused", `
policies:
  - service: a
  - service: a
`, `p.yml:4: policies[1].service: service "a" has two policies in this file`},
		{"an empty file is refused", ``, `p.yml: the file is empty`},
		{"a bad duration is named", `
policies:
  - service: a
    max_data_age: soon
`, `p.yml:4: policies[0].max_data_age: "soon" is not a duration`},
		{"a burn rate that is not a number names its key", `
policies:
  - service: a
    max_burn_rate: {1h: fast}
`, `p.yml:4: policies[0].max_burn_rate.1h: cannot unmarshal !!str ` + "`fast`" + ` into float64`},
		{"a warning level at or above the maximum is refused", `
policies:
  - service: a
    max_burn_rate: {1h: 6}
    warn_burn_rate:
      1h: 10
`, `p.yml:6: policies[0].warn_burn_rate.1h: 10 is not below max_burn_rate 6 for the same window: the warning would never show`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := deploy.ParsePolicies("p.yml", []byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestPoliciesAreCheckedAgainstTheSLOs(t *testing.T) {
	ps, err := deploy.ParsePolicies("p.yml", []byte(`
policies:
  - service: chekout
  - service: checkout
    max_burn_rate: {4h: 6, 1h: 14.4}
    warn_burn_rate:
      10m: 2
  - service: "*"
`))
	require.NoError(t, err)
	err = deploy.CheckPolicies(ps, []string{"checkout", "search"}, []time.Duration{5 * time.Minute, time.Hour, 6 * time.Hour})
	require.ErrorIs(t, err, deploy.ErrInvalidPolicy)
	for _, want := range []string{
		`p.yml:3: policies[0].service: "chekout" has no SLO (services with SLOs: checkout, search)`,
		`p.yml:5: policies[1].max_burn_rate.4h: the SLO engine does not evaluate a 4h window (it evaluates 5m, 1h, 6h)`,
		`p.yml:7: policies[1].warn_burn_rate.10m: the SLO engine does not evaluate a 10m window`,
	} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "1h window")
	require.NoError(t, deploy.CheckPolicies(ps[2:], nil, nil), "the default policy names no service")
}

func TestLoadPoliciesReadsDirectoriesAndRefusesTwoPoliciesForOneService(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	write("a.yml", "policies:\n  - service: a\n")
	write("b.yaml", "policies:\n  - service: b\n")
	ps, err := deploy.LoadPolicies([]string{dir})
	require.NoError(t, err)
	require.Len(t, ps, 2)

	write("c.yml", "policies:\n  - service: a\n")
	_, err = deploy.LoadPolicies([]string{dir})
	require.ErrorIs(t, err, deploy.ErrInvalidPolicy)
	require.Contains(t, err.Error(), `c.yml:2: service "a" already has a policy at `+filepath.Join(dir, "a.yml")+":2")

	_, err = deploy.LoadPolicies([]string{filepath.Join(dir, "missing.yml")})
	require.True(t, errors.Is(err, deploy.ErrInvalidPolicy) && errors.Is(err, os.ErrNotExist))
}
