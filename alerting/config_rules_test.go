package alerting_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

func TestRuleAndForwardingTimingsAreValidated(t *testing.T) {
	cases := []struct {
		name string
		edit func(*alerting.Config)
		want string
	}{
		{"a negative evaluation_failing_for is rejected", func(c *alerting.Config) { c.Rules.EvaluationFailingFor = -time.Minute },
			"alerting.rules: evaluation_failing_for"},
		{"a negative for_grace_period is rejected", func(c *alerting.Config) { c.Rules.ForGracePeriod = -time.Minute },
			"for_grace_period"},
		{"a negative resend_delay is rejected", func(c *alerting.Config) { c.Alertmanager.ResendDelay = -time.Second },
			"alerting.alertmanager.resend_delay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := alerting.DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			require.ErrorIs(t, err, alerting.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("zero timings get Prometheus's defaults", func(t *testing.T) {
		c := alerting.Config{}.WithDefaults()
		require.Equal(t, 10*time.Minute, c.Rules.EvaluationFailingFor)
		require.Equal(t, 10*time.Minute, c.Rules.ForGracePeriod)
		require.Equal(t, time.Hour, c.Rules.ForOutageTolerance)
		require.Equal(t, time.Minute, c.Alertmanager.ResendDelay)
		require.NoError(t, c.Validate())
	})
}
