package sloengine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPeriodLongerThanRetentionIsRefused(t *testing.T) {
	slos := loadSLOs(t, `version: burnrate/v1
service: shop
slos:
  - name: quarterly
    objective: 99.9
    calendar: {unit: quarter, time_zone: UTC}
    sli: &sli
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: weekly
    objective: 99.9
    period: 7d
    sli: *sli
`)
	err := CheckRetention(slos, 15*24*time.Hour)
	require.ErrorIs(t, err, ErrRetention)
	require.EqualError(t, err, "test.yml:4: SLO shop-quarterly: period quarter (up to 92d1h) is longer than collector.tsdb.retention 15d; "+
		"raise the retention to at least 95d1h, or set slo.allow_short_retention: true to budget over the retained data only: "+ErrRetention.Error())
	require.NoError(t, CheckRetention(slos, RequiredRetention(slos)))
	require.Equal(t, (92+3)*24*time.Hour+time.Hour, RequiredRetention(slos))
	require.Equal(t, time.Duration(0), RequiredRetention(nil))
}
