// Package deploy answers deploy pipelines from the error budget: the gate
// (a decision pass, warn or fail per service, by an error-budget policy),
// the exceptions it records, deploy events and the post-deploy watch.
//
// A decision reads the SLO engine's latest evaluation, held in memory: the
// gate sends no query per request, so pipelines polling it cost nothing.
package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// SLOState is what the gate reads of one SLO's latest evaluation.
type SLOState struct {
	ID string
	// BudgetRemaining is the share of the period's budget left (1 = all,
	// negative = overspent); NaN when unknown.
	BudgetRemaining float64
	// BurnRates by window; windows whose event count is too low to trust
	// are left out.
	BurnRates map[time.Duration]float64
	// Coverage is the share of the period that data covers (0..1); NaN
	// when the engine does not report it.
	Coverage    float64
	EvaluatedAt time.Time
	// Error is the latest evaluation's error, if it failed.
	Error string
	// InsufficientData is set while the period holds too little data for
	// a budget figure (its first minutes).
	InsufficientData bool
	// NoData lists the windows over which the SLI's series do not exist
	// (the query had no result), as opposed to existing without traffic.
	NoData map[time.Duration]bool
	// LowTraffic lists the windows whose event count is too low to trust
	// a burn rate (an idle night): known to be quiet, not missing.
	LowTraffic map[time.Duration]bool
	// Absent is set when an SLI that had traffic in the period has no
	// series in its shortest window: the condition SLODataAbsent fires on.
	Absent bool
	// PageFiring lists the page alerts of this SLO that fire.
	PageFiring []string
}

// OpenIncident is an open incident of the service.
type OpenIncident struct {
	ID       string
	Severity string
	Title    string
}

// Snapshot is everything a decision for one service reads.
type Snapshot struct {
	Service   string
	SLOs      []SLOState
	Incidents []OpenIncident
	// IncidentsErr is set when the open incidents could not be listed: the
	// incident freeze cannot be judged, which is not the same as none.
	IncidentsErr string
}

// Source gives the gate its snapshots; it must answer from memory.
type Source interface {
	// Snapshot returns the service's state; ok is false for a service
	// with no SLO.
	Snapshot(service string) (s Snapshot, ok bool)
	// Services lists the services that have SLOs.
	Services() []string
}

// Check is one rule of the policy, as applied.
type Check struct {
	Rule string `json:"rule"`
	// Window is the burn-rate window of a burn_rate check.
	Window  string  `json:"window,omitempty"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message"`
}

// Decision is the gate's answer. Its JSON is the contract pipelines read
// (Argo Rollouts' jsonPath `{$.decision}`, GitHub Actions' summary).
type Decision struct {
	Decision Outcome `json:"decision"`
	Service  string  `json:"service"`
	Version  string  `json:"version,omitempty"`
	// Reasons say why, one sentence each: every rule not met, then notes.
	Reasons []string `json:"reasons"`
	Checks  []Check  `json:"checks"`
	// BudgetRemaining is the lowest of the service's SLOs (null: unknown).
	BudgetRemaining jsonFloat `json:"budget_remaining"`
	// BurnRates is the highest burn rate per window across the SLOs.
	BurnRates map[string]float64 `json:"burn_rates"`
	// Coverage is the lowest data coverage across the SLOs.
	Coverage    jsonFloat  `json:"coverage"`
	Policy      string     `json:"policy"`
	EvaluatedAt time.Time  `json:"evaluated_at"`
	DataAge     float64    `json:"data_age_seconds"`
	Exception   *Exception `json:"exception,omitempty"`
	// Would is the decision the exception overrode.
	Would Outcome `json:"overridden_decision,omitempty"`
}

type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

// Rules of the policy, as Check.Rule names them.
const (
	RuleData     = "data"
	RuleCoverage = "coverage"
	RuleBudget   = "budget"
	RuleBurnRate = "burn_rate"
	RuleFreeze   = "freeze"
	RuleIncident = "incident"
)

// Decide applies policy p to snapshot s at now. It is pure: the same
// inputs give the same decision. Every rule of the policy appears in
// Checks with its outcome, passes included; data a rule needs that is
// missing (an absent SLI, a window without series, an incident lookup
// that failed) answers p.OnStale and says what is missing, never pass.
func Decide(p Policy, s Snapshot, now time.Time) Decision {
	d := Decision{Service: s.Service, Decision: Pass, Policy: p.Source, BurnRates: map[string]float64{},
		BudgetRemaining: jsonFloat(math.NaN()), Coverage: jsonFloat(math.NaN()), Reasons: []string{}, Checks: []Check{}}
	window := ""
	add := func(rule string, o Outcome, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		c := Check{Rule: rule, Outcome: o, Message: msg}
		if rule == RuleBurnRate {
			c.Window = window
		}
		d.Checks = append(d.Checks, c)
		d.Decision = worse(d.Decision, o)
		if o != Pass {
			d.Reasons = append(d.Reasons, msg)
		}
	}

	// Data first: a decision on stale, failing or absent data is no decision.
	budget, coverage := math.Inf(1), math.Inf(1)
	var young []string
	burns := map[time.Duration]float64{}
	var oldest time.Time
	stale := false
	var usable []SLOState
	for _, slo := range s.SLOs {
		if oldest.IsZero() || slo.EvaluatedAt.Before(oldest) {
			oldest = slo.EvaluatedAt
		}
		if slo.Error != "" {
			add(RuleData, p.OnStale, "SLO %s cannot be evaluated: %s", slo.ID, slo.Error)
			stale = true
			continue
		}
		if slo.EvaluatedAt.IsZero() {
			add(RuleData, p.OnStale, "SLO %s has not been evaluated yet", slo.ID)
			stale = true
			continue
		}
		if slo.Absent {
			add(RuleData, p.OnStale, "SLO %s has no SLI data: its series are absent from the last %s (SLODataAbsent)", slo.ID, shortestWindow(slo))
			stale = true
		}
		usable = append(usable, slo)
		if slo.InsufficientData {
			young = append(young, slo.ID)
		}
		if !math.IsNaN(slo.BudgetRemaining) {
			budget = math.Min(budget, slo.BudgetRemaining)
		}
		if !math.IsNaN(slo.Coverage) {
			coverage = math.Min(coverage, slo.Coverage)
		}
		if slo.Absent {
			// Its longer windows still hold the data from before it
			// stopped: no burn rate of it speaks for now.
			continue
		}
		for w, b := range slo.BurnRates {
			if cur, ok := burns[w]; !ok || b > cur {
				burns[w] = b
			}
		}
	}
	for w, b := range burns {
		d.BurnRates[model.Duration(w).String()] = b
	}
	if !oldest.IsZero() {
		d.EvaluatedAt = oldest.UTC()
		age := now.Sub(oldest)
		d.DataAge = math.Round(age.Seconds()*1000) / 1000
		if age > p.MaxDataAge && !stale {
			add(RuleData, p.OnStale, "the newest SLO data is %s old, more than the %s the policy allows", roundDur(age), p.MaxDataAge)
			stale = true
		}
	}
	if len(s.SLOs) == 0 {
		add(RuleData, p.OnStale, "service %s has no SLO to judge a deploy by", s.Service)
		stale = true
	}
	if !stale {
		add(RuleData, Pass, "every SLO of %s was evaluated %s ago, with SLI data", s.Service, roundDur(now.Sub(oldest)))
	}
	if !math.IsInf(budget, 1) {
		d.BudgetRemaining = jsonFloat(budget)
	}
	if !math.IsInf(coverage, 1) {
		d.Coverage = jsonFloat(coverage)
	}

	// Budget, trusted only when the period holds enough data.
	lowCoverage := p.MinCoverage > 0 && !math.IsInf(coverage, 1) && coverage < p.MinCoverage
	if lowCoverage {
		add(RuleCoverage, p.OnLowCoverage, "data covers %s of the period, less than the %s the policy needs to trust the budget", pct(coverage), pct(p.MinCoverage))
	}
	if len(young) > 0 {
		add(RuleCoverage, p.OnLowCoverage, "the period of %s holds too little data yet to judge its budget", strings.Join(young, ", "))
	}
	if !lowCoverage && len(young) == 0 && !math.IsInf(coverage, 1) && p.MinCoverage > 0 {
		add(RuleCoverage, Pass, "data covers %s of the period (minimum %s)", pct(coverage), pct(p.MinCoverage))
	}
	switch {
	case math.IsInf(budget, 1):
		if !stale && len(young) == 0 {
			add(RuleBudget, p.OnStale, "no SLO of %s reports its remaining budget", s.Service)
		}
	case budget < p.MinBudgetRemaining || budget <= 0:
		add(RuleBudget, Fail, "error budget remaining %s is below the policy minimum of %s", pct(budget), pct(p.MinBudgetRemaining))
	case p.WarnBudgetRemaining > 0 && budget < p.WarnBudgetRemaining:
		add(RuleBudget, Warn, "error budget remaining %s is below the warning level of %s", pct(budget), pct(p.WarnBudgetRemaining))
	default:
		add(RuleBudget, Pass, "error budget remaining %s (minimum %s)", pct(budget), pct(p.MinBudgetRemaining))
	}

	// Burn rates, shortest window first: a window a rule names must hold
	// data for every SLO, else the rule cannot be judged.
	windows := map[time.Duration]bool{}
	for w := range p.MaxBurnRate {
		windows[w] = true
	}
	for w := range p.WarnBurnRate {
		windows[w] = true
	}
	for _, w := range slices.Sorted(maps.Keys(windows)) {
		k := model.Duration(w).String()
		var missing, quiet []string
		for _, slo := range usable {
			_, has := slo.BurnRates[w]
			switch {
			case slo.Absent:
				// Reported once above.
			case slo.NoData[w]:
				missing = append(missing, slo.ID)
			case slo.LowTraffic[w]:
				quiet = append(quiet, slo.ID)
			case !has:
				missing = append(missing, slo.ID)
			}
		}
		if len(missing) > 0 {
			add(RuleData, p.OnStale, "no SLI data over the %s window for %s: the %s burn-rate rule cannot be judged", k, strings.Join(missing, ", "), k)
		}
		window = k
		b, ok := d.BurnRates[k]
		max, hasMax := p.MaxBurnRate[w]
		warn, hasWarn := p.WarnBurnRate[w]
		switch {
		case !ok && len(missing) > 0:
			// Reported under data above, naming the SLOs.
		case !ok && len(quiet) > 0:
			add(RuleBurnRate, Pass, "the %s window holds too few events to judge a burn rate (%s)", k, strings.Join(quiet, ", "))
		case !ok:
			add(RuleData, p.OnStale, "the %s burn-rate rule cannot be judged: no SLO of %s has SLI data", k, s.Service)
		case hasMax && b > max:
			add(RuleBurnRate, Fail, "the %s burn rate is %s, above the maximum of %s", k, fmtBurn(b), fmtBurn(max))
		case hasWarn && b > warn:
			add(RuleBurnRate, Warn, "the %s burn rate is %s, above the warning level of %s", k, fmtBurn(b), fmtBurn(warn))
		default:
			limit := max
			if !hasMax {
				limit = warn
			}
			add(RuleBurnRate, Pass, "the %s burn rate is %s (limit %s)", k, fmtBurn(b), fmtBurn(limit))
		}
	}

	// Freezes.
	if p.FreezeOnPage {
		var pages []string
		for _, slo := range s.SLOs {
			pages = append(pages, slo.PageFiring...)
		}
		sort.Strings(pages)
		if len(pages) > 0 {
			add(RuleFreeze, Fail, "page alert firing: %s", strings.Join(slices.Compact(pages), ", "))
		} else {
			add(RuleFreeze, Pass, "no page alert of %s fires", s.Service)
		}
	}
	if len(p.FreezeOnIncident) > 0 {
		frozen := false
		for _, inc := range s.Incidents {
			if slices.Contains(p.FreezeOnIncident, strings.ToUpper(inc.Severity)) {
				add(RuleIncident, Fail, "%s incident %s is open: %s", strings.ToUpper(inc.Severity), inc.ID, inc.Title)
				frozen = true
			}
		}
		switch {
		case s.IncidentsErr != "":
			add(RuleIncident, p.OnStale, "the open incidents of %s are unknown: %s", s.Service, s.IncidentsErr)
		case !frozen:
			add(RuleIncident, Pass, "no %s incident of %s is open", strings.Join(p.FreezeOnIncident, " or "), s.Service)
		}
	}
	for _, fw := range p.FreezeWindows {
		if start, end, ok := fw.Active(now); ok {
			add(RuleFreeze, Fail, "deploy freeze %q from %s until %s", fw.Name,
				start.Format("Mon 2006-01-02 15:04 MST"), end.Format("Mon 2006-01-02 15:04 MST"))
		} else {
			add(RuleFreeze, Pass, "outside deploy freeze %q", fw.Name)
		}
	}
	return d
}

// shortestWindow names the shortest window an SLO reports on.
func shortestWindow(s SLOState) string {
	var w time.Duration
	for _, m := range []map[time.Duration]bool{s.NoData, s.LowTraffic} {
		for k := range m {
			if w == 0 || k < w {
				w = k
			}
		}
	}
	for k := range s.BurnRates {
		if w == 0 || k < w {
			w = k
		}
	}
	if w == 0 {
		return "window"
	}
	return model.Duration(w).String()
}

// dataMissing reports whether the decision rests on missing, stale or
// failing data: no exception overrides that.
func (d Decision) dataMissing() bool {
	for _, c := range d.Checks {
		if c.Rule == RuleData && c.Outcome != Pass {
			return true
		}
	}
	return false
}

// applyException turns a failed (or warned) decision into a pass, keeping
// what it would have been and why.
func (d *Decision) applyException(e *Exception) {
	d.Exception = e
	if d.Decision == Pass {
		return
	}
	if d.dataMissing() {
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s exception %s does not override missing or stale data", e.Kind, e.ID))
		return
	}
	d.Would = d.Decision
	d.Decision = Pass
	d.Reasons = append(d.Reasons, fmt.Sprintf("passed by %s exception %s recorded by %s: %s", e.Kind, e.ID, e.Author, e.Reason))
}

func pct(v float64) string {
	switch {
	case math.IsNaN(v):
		return "unknown"
	case math.Abs(v) < 0.0001 && v != 0:
		return fmt.Sprintf("%.4f%%", v*100)
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

func fmtBurn(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func roundDur(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
