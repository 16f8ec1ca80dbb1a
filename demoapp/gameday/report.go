package gameday

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Markdown renders the report. The table has one row per expectation; the
// acknowledgement and resolution columns stay "not measured" until the
// incident tracker records those instants.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Scenario
	fmt.Fprintf(&b, "# Game day: %s\n\n", s.Title)
	fmt.Fprintf(&b, "Scenario `%s`, run %s to %s (%s).\n\n", s.Name,
		r.Started.UTC().Format(time.RFC3339), r.Ended.UTC().Format(time.RFC3339), r.Ended.Sub(r.Started).Round(time.Second))
	if s.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Description))
	}
	fmt.Fprintf(&b, "**Score: %.0f / 100**\n\n", r.Score())
	b.WriteString("| step | expectation | signal | expected within | detected after | score | acknowledged | resolved |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		e := x.Expect
		signal := "`" + strings.ReplaceAll(e.Query, "|", `\|`) + "`"
		if e.Page != "" {
			signal = "page " + e.Page
		}
		within := e.Within.String()
		if e.Never {
			within = "never"
		}
		after := "not detected"
		if x.Detected {
			after = x.After.Round(time.Second).String()
		}
		ack, res := "-", "-"
		if e.AcknowledgeWithin > 0 {
			ack = "not measured (expected " + e.AcknowledgeWithin.String() + ")"
		}
		if e.ResolveWithin > 0 {
			res = "not measured (expected " + e.ResolveWithin.String() + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.0f | %s | %s |\n",
			s.Timeline[x.Step].At, e.Name, signal, within, after, x.Score, ack, res)
	}
	b.WriteString("\n## Timeline\n\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n## Load\n\n")
	if r.LoadErr != "" {
		fmt.Fprintf(&b, "Load failed: %s\n", r.LoadErr)
	} else {
		fmt.Fprintf(&b, "%s %.0f/s: %d requests, %.1f/s achieved, p50 %.1f ms, p99 %.1f ms.\n\n",
			s.Load.Shape, s.Load.Rate, r.Load.Requests, r.Load.AchievedRPS, r.Load.Latency.P50, r.Load.Latency.P99)
		codes := make([]string, 0, len(r.Load.Status))
		for c := range r.Load.Status {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(&b, "- status %s: %d\n", c, r.Load.Status[c])
		}
	}
	var errs []string
	for _, x := range r.Results {
		if x.Err != "" {
			errs = append(errs, fmt.Sprintf("- %s: %s", x.Expect.Name, x.Err))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n## Errors while watching\n\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}
