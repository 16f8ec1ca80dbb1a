package sloengine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slothSpec is the example from Sloth's README, unchanged.
const slothSpec = `version: "prometheus/v1"
service: "myservice"
labels:
  owner: "myteam"
  repo: "myorg/myservice"
  tier: "2"
slos:
  # We allow failing (5xx and 429) 1 request every 1000 requests (99.9%).
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for HTTP request responses."
    labels:
      category: availability
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: "MyServiceHighErrorRate"
      labels:
        category: "availability"
      annotations:
        # Overwrite default Sloth SLO alert summmary on ticket and page alerts.
        summary: "High error rate on 'myservice' requests responses"
      page_alert:
        labels:
          severity: "pageteam"
          routing_key: "myteam"
      ticket_alert:
        labels:
          severity: "slack"
          slack_channel: "#alerts-myteam"
`

func TestLoadAcceptsSlothFilesUnchanged(t *testing.T) {
	l := NewLoader()
	l.Add("sloth.yml", []byte(slothSpec))
	slos, err := l.Result()
	require.NoError(t, err)
	require.Len(t, slos, 1)
	s := slos[0]
	require.Equal(t, "myservice-requests-availability", s.ID)
	require.InDelta(t, 0.999, s.Objective, 1e-12)
	require.Equal(t, 30*24*time.Hour, s.Period)
	require.Equal(t, KindEvents, s.SLI.Kind)
	require.Equal(t, map[string]string{"owner": "myteam", "repo": "myorg/myservice", "tier": "2", "category": "availability"}, s.Labels)
	require.Len(t, s.Tiers, 4)
	require.InDelta(t, 14.4, s.Tiers[0].Factor, 0)
	require.Equal(t, "pageteam", s.PageLabels["severity"])
}

func TestExamplesLoad(t *testing.T) {
	slos, err := Examples()
	require.NoError(t, err)
	ids := []string{}
	for _, s := range slos {
		ids = append(ids, s.ID)
	}
	require.Equal(t, []string{"demo-api-availability", "demo-edge-availability", "demo-edge-latency"}, ids)
}

func TestDefaultTiersScaleWithThePeriod(t *testing.T) {
	factors := func(p time.Duration) []float64 {
		var out []float64
		for _, t := range DefaultTiers(p) {
			out = append(out, t.Factor)
		}
		return out
	}
	require.Equal(t, []float64{14.4, 6, 3, 1}, factors(30*24*time.Hour))
	require.Equal(t, []float64{13.44, 5.6, 2.8, 0.933333333}, factors(28*24*time.Hour))
}

const goodHead = `version: burnrate/v1
service: svc
slos:
`

func TestBadSpecsGivePreciseErrors(t *testing.T) {
	events := `    sli:
      events:
        error_query: sum(rate(errs[{{.window}}]))
        total_query: sum(rate(reqs[{{.window}}]))
`
	cases := []struct {
		name  string
		files []string
		want  []string
	}{
		{
			name:  "an unknown field is named with its line and the known fields",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    objectiv: 99\n" + events},
			want:  []string{"f0.yml:6: slos[0].objectiv: unknown field; known fields here: name, objective,"},
		},
		{
			name:  "an objective of 100 or more is out of range",
			files: []string{goodHead + "  - name: a\n    objective: 100\n" + events},
			want:  []string{"f0.yml:5: slos[0].objective: 100 is out of range: want a percentage greater than 0 and less than 100"},
		},
		{
			name:  "an objective given as a ratio below zero is out of range",
			files: []string{goodHead + "  - name: a\n    objective: -0.5\n" + events},
			want:  []string{"f0.yml:5: slos[0].objective: -0.5 is out of range"},
		},
		{
			name:  "a missing total query is reported on the events block",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: sum(rate(errs[{{.window}}]))\n"},
			want:  []string{"f0.yml:7: slos[0].sli.events.total_query: missing"},
		},
		{
			name:  "invalid PromQL names the query field and the parser's reason",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    sli:\n      raw:\n        error_ratio_query: sum(rate(errs[{{.window}}])\n"},
			want:  []string{"f0.yml:8: slos[0].sli.raw.error_ratio_query: invalid PromQL: 1:19: parse error: unclosed left parenthesis"},
		},
		{
			name: "a latency threshold that is not a bucket bound lists the bounds that exist",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    sli:\n      latency:\n        metric: http_server_request_duration_seconds\n" +
				"        threshold: 0.3\n"},
			want: []string{"f0.yml:9: slos[0].sli.latency.threshold: 0.3 is not a bucket bound (le) of the histogram; otelhttp's default bucket bounds are: 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10"},
		},
		{
			name: "a latency threshold is checked against the buckets the spec lists",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    sli:\n      latency:\n        metric: rpc_seconds\n" +
				"        threshold: 0.25\n        buckets: [0.1, 0.2, 0.4]\n"},
			want: []string{"f0.yml:9: slos[0].sli.latency.threshold: 0.25 is not a bucket bound (le) of the histogram; the buckets listed are: 0.1, 0.2, 0.4"},
		},
		{
			name: "duplicate IDs across files point at the first definition",
			files: []string{
				goodHead + "  - name: a\n    objective: 99\n" + events,
				goodHead + "  - name: a\n    objective: 99.5\n" + events,
			},
			want: []string{`f1.yml:4: slos[0].name: duplicate SLO ID "svc-a" (service "svc", name "a"), first defined at f0.yml:4`},
		},
		{
			name:  "a window that is not evaluated cannot be a tier window",
			files: []string{goodHead + "  - name: a\n    objective: 99\n" + events + "    alerting:\n      tiers:\n        - {severity: page, long_window: 45m, short_window: 5m, budget_percent: 2}\n"},
			want:  []string{`f0.yml:12: slos[0].alerting.tiers[0].long_window: "45m" is not an evaluated window; want one of 5m, 30m, 1h, 2h, 6h, 1d, 3d`},
		},
		{
			name:  "every error of a file is reported, not only the first",
			files: []string{goodHead + "  - name: a\n    objective: 120\n" + events + "  - name: b\n    objective: 99\n    sli:\n      events:\n        total_query: x\n"},
			want:  []string{"slos[0].objective: 120 is out of range", "slos[1].sli.events.error_query: missing"},
		},
		{
			name:  "an unknown time zone is named",
			files: []string{goodHead + "  - name: a\n    objective: 99\n    calendar:\n      unit: month\n      time_zone: Mars/Olympus\n" + events},
			want:  []string{`f0.yml:8: slos[0].calendar.time_zone: "Mars/Olympus" is not an IANA time zone`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader()
			for i, f := range tc.files {
				l.Add("f"+string(rune('0'+i))+".yml", []byte(f))
			}
			_, err := l.Result()
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalidSpec))
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.want), "one line per problem: %s", err)
		})
	}
}
