package gameday

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Markdown renders the report. The table has one row per expectation; the
// acknowledgement and resolution columns show the times from the drill's
// incident's trigger (incident tracker), or why they were not measured.
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
	if len(r.Void) > 0 {
		b.WriteString("The drill is void and scores 0: what it watched could not be read.\n\n")
		for _, v := range r.Void {
			fmt.Fprintf(&b, "- %s\n", v)
		}
		b.WriteString("\n")
	}
	if r.History != "" {
		fmt.Fprintf(&b, "Steady state: %s\n\n", r.History)
	}
	b.WriteString("| step | expectation | signal | expected within | detected after | error ratio | burn rate at detection | score | acknowledged | resolved |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		e := x.Expect
		signal := "`" + strings.ReplaceAll(e.Query, "|", `\|`) + "`"
		if e.Page != "" {
			signal = "page " + e.Page
		}
		within := roundDur(x.Within)
		switch {
		case e.Never:
			within = "never"
		case x.WithinWhy != "" && x.Within == time.Duration(math.MaxInt64):
			within = "never (no bad events)"
		case x.WithinWhy != "":
			within += " (workbook: " + x.WithinWhy + ")"
		}
		after := "not detected"
		if x.Detected {
			after = roundDur(x.After)
		}
		if x.TooEarly {
			after += " **too early**: the math allows no less than " + roundDur(time.Duration(TooEarlyFraction*float64(x.Within)))
		}
		ratio, burn := "-", "-"
		if !math.IsNaN(x.ErrorRatio) {
			ratio = fmt.Sprintf("%.4f (%d answers)", x.ErrorRatio, x.Answers)
		}
		if !math.IsNaN(x.BurnRate) {
			burn = fmt.Sprintf("%.2f", x.BurnRate)
		}
		ack, res := responseCells(x)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n",
			s.Timeline[x.Step].At, e.Name, signal, within, after, ratio, burn, x.Score, ack, res)
	}
	if len(r.BudgetConsumed) > 0 {
		b.WriteString("\n## Error budget consumed during the drill\n\n")
		ids := make([]string, 0, len(r.BudgetConsumed))
		for id := range r.BudgetConsumed {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if v := r.BudgetConsumed[id]; math.IsNaN(v) {
				fmt.Fprintf(&b, "- %s: unknown\n", id)
			} else {
				fmt.Fprintf(&b, "- %s: %.2f%%\n", id, 100*v)
			}
		}
	}
	b.WriteString("\n## Timeline\n\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	if len(r.FaultEvents) > 0 {
		b.WriteString("\n## Fault events (Burnrate's event store)\n\n")
		for _, e := range r.FaultEvents {
			fmt.Fprintf(&b, "- %s  %s %s %s (%s)\n", e.At.Sub(r.Started).Round(time.Second), e.Kind, e.Flag, e.Value, e.Source)
		}
	}
	if len(r.FailingTraces) > 0 {
		b.WriteString("\n## Example failing traces\n\n")
		for _, id := range r.FailingTraces {
			fmt.Fprintf(&b, "- `%s` (GET /api/v1/traces/%s)\n", id, id)
		}
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

// roundDur rounds to seconds, or to 10ms below 10s, so short drills read.
func roundDur(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
