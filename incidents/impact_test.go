package incidents_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/incidents"
)

// TestBudgetConsumedCountsFromZeroBeforeTheFirstCompleteSlice: the SLO
// engine writes NaN as the consumed budget until the period holds a
// complete 5-minute slice with data (its coverage is then 0): nothing has
// been counted as spent, so an incident that starts in the first minutes
// after an install consumes from 0 rather than having no budget at all. A
// NaN for another reason (too few events, coverage above 0) stays unknown.
func TestBudgetConsumedCountsFromZeroBeforeTheFirstCompleteSlice(t *testing.T) {
	st := teststorage.New(t)
	app := st.Appender(context.Background())
	series := func(name string) labels.Labels {
		return labels.FromStrings("__name__", name, "sloth_id", "api-availability", "sloth_service", "api")
	}
	for _, s := range []struct {
		at                 time.Time
		consumed, coverage float64
	}{
		{t0.Add(-2 * time.Minute), math.NaN(), 0}, // young: no complete slice yet
		{t0.Add(time.Minute), 0.003, 0.0001},      // the first slice
		{t0.Add(3 * time.Minute), math.NaN(), 0.0002},
		{t0.Add(20 * time.Minute), math.NaN(), 0.0003}, // below min_events, say
	} {
		_, err := app.Append(0, series("slo:period_error_budget_consumed:ratio"), s.at.UnixMilli(), s.consumed)
		require.NoError(t, err)
		_, err = app.Append(0, series("slo:period_coverage:ratio"), s.at.UnixMilli(), s.coverage)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())

	b := incidents.TSDBBudget{Queryable: st}
	ctx := context.Background()
	v, ok := b.ConsumedAt(ctx, "api-availability", t0)
	require.True(t, ok, "before the first complete slice the budget consumed is a number")
	require.Zero(t, v, "nothing counted yet")
	v, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(2*time.Minute))
	require.True(t, ok)
	require.InDelta(t, 0.003, v, 1e-12)
	v, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(4*time.Minute))
	require.True(t, ok)
	require.InDelta(t, 0.003, v, 1e-12, "an unknown value with data behind it is skipped for the last known one")
	_, ok = b.ConsumedAt(ctx, "api-availability", t0.Add(21*time.Minute))
	require.False(t, ok, "unknown with data behind it, and nothing known within five minutes")
}

// TestAnIncidentStartsWhereItsAlertsSayTheBurnBegan: the impact start is
// the earliest impact_started_at of the group's firing alerts (RFC 3339
// with nanoseconds, as alerting writes it), not only the first alert's;
// one that does not parse is ignored rather than losing the incident.
func TestAnIncidentStartsWhereItsAlertsSayTheBurnBegan(t *testing.T) {
	e := newEnv(t, nil)
	n := pageNotification(1, "g1", alerting.StatusFiring)
	fast := n.Alerts[0]
	fast.Annotations = map[string]string{"summary": "fast burn", alerting.AnnotationImpactStarted: t0.Add(-90 * time.Second).Format(time.RFC3339Nano)}
	slow := n.Alerts[0]
	slow.Labels = map[string]string{"alertname": "SLOBurnRate", "severity": "page", "slo": "api-availability", "window": "6h"}
	began := t0.Add(-17*time.Minute - 123456789*time.Nanosecond)
	slow.Annotations = map[string]string{alerting.AnnotationImpactStarted: began.Format(time.RFC3339Nano)}
	broken := n.Alerts[0]
	broken.Labels = map[string]string{"alertname": "SLOBurnRate", "severity": "page", "slo": "api-availability", "window": "3d"}
	broken.Annotations = map[string]string{alerting.AnnotationImpactStarted: "yesterday"}
	n.Alerts = []alerting.NotifiedAlert{fast, slow, broken}
	require.NoError(t, e.svc.Notify(context.Background(), n))

	inc := e.get(t, 1)
	require.Equal(t, began.Truncate(time.Millisecond), *inc.ImpactStartedAt, "the earliest burn, to the millisecond the store keeps")
	require.InDelta(t, t0.Sub(began.Truncate(time.Millisecond)).Seconds(), *inc.DetectionSeconds, 1e-9)
}
