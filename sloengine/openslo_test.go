package sloengine

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const openSLOFile = `apiVersion: openslo/v1
kind: Service
metadata:
  name: web
spec:
  description: The web front end
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: web-successful-requests
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="web",code!~"5.."}
    total:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="web"}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata:
  name: fast-burn
spec:
  severity: page
  condition:
    kind: burnrate
    op: gte
    threshold: 13.44
    lookbackWindow: 1h
    alertAfter: 5m
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata:
  name: page-on-fast-burn
spec:
  alertWhenBreaching: true
  conditions:
    - conditionRef: fast-burn
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
  labels:
    team: web
spec:
  service: web
  indicatorRef: web-successful-requests
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: good
      target: 0.995
  alertPolicies:
    - page-on-fast-burn
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: errors-monthly
spec:
  service: web
  indicator:
    metadata:
      name: web-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total{job="web",code=~"5.."}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="web"}
  timeWindow:
    - duration: 1M
      calendar:
        startTime: "2026-01-01 00:00:00"
        timeZone: Europe/Berlin
  budgetingMethod: Timeslices
  objectives:
    - target: 0.99
      timeSliceTarget: 0.95
      timeSliceWindow: 5m
`

func TestOpenSLOMapsOntoTheEngineModel(t *testing.T) {
	l := NewLoader()
	l.Add("web.openslo.yml", []byte(openSLOFile))
	slos, err := l.Result()
	require.NoError(t, err)
	require.Len(t, slos, 2)

	a := slos[0]
	require.Equal(t, "web-availability", a.ID)
	require.Equal(t, 0.995, a.Objective)
	require.Equal(t, 28*24*time.Hour, a.Period)
	require.Equal(t, map[string]string{"team": "web"}, a.Labels)
	require.Equal(t, `((sum(rate(http_requests_total{job="web"}[1h]))) - (sum(rate(http_requests_total{job="web",code!~"5.."}[1h]))))`, a.SLI.errorExpr(time.Hour))
	require.Len(t, a.Tiers, 1)
	require.Equal(t, Tier{Name: "page-1h/5m", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetPercent: 2, Factor: 13.44}, roundTier(a.Tiers[0]))
	require.Equal(t, "web.openslo.yml", a.File)
	require.Equal(t, 51, a.Line)

	m := slos[1]
	require.Equal(t, "web-errors-monthly", m.ID)
	require.Equal(t, "month", m.Calendar.Unit)
	require.Equal(t, "Europe/Berlin", m.Calendar.Location.String())
	require.Equal(t, Timeslices, m.Budgeting)
	require.Equal(t, 0.95, m.TimeSliceTarget)
	require.Len(t, m.Tiers, 4, "no alert policy: the default tiers")
}

func roundTier(t Tier) Tier {
	t.BudgetPercent = float64(int(t.BudgetPercent*1e6+0.5)) / 1e6
	return t
}

func TestOpenSLOErrorsNameDocumentLineAndField(t *testing.T) {
	cases := []struct {
		name    string
		replace [2]string
		want    string
	}{
		{"an unknown field in an SLO spec is reported on its line", [2]string{"  budgetingMethod: Occurrences\n", "  budgetingMethod: Occurrences\n  budgetMethod: x\n"}, "x.yml:61: spec.budgetMethod: unknown field"},
		{"a reference to a missing SLI is named", [2]string{"indicatorRef: web-successful-requests", "indicatorRef: web-ok"}, `x.yml:56: spec.indicatorRef: no SLI named "web-ok" in this file`},
		{"a target above 1 is out of range", [2]string{"target: 0.995", "target: 99.5"}, "x.yml:63: spec.objectives[0].target: 99.5 is out of range"},
		{"a lookback window that is not evaluated is refused", [2]string{"lookbackWindow: 1h", "lookbackWindow: 2h"}, `x.yml:36: spec.condition.lookbackWindow: "2h": want one of 1h, 6h, 1d, 3d`},
		{"a service that the file does not define is refused", [2]string{"  service: web\n  indicatorRef", "  service: webb\n  indicatorRef"}, `x.yml:55: spec.service: "webb" is not a Service defined in this file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader()
			src := openSLOFile
			require.Contains(t, src, tc.replace[0])
			l.Add("x.yml", []byte(replaceOnce(src, tc.replace[0], tc.replace[1])))
			_, err := l.Result()
			require.ErrorIs(t, err, ErrInvalidSpec)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func replaceOnce(s, old, new string) string {
	i := len(s)
	for j := 0; j+len(old) <= len(s); j++ {
		if s[j:j+len(old)] == old {
			i = j
			break
		}
	}
	if i == len(s) {
		return s
	}
	return s[:i] + new + s[i+len(old):]
}

func TestOpenSLOInlineAlertPolicyBecomesATier(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzLoad/openslo-inline-policy")
	require.NoError(t, err)
	// The corpus file holds the document as a Go string literal.
	body := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(string(raw), "\n", 2)[1], "[]byte("), ")\n")
	doc, err := strconv.Unquote(body)
	require.NoError(t, err)
	l := NewLoader()
	l.Add("inline.yml", []byte(doc))
	slos, err := l.Result()
	require.NoError(t, err)
	require.Len(t, slos, 1)
	require.Equal(t, "a-s", slos[0].ID)
	require.Equal(t, `(sum(rate(e[5m])))`, slos[0].SLI.errorExpr(5*time.Minute), "a counter selector becomes sum(rate(...))")
	require.Len(t, slos[0].Tiers, 1)
	require.Equal(t, "page", slos[0].Tiers[0].Severity)
	require.InDelta(t, 14.4, slos[0].Tiers[0].Factor, 0)
	require.InDelta(t, 2, slos[0].Tiers[0].BudgetPercent, 1e-9)
}
