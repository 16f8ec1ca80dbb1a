package collector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// ErrNoExemplarStorage is returned by TraceIDs when the collector's TSDB
// keeps no exemplars.
var ErrNoExemplarStorage = errors.New("no exemplar storage")

// windowTmpl is Sloth's {{.window}} placeholder in SLI queries.
var windowTmpl = regexp.MustCompile(`\{\{\s*\.window\s*\}\}`)

// TraceIDs returns up to n distinct trace IDs (the trace_id label of
// exemplars) on the series that the PromQL query reads, between from and
// to, newest first. A Sloth {{.window}} placeholder is read as 5m. The
// OpenTelemetry SDKs attach exemplars to a histogram's _bucket series, so
// a selector of a _count series is looked up on its _bucket series too.
func (c *Collector) TraceIDs(ctx context.Context, query string, from, to time.Time, n int) ([]string, error) {
	if c.db == nil {
		return nil, ErrNoExemplarStorage
	}
	return TraceIDs(ctx, c.db, query, from, to, n)
}

// TraceIDs is Collector.TraceIDs on any exemplar storage.
func TraceIDs(ctx context.Context, eq storage.ExemplarQueryable, query string, from, to time.Time, n int) ([]string, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(windowTmpl.ReplaceAllString(query, "5m"))
	if err != nil {
		return nil, fmt.Errorf("exemplars of %q: %w", query, err)
	}
	var sets [][]*labels.Matcher
	for _, sel := range parser.ExtractSelectors(expr) {
		sets = append(sets, sel)
		for i, m := range sel {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual && strings.HasSuffix(m.Value, "_count") {
				bucket := append([]*labels.Matcher(nil), sel...)
				bucket[i] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, strings.TrimSuffix(m.Value, "_count")+"_bucket")
				sets = append(sets, bucket)
			}
		}
	}
	q, err := eq.ExemplarQuerier(ctx)
	if err != nil {
		return nil, fmt.Errorf("exemplar querier: %w", err)
	}
	res, err := q.Select(from.UnixMilli(), to.UnixMilli(), sets...)
	if err != nil {
		return nil, fmt.Errorf("exemplars of %q: %w", query, err)
	}
	type ex struct {
		id string
		ts int64
	}
	var all []ex
	for _, r := range res {
		for _, e := range r.Exemplars {
			if id := e.Labels.Get("trace_id"); id != "" {
				all = append(all, ex{id, e.Ts})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ts > all[j].ts })
	out := []string{}
	seen := map[string]bool{}
	for _, e := range all {
		if len(out) == n {
			break
		}
		if !seen[e.id] {
			seen[e.id] = true
			out = append(out, e.id)
		}
	}
	return out, nil
}
