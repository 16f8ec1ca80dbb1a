package collector_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// TestTraceIDsComeFromTheExemplarsOfTheQuerysSeries remote-writes a
// histogram and a counter with exemplars into a real collector and looks
// trace IDs up for SLI queries as SLO specs write them.
func TestTraceIDsComeFromTheExemplarsOfTheQuerysSeries(t *testing.T) {
	br := startCollector(t, testConfig(), "")
	now := time.Now().Truncate(time.Second)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	ex := func(trace string, at time.Duration) prompb.Exemplar {
		return prompb.Exemplar{Labels: labelsOf("trace_id", trace), Value: 1, Timestamp: ms(at)}
	}
	series := func(kv []string, exs ...prompb.Exemplar) prompb.TimeSeries {
		ts := prompb.TimeSeries{Labels: labelsOf(kv...), Exemplars: exs}
		for _, d := range []time.Duration{-20 * time.Minute, -10 * time.Minute, -time.Minute} {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: 1, Timestamp: ms(d)})
		}
		return ts
	}
	remoteWrite(t, br.URL, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		// otelhttp's exemplars sit on the buckets, not on _count.
		series([]string{"__name__", "http_server_request_duration_seconds_bucket", "code", "500", "le", "+Inf"},
			ex("old-trace", -20*time.Minute), ex("trace-a", -10*time.Minute), ex("trace-b", -2*time.Minute), ex("trace-a", -time.Minute)),
		series([]string{"__name__", "http_server_request_duration_seconds_count", "code", "500"}),
		series([]string{"__name__", "http_server_request_duration_seconds_bucket", "code", "200", "le", "+Inf"}, ex("ok-trace", -time.Minute)),
		series([]string{"__name__", "checkout_errors_total", "job", "checkout"}, ex("trace-c", -3*time.Minute), ex("trace-d", -time.Minute)),
	}})
	ctx := context.Background()
	from, to := now.Add(-15*time.Minute), now

	cases := []struct {
		name  string
		query string
		n     int
		want  []string
	}{
		{"a _count selector finds the exemplars of its _bucket series, newest first and once each",
			`sum(rate(http_server_request_duration_seconds_count{code="500"}[{{.window}}]))`, 5, []string{"trace-a", "trace-b"}},
		{"exemplars older than the range are left out and other codes are not read",
			`sum(rate(http_server_request_duration_seconds_count{code=~"5.."}[{{ .window }}]))`, 5, []string{"trace-a", "trace-b"}},
		{"a counter's own exemplars are read, at most n",
			`sum(rate(checkout_errors_total{job="checkout"}[5m]))`, 1, []string{"trace-d"}},
		{"a query without exemplars finds none",
			`sum(rate(checkout_requests_total[{{.window}}]))`, 5, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := br.TraceIDs(ctx, tc.query, from, to, tc.n)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	_, err := br.TraceIDs(ctx, `sum(rate(x[`, from, to, 5)
	require.ErrorContains(t, err, `exemplars of "sum(rate(x["`)
}
