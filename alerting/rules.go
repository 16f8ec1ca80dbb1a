package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/burnrate/burnrate/sloengine"
)

// BurnSource is what SLO alert rules read: the current state of every SLO.
// The SLO engine provides it (internal/app maps its statuses); keeping the
// interface here keeps alerting testable with fixed numbers.
type BurnSource interface {
	Burns() []SLOBurn
}

// BurnSourceFunc adapts a function to BurnSource.
type BurnSourceFunc func() []SLOBurn

// Burns calls f.
func (f BurnSourceFunc) Burns() []SLOBurn { return f() }

// SLOBurn is the state of one SLO at one evaluation.
type SLOBurn struct {
	// ID identifies the SLO (Sloth's sloth_id); Service and Name are its
	// parts.
	ID, Service, Name string
	// Labels are the SLO's own labels, copied onto its alerts.
	Labels map[string]string
	// Objective is the target ratio (0.999) and Period its rolling window.
	Objective float64
	Period    time.Duration
	// Windows holds the burn rate and event counts per window length.
	Windows map[time.Duration]WindowBurn
	// BudgetRemaining is the fraction of the period's budget left (1 = all,
	// negative = overspent); NaN when unknown.
	BudgetRemaining float64
	// LastData is the time of the newest SLI sample, for sources that know
	// it; zero otherwise, and then the shortest window's NoData says whether
	// the SLI's series are absent.
	LastData time.Time
	// HadTraffic reports whether the SLI had traffic at some point of its
	// period. An SLO that never had any (a fresh install, a service not yet
	// deployed) is new rather than broken: its data is not "absent".
	HadTraffic bool
	// RunbookURL and DashboardURL become alert annotations.
	RunbookURL, DashboardURL string
	// ExampleTraceIDs are failing requests' trace IDs (from exemplars).
	ExampleTraceIDs []string
	// Tiers are the SLO's burn-rate tiers as the SLO engine evaluated them,
	// each with the engine's firing decision: a burn-rate rule is active
	// exactly when its tier is Firing. Which tiers an SLO has is decided
	// by the engine too (its spec, else RulesConfig.TierOverrides, else
	// the defaults); alerting adds the rule lifecycle (for,
	// keep_firing_for, restore, resolve) and drops disabled tiers.
	Tiers []sloengine.TierState
	// EvaluatedAt is when the engine measured these numbers; zero means
	// the rules' own evaluation time. Burn runs (impact starts) are
	// stamped with it.
	EvaluatedAt time.Time
	// Stale marks an SLO whose evaluation failed: its alerts keep their
	// state rather than resolving for lack of numbers, for at most
	// RulesConfig.EvaluationFailingFor. Error says why it failed.
	Stale bool
	Error string
}

// WindowBurn is one window of one SLO, for alert annotations and the
// data-absent rule.
type WindowBurn struct {
	BurnRate float64
	// Errors and Total count the window's events; NaN when the SLI does not
	// count events (a raw error-ratio SLI), 0 when there was no traffic.
	Errors, Total float64
	// NoData marks a window over which the SLI's series do not exist (the
	// metric is gone), as opposed to existing without traffic.
	NoData bool
}

// tierWindow is Sloth's name of a tier's windows, such as "1h/5m".
func tierWindow(t sloengine.Tier) string {
	return promDuration(t.LongWindow) + "/" + promDuration(t.ShortWindow)
}

func promDuration(d time.Duration) string { return model.Duration(d).String() }

// TierConfig configures a tier. Factor, when zero, is derived from
// BudgetPercent and the SLO period: Factor = percent/100 * period / long.
// The tiers themselves are handed to the SLO engine (TierOverrides), which
// evaluates them; For and KeepFiringFor stay here, applied by tier name.
type TierConfig struct {
	Name          string        `mapstructure:"name" yaml:"name,omitempty"`
	Severity      string        `mapstructure:"severity" yaml:"severity,omitempty"`
	Long          time.Duration `mapstructure:"long_window" yaml:"long_window,omitempty"`
	Short         time.Duration `mapstructure:"short_window" yaml:"short_window,omitempty"`
	BudgetPercent float64       `mapstructure:"budget_percent" yaml:"budget_percent,omitempty"`
	Factor        float64       `mapstructure:"factor" yaml:"factor,omitempty"`
	For           time.Duration `mapstructure:"for" yaml:"for,omitempty"`
	KeepFiringFor time.Duration `mapstructure:"keep_firing_for" yaml:"keep_firing_for,omitempty"`
	Disabled      bool          `mapstructure:"disabled" yaml:"disabled,omitempty"`
}

// SLORulesConfig tunes the rules of one SLO.
type SLORulesConfig struct {
	// Disable names tiers (or "budget_exhausted", "data_absent") to drop.
	Disable []string `mapstructure:"disable" yaml:"disable,omitempty"`
	// Tiers, when set, replace the default tiers (unless the SLO's spec
	// lists its own).
	Tiers []TierConfig `mapstructure:"tiers" yaml:"tiers,omitempty"`
}

// RulesConfig configures the alerts generated from SLOs.
type RulesConfig struct {
	// Tiers, when set, replace the default multi-window burn-rate tiers
	// (sloengine.DefaultTiers) of every SLO whose spec does not list its
	// own. The SLO engine evaluates them (see TierOverrides).
	Tiers []TierConfig `mapstructure:"tiers"`
	// BudgetExhausted adds an alert when the period's budget is spent.
	BudgetExhausted bool `mapstructure:"budget_exhausted"`
	// DataAbsentFor raises "SLI data absent" after the SLI's series have
	// been missing this long (an SLI that never had traffic is not absent);
	// 0 disables it.
	DataAbsentFor time.Duration `mapstructure:"data_absent_for"`
	// EvaluationFailingFor raises SLOEvaluationFailing once an SLO's
	// evaluation has failed this long; its other alerts, which keep their
	// state while it fails, then resolve, as a Prometheus rule whose query
	// fails stops re-sending its alerts.
	EvaluationFailingFor time.Duration `mapstructure:"evaluation_failing_for"`
	// ForGracePeriod and ForOutageTolerance restore pending alerts after a
	// restart as Prometheus does: the time spent down does not count
	// towards `for`, an alert due to fire gets at least ForGracePeriod
	// before it fires, and after a stop longer than ForOutageTolerance the
	// pending time starts over.
	ForGracePeriod     time.Duration `mapstructure:"for_grace_period"`
	ForOutageTolerance time.Duration `mapstructure:"for_outage_tolerance"`
	// SLOs tunes individual SLOs by ID.
	SLOs map[string]SLORulesConfig `mapstructure:"slos"`
}

// DefaultRulesConfig keeps the SLO engine's default tiers (the Google SRE
// Workbook's four, sloengine.DefaultTiers) and turns on the budget,
// data-absent and evaluation-failing rules.
func DefaultRulesConfig() RulesConfig {
	return RulesConfig{
		BudgetExhausted:      true,
		DataAbsentFor:        10 * time.Minute,
		EvaluationFailingFor: 10 * time.Minute,
		ForGracePeriod:       10 * time.Minute,
		ForOutageTolerance:   time.Hour,
	}
}

// withDefaults fills the zero durations that have a default.
func (c RulesConfig) withDefaults() RulesConfig {
	d := DefaultRulesConfig()
	orDefault(&c.EvaluationFailingFor, d.EvaluationFailingFor)
	orDefault(&c.ForGracePeriod, d.ForGracePeriod)
	orDefault(&c.ForOutageTolerance, d.ForOutageTolerance)
	return c
}

// orDefault sets *v to d when it is the zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Validate checks every tier.
func (c RulesConfig) Validate() error {
	check := func(ts []TierConfig) error {
		seen := map[string]bool{}
		for i, t := range ts {
			if t.Name == "" || seen[t.Name] {
				return fmt.Errorf("tier %d: needs a unique name", i)
			}
			seen[t.Name] = true
			if t.For < 0 || t.KeepFiringFor < 0 {
				return fmt.Errorf("tier %s: for and keep_firing_for must not be negative", t.Name)
			}
		}
		return nil
	}
	if err := check(c.Tiers); err != nil {
		return err
	}
	for id, s := range c.SLOs {
		if err := check(s.Tiers); err != nil {
			return fmt.Errorf("slos.%s: %w", id, err)
		}
	}
	// The SLO engine evaluates the tiers and checks what it needs of them
	// (severity, windows it evaluates, a threshold); names and the
	// lifecycle are alerting's.
	if err := c.TierOverrides().Validate(); err != nil {
		return err
	}
	if c.DataAbsentFor < 0 {
		return errors.New("data_absent_for must not be negative")
	}
	if c.EvaluationFailingFor < 0 || c.ForGracePeriod < 0 || c.ForOutageTolerance < 0 {
		return errors.New("evaluation_failing_for, for_grace_period and for_outage_tolerance must not be negative")
	}
	return nil
}

// TierOverrides are the configured tiers as the SLO engine takes them:
// rules.tiers for every SLO, rules.slos.<id>.tiers for one (disabled tiers
// left out). Unset lists keep the engine's defaults.
func (c RulesConfig) TierOverrides() sloengine.TierOverrides {
	specs := func(cfgs []TierConfig) []sloengine.TierSpec {
		if cfgs == nil {
			return nil
		}
		out := []sloengine.TierSpec{}
		for _, t := range cfgs {
			if !t.Disabled {
				out = append(out, sloengine.TierSpec{Name: t.Name, Severity: t.Severity, LongWindow: t.Long, ShortWindow: t.Short,
					BudgetPercent: t.BudgetPercent, Factor: t.Factor})
			}
		}
		return out
	}
	o := sloengine.TierOverrides{Default: specs(c.Tiers)}
	for id, s := range c.SLOs {
		if s.Tiers != nil {
			if o.SLOs == nil {
				o.SLOs = map[string][]sloengine.TierSpec{}
			}
			o.SLOs[id] = specs(s.Tiers)
		}
	}
	return o
}

// lifecycle returns the configured for and keep_firing_for of the tier
// named name of the SLO id: from rules.slos.<id>.tiers, else rules.tiers.
func (c RulesConfig) lifecycle(id, name string) (forDur, keepFor time.Duration) {
	cfgs := c.Tiers
	if per, ok := c.SLOs[id]; ok && per.Tiers != nil {
		cfgs = per.Tiers
	}
	for _, t := range cfgs {
		if t.Name == name {
			return t.For, t.KeepFiringFor
		}
	}
	return 0, 0
}

// Alert names of SLO rules.
const (
	AlertBurnRate        = "SLOErrorBudgetBurn"
	AlertBudgetExhausted = "SLOErrorBudgetExhausted"
	AlertDataAbsent      = "SLODataAbsent"
	AlertEvaluationFails = "SLOEvaluationFailing"
)

// ruleEvaluationFailing is the rule behind AlertEvaluationFails.
const ruleEvaluationFailing = "evaluation_failing"

// RuleResendDelay is Prometheus's resend delay: a firing rule alert's end
// time is 4 × max(RuleResendDelay, evaluation interval) ahead, so that it
// outlives a few missed evaluations (a slow cycle, a restart) rather than
// resolving, and re-paging, at the first.
const RuleResendDelay = time.Minute

// Rule alert states, as Prometheus names them.
const (
	StateInactive = "inactive"
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// ruleAlert is the lifecycle of one alert of one rule.
type ruleAlert struct {
	rule        string
	labels      model.LabelSet
	annotations model.LabelSet
	state       string
	activeAt    time.Time
	firedAt     time.Time
	lastTrueAt  time.Time
	resolvedAt  time.Time
	// forDur and keepFor are the rule's, remembered for the next evaluation.
	forDur, keepFor time.Duration
	// lastSeen is when the rule was last evaluated; an alert whose SLO has
	// been gone for vanishAfter resolves.
	lastSeen time.Time
	// restore marks an alert loaded at start whose pending time is still
	// to be adjusted for the downtime (restoreFor).
	restore bool
	// impactAt is when the impact behind a burn-rate alert began: the
	// start of its tier's burn run when the alert became active (zero for
	// other rules). It becomes the impact_started_at annotation.
	impactAt time.Time
}

// AnnotationImpactStarted is the annotation of a firing burn-rate alert
// that says when its SLO started burning (RFC 3339, UTC): the first
// evaluation of the run of evaluations, ending in the page, whose short
// window burned faster than the budget allows. Incidents take it as their
// impact start, so detection time and the budget an incident consumed
// include the burn before the page.
const AnnotationImpactStarted = "impact_started_at"

// burnRun is a run of consecutive evaluations of one tier of one SLO whose
// short window burned above min(1, factor): faster than the budget allows
// (or than the tier fires at, for a tier whose factor is below 1). start is
// its first evaluation, last its newest. A short window reacts within
// minutes, so for a burn that starts at once (a constant error ratio from
// t0) the run starts within an evaluation of t0, while the page waits for
// the long window: F x budget / ratio x long window later.
type burnRun struct {
	start, last time.Time
	// saved is the last saved with the run: a run under way is saved at
	// most every runSaveEvery, which a restart's gap check can afford.
	saved time.Time
}

// runSaveEvery is how often a run under way saves its newest evaluation.
const runSaveEvery = time.Minute

type runKey struct{ slo, tier string }

// vanishAfter is how long an SLO may be missing from the burn source
// before its alerts resolve. The grace keeps a restart (the SLO engine has
// not evaluated yet) or a brief outage of the source from resolving, and
// then re-paging, alerts that are still firing.
const vanishAfter = 10 * time.Minute

// ruleEvaluator evaluates SLO alert rules at fixed instants and keeps their
// state in SQLite, so that a restart neither re-pends a firing alert nor
// forgets one.
type ruleEvaluator struct {
	cfg      RulesConfig
	source   BurnSource
	store    *Store
	logger   *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	active map[model.Fingerprint]*ruleAlert
	// dirty holds alerts whose last change could not be saved: they are
	// saved with the next evaluation's changes.
	dirty map[model.Fingerprint]bool
	// runs are the burn runs under way; runsDirty the ones (present or
	// ended) not saved yet.
	runs      map[runKey]*burnRun
	runsDirty map[runKey]bool
}

func newRuleEvaluator(ctx context.Context, cfg RulesConfig, src BurnSource, store *Store, logger *slog.Logger, interval time.Duration) (*ruleEvaluator, error) {
	e := &ruleEvaluator{cfg: cfg.withDefaults(), source: src, store: store, logger: logger, interval: interval,
		active: map[model.Fingerprint]*ruleAlert{}, dirty: map[model.Fingerprint]bool{},
		runs: map[runKey]*burnRun{}, runsDirty: map[runKey]bool{}}
	rows, err := store.db.QueryContext(ctx, `SELECT rule, labels, state, active_at, fired_at, last_true_at, resolved_at, impact_at FROM rule_alerts`)
	if err != nil {
		return nil, fmt.Errorf("load rule state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		ra := &ruleAlert{}
		var lbls string
		var a, f, l, r, i int64
		if err := rows.Scan(&ra.rule, &lbls, &ra.state, &a, &f, &l, &r, &i); err != nil {
			return nil, fmt.Errorf("load rule state: %w", err)
		}
		if err := json.Unmarshal([]byte(lbls), &ra.labels); err != nil {
			return nil, fmt.Errorf("load rule state: %w", err)
		}
		ra.activeAt, ra.firedAt, ra.lastTrueAt, ra.resolvedAt, ra.impactAt = fromMS(a), fromMS(f), fromMS(l), fromMS(r), fromMS(i)
		ra.restore = ra.state == StatePending
		e.active[ra.labels.Fingerprint()] = ra
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load rule state: %w", err)
	}
	if err := e.loadRuns(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// loadRuns reads the burn runs under way when the process stopped.
func (e *ruleEvaluator) loadRuns(ctx context.Context) error {
	rows, err := e.store.db.QueryContext(ctx, `SELECT slo, tier, started_at, last_at FROM burn_runs`)
	if err != nil {
		return fmt.Errorf("load burn runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k runKey
		var start, last int64
		if err := rows.Scan(&k.slo, &k.tier, &start, &last); err != nil {
			return fmt.Errorf("load burn runs: %w", err)
		}
		e.runs[k] = &burnRun{start: fromMS(start), last: fromMS(last), saved: fromMS(last)}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load burn runs: %w", err)
	}
	return nil
}

// trackRun advances the burn run of k with one evaluation at `at` and
// returns the run under way, nil when the short window is not burning.
// A run is not known to have lasted through a gap in the evaluations (a
// stop, an SLO missing from the source) longer than ForOutageTolerance,
// the tolerance pending alerts have: after one it starts over. Runs are
// saved when they start or end and, while they last, every runSaveEvery,
// so a restart overestimates its gap by at most that. The same
// evaluation seen twice (the rules run on their own interval as well as
// after each SLO evaluation) changes nothing.
func (e *ruleEvaluator) trackRun(k runKey, burning bool, at time.Time) *burnRun {
	r := e.runs[k]
	if !burning {
		if r != nil {
			delete(e.runs, k)
			e.runsDirty[k] = true
		}
		return nil
	}
	at = time.UnixMilli(at.UnixMilli()).UTC() // as stored, so a restart changes no annotation
	if r != nil && at.Sub(r.last) > e.cfg.ForOutageTolerance {
		r = nil
	}
	if r == nil {
		r = &burnRun{start: at, last: at}
		e.runs[k] = r
		e.runsDirty[k] = true
	}
	if at.After(r.last) {
		r.last = at
		if at.Sub(r.saved) >= runSaveEvery {
			e.runsDirty[k] = true
		}
	}
	return r
}

// forgetRuns drops runs not evaluated now (their SLO or tier is gone, or
// the SLO's evaluation fails) and not advanced for longer than
// ForOutageTolerance: trackRun would start them over anyway.
func (e *ruleEvaluator) forgetRuns(now time.Time, seen map[runKey]bool) {
	for k, r := range e.runs {
		if !seen[k] && now.Sub(r.last) > e.cfg.ForOutageTolerance {
			delete(e.runs, k)
			e.runsDirty[k] = true
		}
	}
}

// condition is one rule instance evaluated at one instant.
type condition struct {
	slo         string
	rule        string
	labels      model.LabelSet
	annotations model.LabelSet
	active      bool
	forDur      time.Duration
	keepFor     time.Duration
	stale       bool
	// tracked marks a burn-rate rule, whose tier's burn run is tracked:
	// burning is whether its short window burned above min(1, factor) at
	// measuredAt.
	tracked    bool
	burning    bool
	measuredAt time.Time
}

// conditions evaluates every rule of every SLO at now.
func (e *ruleEvaluator) conditions(burns []SLOBurn, now time.Time) []condition {
	var out []condition
	for _, b := range burns {
		per := e.cfg.SLOs[b.ID]
		disabled := map[string]bool{}
		for _, d := range per.Disable {
			disabled[d] = true
		}
		base := sloLabels(b)
		for _, t := range b.Tiers {
			if disabled[t.Name] {
				continue
			}
			long, short := b.Windows[t.LongWindow], b.Windows[t.ShortWindow]
			window := tierWindow(t.Tier)
			ls := base.Clone()
			ls[model.AlertNameLabel] = AlertBurnRate
			ls["severity"], ls["sloth_severity"] = model.LabelValue(t.Severity), model.LabelValue(t.Severity)
			ls["tier"], ls["window"] = model.LabelValue(t.Name), model.LabelValue(window)
			ann := sloAnnotations(b)
			ann["summary"] = model.LabelValue(fmt.Sprintf("%s is burning its error budget %.1fx too fast (%s, %s)",
				sloTitle(b), long.BurnRate, t.Severity, window))
			ann["description"] = model.LabelValue(fmt.Sprintf(
				"Burn rate %s over %s and %s over %s, above %s (%.3g%% of the %s budget in %s). Budget remaining: %s.",
				fmtRate(long.BurnRate), promDuration(t.LongWindow), fmtRate(short.BurnRate), promDuration(t.ShortWindow),
				fmtRate(t.Factor), t.Factor*float64(t.LongWindow)/float64(b.Period)*100, promDuration(b.Period), promDuration(t.LongWindow),
				fmtPercent(b.BudgetRemaining)))
			ann["burn_rate_"+model.LabelName(promDuration(t.LongWindow))] = model.LabelValue(fmtRate(long.BurnRate))
			ann["burn_rate_"+model.LabelName(promDuration(t.ShortWindow))] = model.LabelValue(fmtRate(short.BurnRate))
			ann["burn_rate_threshold"] = model.LabelValue(fmtRate(t.Factor))
			// The engine decided whether the tier fires; the rule only
			// gives it a lifecycle.
			forDur, keepFor := e.cfg.lifecycle(b.ID, t.Name)
			at := b.EvaluatedAt
			if at.IsZero() {
				at = now
			}
			out = append(out, condition{slo: b.ID, rule: t.Name, labels: ls, annotations: ann, active: t.Firing, forDur: forDur, keepFor: keepFor, stale: b.Stale,
				tracked: true, burning: short.BurnRate > min(1, t.Factor), measuredAt: at})
		}
		if e.cfg.BudgetExhausted && !disabled["budget_exhausted"] {
			ls := base.Clone()
			ls[model.AlertNameLabel] = AlertBudgetExhausted
			ls["severity"], ls["sloth_severity"] = "ticket", "ticket"
			ann := sloAnnotations(b)
			ann["summary"] = model.LabelValue(fmt.Sprintf("%s has spent its error budget for the last %s", sloTitle(b), promDuration(b.Period)))
			out = append(out, condition{slo: b.ID, rule: "budget_exhausted", labels: ls, annotations: ann,
				active: !math.IsNaN(b.BudgetRemaining) && b.BudgetRemaining <= 0, stale: b.Stale})
		}
		if e.cfg.DataAbsentFor > 0 && !disabled["data_absent"] {
			ls := base.Clone()
			ls[model.AlertNameLabel] = AlertDataAbsent
			ls["severity"], ls["sloth_severity"] = "ticket", "ticket"
			ann := sloAnnotations(b)
			ann["summary"] = model.LabelValue(fmt.Sprintf("%s has had no SLI data for %s: its alerts cannot fire", sloTitle(b), promDuration(e.cfg.DataAbsentFor)))
			// With a sample time, absent means none for DataAbsentFor; without
			// one, no series in the shortest window, held for DataAbsentFor.
			// Either way only for an SLI that has had traffic: no traffic
			// (an idle night, a fresh install) is not absent data.
			var absent bool
			var forDur time.Duration
			if b.LastData.IsZero() {
				absent, forDur = b.HadTraffic && seriesAbsent(b), e.cfg.DataAbsentFor
			} else {
				absent = now.Sub(b.LastData) >= e.cfg.DataAbsentFor
			}
			out = append(out, condition{slo: b.ID, rule: "data_absent", labels: ls, annotations: ann, active: absent, forDur: forDur, stale: b.Stale})
		}
		if !disabled[ruleEvaluationFailing] {
			ls := base.Clone()
			ls[model.AlertNameLabel] = AlertEvaluationFails
			ls["severity"], ls["sloth_severity"] = "ticket", "ticket"
			ann := sloAnnotations(b)
			ann["summary"] = model.LabelValue(fmt.Sprintf("%s cannot be evaluated: its alerts cannot fire", sloTitle(b)))
			if b.Error != "" {
				ann["description"] = model.LabelValue(b.Error)
			}
			out = append(out, condition{slo: b.ID, rule: ruleEvaluationFailing, labels: ls, annotations: ann,
				active: b.Stale, forDur: e.cfg.EvaluationFailingFor})
		}
	}
	return out
}

// seriesAbsent reports whether the SLI's series are missing from the
// shortest window.
func seriesAbsent(b SLOBurn) bool {
	if len(b.Windows) == 0 {
		return true
	}
	var shortest time.Duration
	for w := range b.Windows {
		if shortest == 0 || w < shortest {
			shortest = w
		}
	}
	return b.Windows[shortest].NoData
}

func sloTitle(b SLOBurn) string {
	return fmt.Sprintf("SLO %s (%s of %s)", b.ID, strconv.FormatFloat(b.Objective*100, 'g', -1, 64)+"%", promDuration(b.Period))
}

func sloLabels(b SLOBurn) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range b.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	ls["slo"], ls["sloth_id"] = model.LabelValue(b.ID), model.LabelValue(b.ID)
	if b.Service != "" {
		ls["service"], ls["sloth_service"] = model.LabelValue(b.Service), model.LabelValue(b.Service)
	}
	if b.Name != "" {
		ls["sloth_slo"] = model.LabelValue(b.Name)
	}
	return ls
}

func sloAnnotations(b SLOBurn) model.LabelSet {
	ann := model.LabelSet{
		"objective":        model.LabelValue(strconv.FormatFloat(b.Objective*100, 'g', -1, 64) + "%"),
		"budget_remaining": model.LabelValue(fmtPercent(b.BudgetRemaining)),
	}
	if b.RunbookURL != "" {
		ann["runbook_url"] = model.LabelValue(b.RunbookURL)
	}
	if b.DashboardURL != "" {
		ann["dashboard_url"] = model.LabelValue(b.DashboardURL)
	}
	if len(b.ExampleTraceIDs) > 0 {
		ids := b.ExampleTraceIDs
		if len(ids) > 5 {
			ids = ids[:5]
		}
		ann["trace_ids"] = model.LabelValue(strings.Join(ids, ","))
	}
	return ann
}

func fmtRate(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "x"
}

func fmtPercent(v float64) string {
	if math.IsNaN(v) {
		return "unknown"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}

// evaluate runs every rule at now, advances each alert's lifecycle, saves
// the changes and returns the alerts to put: firing ones with an end time
// 4 × max(RuleResendDelay, interval) ahead (re-sent each evaluation, as
// Prometheus does) and resolved ones for 15 minutes after they resolved.
// A failed save is returned, but the advanced state is kept, returned and
// saved again with the next evaluation.
func (e *ruleEvaluator) evaluate(ctx context.Context, now time.Time) ([]*Alert, error) {
	if e.source == nil {
		return nil, nil
	}
	conds := e.conditions(e.source.Burns(), now)
	// Evaluation failures first: once an SLO's fires, its other alerts no
	// longer wait for numbers.
	sort.SliceStable(conds, func(i, j int) bool {
		return conds[i].rule == ruleEvaluationFailing && conds[j].rule != ruleEvaluationFailing
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[model.Fingerprint]bool{}
	changed := map[model.Fingerprint]*ruleAlert{}
	failing := map[string]bool{}
	tracked := map[runKey]bool{}
	for _, c := range conds {
		fp := c.labels.Fingerprint()
		seen[fp] = true
		ra := e.active[fp]
		if ra != nil {
			ra.lastSeen = now
		}
		if c.stale && failing[c.slo] {
			// Failing for EvaluationFailingFor: stop holding the alert.
			// Its numbers are still unknown: the burn run stays as it is.
			c.stale, c.active, c.tracked = false, false, false
		}
		if c.stale {
			// No numbers this time: neither start nor end anything.
			continue
		}
		var run *burnRun
		if c.tracked {
			tracked[runKey{c.slo, c.rule}] = true
			run = e.trackRun(runKey{c.slo, c.rule}, c.burning, c.measuredAt)
		}
		if ra == nil {
			ra = &ruleAlert{rule: c.rule, labels: c.labels, state: StateInactive}
		}
		ra.annotations, ra.forDur, ra.keepFor = c.annotations, c.forDur, c.keepFor
		before := *ra
		if ra.restore {
			ra.restore = false
			e.restoreFor(ra, now)
		}
		advance(ra, c.active, now)
		if c.tracked && !isActive(before.state) && isActive(ra.state) {
			// Activated: the impact began when the burn did. A firing tier's
			// short window burns above its factor, so a run is under way;
			// should a burn source say otherwise, the impact starts now.
			ra.impactAt = ra.activeAt
			if run != nil && run.start.Before(ra.impactAt) {
				ra.impactAt = run.start
			}
		}
		if c.rule == ruleEvaluationFailing && ra.state == StateFiring {
			failing[c.slo] = true
		}
		if ra.state == StateInactive {
			if e.active[fp] != nil {
				delete(e.active, fp)
				changed[fp] = ra
			}
			continue
		}
		e.active[fp] = ra
		if before.state != ra.state || !before.lastTrueAt.Equal(ra.lastTrueAt) || !before.activeAt.Equal(ra.activeAt) {
			changed[fp] = ra
		}
	}
	e.forgetRuns(now, tracked)
	// Rules that vanished (SLO deleted, tier disabled) resolve once they
	// have been gone for vanishAfter.
	for fp, ra := range e.active {
		if seen[fp] {
			continue
		}
		if ra.lastSeen.IsZero() {
			ra.lastSeen = now // loaded at start: the grace starts now
		}
		if now.Sub(ra.lastSeen) < vanishAfter {
			continue
		}
		if ra.state == StateFiring {
			ra.state, ra.resolvedAt = StateResolved, now
		} else if ra.state == StatePending || now.Sub(ra.resolvedAt) > 15*time.Minute {
			ra.state = StateInactive
			delete(e.active, fp)
		}
		changed[fp] = ra
	}
	var out []*Alert
	for fp, ra := range e.active {
		ann := ra.annotations
		if !ra.impactAt.IsZero() {
			ann = ann.Clone()
			ann[AnnotationImpactStarted] = model.LabelValue(ra.impactAt.UTC().Format(time.RFC3339Nano))
		}
		switch ra.state {
		case StateFiring:
			out = append(out, &Alert{Labels: ra.labels, Annotations: ann, StartsAt: ra.activeAt,
				EndsAt: now.Add(4 * max(RuleResendDelay, e.interval)), UpdatedAt: now})
		case StateResolved:
			out = append(out, &Alert{Labels: ra.labels, Annotations: ann, StartsAt: ra.activeAt,
				EndsAt: ra.resolvedAt, UpdatedAt: now})
			if now.Sub(ra.resolvedAt) > 15*time.Minute {
				delete(e.active, fp)
				changed[fp] = &ruleAlert{state: StateInactive}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint() < out[j].Fingerprint() })
	return out, e.saveChanges(ctx, changed)
}

// alertSeries are the label sets of the ALERTS series of the pending and
// firing rule alerts.
func (e *ruleEvaluator) alertSeries() []promlabels.Labels {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []promlabels.Labels
	for _, ra := range e.active {
		if ra.state != StatePending && ra.state != StateFiring {
			continue
		}
		b := promlabels.NewBuilder(promlabels.EmptyLabels())
		for k, v := range ra.labels {
			b.Set(string(k), string(v))
		}
		b.Set(promlabels.MetricName, "ALERTS")
		b.Set("alertstate", ra.state)
		out = append(out, b.Labels())
	}
	return out
}

// saveChanges saves this evaluation's changes and those a failed save left
// over. On failure every one of them is kept for the next evaluation.
func (e *ruleEvaluator) saveChanges(ctx context.Context, changed map[model.Fingerprint]*ruleAlert) error {
	for fp := range e.dirty {
		if _, ok := changed[fp]; ok {
			continue
		}
		if ra := e.active[fp]; ra != nil {
			changed[fp] = ra
		} else {
			changed[fp] = &ruleAlert{state: StateInactive}
		}
	}
	if err := e.save(ctx, changed); err != nil {
		for fp := range changed {
			e.dirty[fp] = true
		}
		return fmt.Errorf("%w (%d rule alerts kept in memory, saved with the next evaluation)", err, len(changed))
	}
	clear(e.dirty)
	for k := range e.runsDirty {
		if r := e.runs[k]; r != nil {
			r.saved = r.last
		}
	}
	clear(e.runsDirty)
	return nil
}

// restoreFor adjusts the pending time of an alert loaded at start, as
// Prometheus's RestoreForState does: the time the process was down does
// not count towards `for`, and an alert whose `for` was about to elapse
// waits ForGracePeriod, so that a restart neither fires alerts early nor
// at once. Rules whose `for` is shorter than the grace period, and alerts
// down longer than ForOutageTolerance, start their pending time over.
func (e *ruleEvaluator) restoreFor(ra *ruleAlert, now time.Time) {
	if ra.state != StatePending {
		return
	}
	downAt := ra.lastTrueAt // pending alerts are true at every evaluation
	if downAt.IsZero() || downAt.Before(ra.activeAt) {
		downAt = ra.activeAt
	}
	grace := e.cfg.ForGracePeriod
	if ra.forDur < grace || now.Sub(downAt) > e.cfg.ForOutageTolerance {
		ra.activeAt = now
		return
	}
	remaining := ra.forDur - downAt.Sub(ra.activeAt)
	switch {
	case remaining <= 0:
		// It was due to fire before the stop.
	case remaining < grace:
		ra.activeAt = now.Add(grace - ra.forDur)
	default:
		ra.activeAt = ra.activeAt.Add(now.Sub(downAt))
	}
}

// isActive reports whether an alert in state s is pending or firing.
func isActive(s string) bool { return s == StatePending || s == StateFiring }

// advance moves one alert through inactive -> pending -> firing ->
// resolved, as Prometheus's alerting rules do.
func advance(ra *ruleAlert, active bool, now time.Time) {
	if active {
		ra.lastTrueAt = now
		switch ra.state {
		case StateInactive, StateResolved:
			ra.state, ra.activeAt, ra.firedAt, ra.resolvedAt = StatePending, now, time.Time{}, time.Time{}
			if ra.forDur == 0 {
				ra.state, ra.firedAt = StateFiring, now
			}
		case StatePending:
			if now.Sub(ra.activeAt) >= ra.forDur {
				ra.state, ra.firedAt = StateFiring, now
			}
		}
		return
	}
	switch ra.state {
	case StatePending:
		ra.state = StateInactive
	case StateFiring:
		if ra.keepFor > 0 && now.Sub(ra.lastTrueAt) < ra.keepFor {
			return
		}
		ra.state, ra.resolvedAt = StateResolved, now
	}
}

func (e *ruleEvaluator) save(ctx context.Context, changed map[model.Fingerprint]*ruleAlert) error {
	if len(changed) == 0 && len(e.runsDirty) == 0 {
		return nil
	}
	return e.store.db.InTx(ctx, func(tx *sql.Tx) error {
		for k := range e.runsDirty {
			var err error
			if r := e.runs[k]; r != nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO burn_runs(slo, tier, started_at, last_at) VALUES (?, ?, ?, ?)
					ON CONFLICT(slo, tier) DO UPDATE SET started_at=excluded.started_at, last_at=excluded.last_at`, k.slo, k.tier, ms(r.start), ms(r.last))
			} else {
				_, err = tx.ExecContext(ctx, `DELETE FROM burn_runs WHERE slo=? AND tier=?`, k.slo, k.tier)
			}
			if err != nil {
				return fmt.Errorf("save burn runs: %w", err)
			}
		}
		for fp, ra := range changed {
			if ra.state == StateInactive {
				if _, err := tx.ExecContext(ctx, `DELETE FROM rule_alerts WHERE fingerprint=?`, fp.String()); err != nil {
					return fmt.Errorf("save rule state: %w", err)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO rule_alerts(fingerprint, rule, labels, state, active_at, fired_at, last_true_at, resolved_at, impact_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fingerprint) DO UPDATE SET state=excluded.state, active_at=excluded.active_at,
				fired_at=excluded.fired_at, last_true_at=excluded.last_true_at, resolved_at=excluded.resolved_at, impact_at=excluded.impact_at`,
				fp.String(), ra.rule, mustJSON(ra.labels), ra.state, ms(ra.activeAt), ms(ra.firedAt), ms(ra.lastTrueAt), ms(ra.resolvedAt), ms(ra.impactAt)); err != nil {
				return fmt.Errorf("save rule state: %w", err)
			}
		}
		return nil
	})
}

// FiringPages returns, by SLO ID, the alert names of the SLO's firing rule
// alerts of severity page (sloth_severity, which an SLO's own labels do not
// override): what the deploy gate blocks on.
func (m *Manager) FiringPages() map[string][]string {
	m.rules.mu.Lock()
	defer m.rules.mu.Unlock()
	out := map[string][]string{}
	for _, ra := range m.rules.active {
		if ra.state != StateFiring || ra.labels["sloth_severity"] != "page" {
			continue
		}
		id := string(ra.labels["slo"])
		out[id] = append(out[id], string(ra.labels[model.AlertNameLabel]))
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}

// RuleStates returns the lifecycle state of every rule alert that is not
// inactive, by alert labels.
func (m *Manager) RuleStates() map[string]string {
	m.rules.mu.Lock()
	defer m.rules.mu.Unlock()
	out := map[string]string{}
	for _, ra := range m.rules.active {
		out[ra.labels.String()] = ra.state
	}
	return out
}
