// Package sloengine turns SLO specifications into error budgets, burn rates
// and exhaustion forecasts, evaluated against a Prometheus-compatible query
// backend (the embedded TSDB or an external Prometheus), written back under
// Sloth's series names and exported as Prometheus rule files.
//
// Every window SLI is the same PromQL expression that the exported recording
// rules evaluate, so a Prometheus running `burnrate slo rules` output agrees
// with the engine. The period SLI is built from 5-minute slices kept in
// memory: each cycle computes only the slices that ended since the last
// one (and those late samples may still change), so a 30-day window never
// rescans 30 days of samples on the embedded TSDB.
package sloengine

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ErrInvalidSpec is returned (wrapped, joined) when an SLO file does not
// validate. Each joined error is a *SpecError naming file, line and field.
var ErrInvalidSpec = errors.New("invalid SLO spec")

// ErrNotFound is returned when an SLO ID is unknown.
var ErrNotFound = errors.New("SLO not found")

// SpecError is one problem in one SLO file.
type SpecError struct {
	File   string
	Line   int
	Field  string
	Reason string
}

func (e *SpecError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Reason)
}

// Unwrap lets callers test errors.Is(err, ErrInvalidSpec).
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// SLIKind names how an SLI is measured.
type SLIKind string

// SLI kinds. Events and raw come from Sloth; latency, native latency and
// boolean gauge follow Pyrra's indicator kinds.
const (
	KindEvents        SLIKind = "events"
	KindRaw           SLIKind = "raw"
	KindLatency       SLIKind = "latency"
	KindLatencyNative SLIKind = "latency_native"
	KindBoolGauge     SLIKind = "bool_gauge"
)

// BudgetingMethod is OpenSLO's budgetingMethod.
type BudgetingMethod string

// Budgeting methods (OpenSLO v1).
const (
	Occurrences     BudgetingMethod = "Occurrences"
	Timeslices      BudgetingMethod = "Timeslices"
	RatioTimeslices BudgetingMethod = "RatioTimeslices"
)

// SLI is a validated indicator. Queries are PromQL with Sloth's
// {{.window}} placeholder.
type SLI struct {
	Kind            SLIKind
	ErrorQuery      string
	GoodQuery       string
	TotalQuery      string
	ErrorRatioQuery string
	// Metric and Selector name the histogram or gauge for latency and
	// bool_gauge kinds; Threshold is the latency bound in seconds.
	Metric    string
	Selector  string
	Threshold float64
	// Le is the exact `le` label value of the threshold bucket.
	Le string
}

// Tier is one multi-window multi-burn-rate alert condition.
type Tier struct {
	// Name identifies the tier in alerts (their `tier` label): page-fast,
	// page-slow, ticket-fast, ticket-slow for the default windows, else
	// severity-long/short ("page-2h/10m").
	Name        string        `json:"name"`
	Severity    string        `json:"severity"`
	LongWindow  time.Duration `json:"-"`
	ShortWindow time.Duration `json:"-"`
	// BudgetPercent is the share of the period's budget spent when the tier
	// fires on its long window.
	BudgetPercent float64 `json:"budget_percent"`
	// Factor is the burn-rate threshold: BudgetPercent/100 * period / long.
	Factor float64 `json:"factor"`
}

// Calendar is a calendar-aligned period.
type Calendar struct {
	Unit     string // week, month or quarter
	Location *time.Location
}

// SLO is one validated service level objective.
type SLO struct {
	// ID is "<service>-<name>", Sloth's sloth_id.
	ID          string
	Service     string
	Name        string
	Description string
	// Objective is a ratio in (0, 1): 99.9% is 0.999.
	Objective float64
	Labels    map[string]string
	SLI       SLI
	// Period is the rolling window length, or the nominal length of a
	// calendar period (used for tier factors and rule export).
	Period          time.Duration
	Calendar        *Calendar
	Budgeting       BudgetingMethod
	TimeSliceTarget float64
	// MinEvents holds back burn-rate alerts on windows with fewer events.
	MinEvents float64
	// Tiers are the burn-rate tiers the engine evaluates. OwnTiers is true
	// when the spec lists them (Sloth-style alerting.tiers, OpenSLO alert
	// policies); otherwise they are the defaults, which the engine's
	// TierOverrides (alerting.rules.tiers) may replace.
	Tiers    []Tier
	OwnTiers bool
	// disabledSeverity holds the severities the spec turned off, which a
	// tier override does not bring back.
	disabledSeverity map[string]bool
	// AlertName and alert labels/annotations (Sloth's alerting section).
	AlertName        string
	AlertLabels      map[string]string
	AlertAnnotations map[string]string
	PageLabels       map[string]string
	TicketLabels     map[string]string

	File string
	Line int
}

// ErrorBudget is 1 - objective, without the float noise of the
// subtraction (1 - 0.999 is 0.0010000000000000009): budgets are printed in
// rules, series labels and the API.
func (s *SLO) ErrorBudget() float64 { return round15(1 - s.Objective) }

// round15 rounds x to 15 significant digits, all a float64 holds exactly:
// what a person wrote (99.9 / 100, 1 - 0.999) comes back as written.
func round15(x float64) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 15, 64), 64)
	if err != nil {
		return x
	}
	return v
}

// Windows are the SLI windows evaluated for every SLO, as in Sloth.
var Windows = []time.Duration{
	5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour,
}

// SliceWidth is the resolution of the period SLI: the period is the
// sequence of 5-minute slices ending inside it.
const SliceWidth = 5 * time.Minute

// FormatWindow writes a duration as PromQL accepts it, whole days in days
// (5m, 1h, 3d, 28d, 30d) as Sloth names its series.
func FormatWindow(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return model.Duration(d).String()
}

// defaultTierSpecs are REFERENCE.md's tiers, as budget percentages so they
// scale with the period (14.4, 6, 3 and 1 for 30 days). They are the one
// definition of the default tiers: alerting uses the engine's tiers.
var defaultTierSpecs = []TierSpec{
	{Name: "page-fast", Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetPercent: 2},
	{Name: "page-slow", Severity: "page", LongWindow: 6 * time.Hour, ShortWindow: 30 * time.Minute, BudgetPercent: 5},
	{Name: "ticket-fast", Severity: "ticket", LongWindow: 24 * time.Hour, ShortWindow: 2 * time.Hour, BudgetPercent: 10},
	{Name: "ticket-slow", Severity: "ticket", LongWindow: 72 * time.Hour, ShortWindow: 6 * time.Hour, BudgetPercent: 10},
}

// DefaultTiers returns the default tiers scaled for period: the factor is
// percent/100 * period / long window.
func DefaultTiers(period time.Duration) []Tier {
	return TiersFor(defaultTierSpecs, period)
}

// DefaultTierSpecs returns the default tiers unscaled, for configuration
// defaults and documentation.
func DefaultTierSpecs() []TierSpec { return append([]TierSpec(nil), defaultTierSpecs...) }

func newTier(sev string, long, short time.Duration, percent float64, period time.Duration) Tier {
	f := percent / 100 * float64(period) / float64(long)
	// Round away float noise (14.399999999999999) so rules read as the
	// workbook's numbers.
	f = math.Round(f*1e9) / 1e9
	return Tier{Name: tierName(sev, long, short), Severity: sev, LongWindow: long, ShortWindow: short, BudgetPercent: percent, Factor: f}
}

// tierName names a tier as the default with the same severity and windows
// is named, else severity-long/short.
func tierName(sev string, long, short time.Duration) string {
	for _, d := range defaultTierSpecs {
		if d.Severity == sev && d.LongWindow == long && d.ShortWindow == short {
			return d.Name
		}
	}
	return sev + "-" + FormatWindow(long) + "/" + FormatWindow(short)
}

var idRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)

// windowFor reports whether d is one of the evaluated windows.
func windowFor(d time.Duration) bool {
	for _, w := range Windows {
		if w == d {
			return true
		}
	}
	return false
}

// windowNames lists the evaluated windows for error messages.
func windowNames() string {
	s := make([]string, len(Windows))
	for i, w := range Windows {
		s[i] = FormatWindow(w)
	}
	return strings.Join(s, ", ")
}

// FormatLe writes a bucket bound as Prometheus client libraries and the OTLP
// translator write the le label (0.25, 1, 2.5, +Inf).
func FormatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// OtelHTTPBuckets are the default explicit bucket bounds of otelhttp's
// http.server.request.duration histogram (seconds).
var OtelHTTPBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
