package deploy

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/internal/yamlfile"
)

// ErrInvalidPolicy is returned (wrapped, with file, line and key) when a
// policy file does not load.
var ErrInvalidPolicy = errors.New("invalid deploy policy")

// Outcome is what a rule that is not met does to the decision.
type Outcome string

// Decisions, from best to worst.
const (
	Pass Outcome = "pass"
	Warn Outcome = "warn"
	Fail Outcome = "fail"
)

func (o Outcome) rank() int {
	switch o {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

func worse(a, b Outcome) Outcome {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Policy is the error-budget policy of one service: when a deploy may go.
type Policy struct {
	// Service is the service it governs; "*" is the default policy for
	// services without their own.
	Service string
	// Source is "file:line" of the policy, or "default".
	Source string
	// MinBudgetRemaining fails the gate when any SLO of the service has
	// less budget left (a fraction of the period's budget: 0.25 = 25%).
	MinBudgetRemaining float64
	// WarnBudgetRemaining warns below this fraction. 0 turns it off.
	WarnBudgetRemaining float64
	// MaxBurnRate fails the gate when a window's burn rate exceeds it.
	MaxBurnRate map[time.Duration]float64
	// WarnBurnRate warns when a window's burn rate exceeds it.
	WarnBurnRate map[time.Duration]float64
	// FreezeOnPage fails the gate while a page alert of the service fires.
	FreezeOnPage bool
	// FreezeOnIncident lists the severities (SEV1...) of open incidents
	// that freeze deploys.
	FreezeOnIncident []string
	// FreezeWindows are calendar windows in which deploys fail.
	FreezeWindows []FreezeWindow
	// MinCoverage is the share of the period the data must cover for the
	// budget to be trusted; below it the gate answers OnLowCoverage.
	MinCoverage   float64
	OnLowCoverage Outcome
	// MaxDataAge is how old the newest evaluation may be; older data, or
	// an SLO whose evaluation fails, answers OnStale.
	MaxDataAge time.Duration
	OnStale    Outcome
	// Exceptions are the kinds of exception that may override a failed
	// decision (the workbook's "P0 fixes and security fixes").
	Exceptions []string

	// doc and key place the policy in its file, for errors found when it
	// is checked against the SLOs (CheckPolicies).
	doc *yamlfile.Doc
	key string
}

// DefaultPolicy applies to services without a policy of their own: deploys
// stop when the budget is spent or a page fires, and stale data fails.
func DefaultPolicy() Policy {
	return Policy{
		Service:            "*",
		Source:             "default",
		MinBudgetRemaining: 0,
		FreezeOnPage:       true,
		FreezeOnIncident:   []string{"SEV1", "SEV2"},
		OnLowCoverage:      Warn,
		MaxDataAge:         5 * time.Minute,
		OnStale:            Fail,
		Exceptions:         []string{"p0", "security"},
	}
}

// Allows reports whether kind is one of the policy's exception kinds.
func (p Policy) Allows(kind string) bool {
	for _, k := range p.Exceptions {
		if strings.EqualFold(k, kind) {
			return true
		}
	}
	return false
}

// Policies are the loaded policies by service.
type Policies struct {
	byService map[string]Policy
	def       Policy
}

// NewPolicies indexes ps; a policy for "*" replaces the built-in default.
func NewPolicies(ps ...Policy) *Policies {
	out := &Policies{byService: map[string]Policy{}, def: DefaultPolicy()}
	for _, p := range ps {
		if p.Service == "*" {
			out.def = p
			continue
		}
		out.byService[p.Service] = p
	}
	return out
}

// For returns the policy of service.
func (ps *Policies) For(service string) Policy {
	if p, ok := ps.byService[service]; ok {
		return p
	}
	p := ps.def
	return p
}

// Services lists the services with a policy of their own.
func (ps *Policies) Services() []string {
	out := make([]string, 0, len(ps.byService))
	for s := range ps.byService {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Ratio is a fraction written as 0.25 or "25%".
type Ratio float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(v) {
		return fmt.Errorf("line %d: %q is not a ratio (0.25) or a percentage (25%%)", n.Line, n.Value)
	}
	if pct {
		v /= 100
	}
	*r = Ratio(v)
	return nil
}

// Duration is a Prometheus duration ("5m", "1h", "3d").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (5m, 1h, 3d): %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

type policyFile struct {
	Policies []policySpec `yaml:"policies"`
}

type policySpec struct {
	Service             string             `yaml:"service"`
	MinBudgetRemaining  *Ratio             `yaml:"min_budget_remaining"`
	WarnBudgetRemaining *Ratio             `yaml:"warn_budget_remaining"`
	MaxBurnRate         map[string]float64 `yaml:"max_burn_rate"`
	WarnBurnRate        map[string]float64 `yaml:"warn_burn_rate"`
	FreezeOnPage        *bool              `yaml:"freeze_on_page"`
	FreezeOnIncident    []string           `yaml:"freeze_on_incident"`
	FreezeWindows       []freezeSpec       `yaml:"freeze_windows"`
	MinCoverage         *Ratio             `yaml:"min_coverage"`
	OnLowCoverage       string             `yaml:"on_low_coverage"`
	MaxDataAge          *Duration          `yaml:"max_data_age"`
	OnStale             string             `yaml:"on_stale"`
	Exceptions          []string           `yaml:"exceptions"`
}

type freezeSpec struct {
	Name     string `yaml:"name"`
	TimeZone string `yaml:"timezone"`
	// Weekly windows: "Fri 16:00" to "Mon 08:00".
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// One-off windows: local date-times "2026-12-24 00:00".
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// windowKey finds the key of m that spells window w ("1h" or "60m").
func windowKey(m map[string]float64, w time.Duration) string {
	for k := range m {
		if d, err := model.ParseDuration(k); err == nil && time.Duration(d) == w {
			return k
		}
	}
	return model.Duration(w).String()
}

// CheckPolicies checks loaded policies against what the SLO engine
// evaluates: a policy must govern a service that has SLOs ("*" aside),
// and its burn-rate rules must name windows the engine evaluates (a rule
// on a window that never holds data would fail closed forever). Errors
// name the file, line and key.
func CheckPolicies(ps []Policy, services []string, windows []time.Duration) error {
	var errs []error
	errorf := func(p Policy, key, format string, args ...any) {
		if p.doc == nil {
			errs = append(errs, fmt.Errorf("%s: %s: %s", p.Source, key, fmt.Sprintf(format, args...)))
			return
		}
		errs = append(errs, p.doc.Errorf(p.key+"."+key, format, args...))
	}
	names := make([]string, len(windows))
	for i, w := range windows {
		names[i] = model.Duration(w).String()
	}
	for _, p := range ps {
		if p.Service != "*" && !slices.Contains(services, p.Service) {
			errorf(p, "service", "%q has no SLO (services with SLOs: %s)", p.Service, strings.Join(services, ", "))
		}
		for _, rule := range []struct {
			field  string
			limits map[time.Duration]float64
		}{{"max_burn_rate", p.MaxBurnRate}, {"warn_burn_rate", p.WarnBurnRate}} {
			for _, w := range slices.Sorted(maps.Keys(rule.limits)) {
				if !slices.Contains(windows, w) {
					errorf(p, rule.field+"."+model.Duration(w).String(), "the SLO engine does not evaluate a %s window (it evaluates %s)",
						model.Duration(w), strings.Join(names, ", "))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%w", ErrInvalidPolicy, errors.Join(errs...))
	}
	return nil
}

// LoadPolicies reads policy files (or directories of *.yml / *.yaml) and
// reports every problem with file, line and key. A service may have one
// policy across all files.
func LoadPolicies(paths []string) ([]Policy, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pat := range []string{"*.yml", "*.yaml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			files = append(files, m...)
		}
	}
	sort.Strings(files)
	var out []Policy
	var errs []error
	seen := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps, err := ParsePolicies(f, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range ps {
			if prev, ok := seen[p.Service]; ok {
				errs = append(errs, fmt.Errorf("%s: service %q already has a policy at %s", p.Source, p.Service, prev))
				continue
			}
			seen[p.Service] = p.Source
			out = append(out, p)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidPolicy, errors.Join(errs...))
	}
	return out, nil
}

// ParsePolicies parses one policy file; name is used in errors.
func ParsePolicies(name string, raw []byte) ([]Policy, error) {
	var pf policyFile
	doc, err := yamlfile.Decode(name, raw, &pf)
	if err != nil {
		return nil, err
	}
	if len(pf.Policies) == 0 {
		return nil, doc.Errorf("policies", "the file defines no policy")
	}
	var out []Policy
	var errs []error
	seen := map[string]bool{}
	for i, s := range pf.Policies {
		key := fmt.Sprintf("policies[%d]", i)
		p, perrs := s.build(doc, key)
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			continue
		}
		if seen[p.Service] {
			errs = append(errs, doc.Errorf(key+".service", "service %q has two policies in this file", p.Service))
			continue
		}
		seen[p.Service] = true
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s policySpec) build(doc *yamlfile.Doc, key string) (Policy, []error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, doc.Errorf(key+"."+field, format, args...))
	}
	p := DefaultPolicy()
	p.Service = strings.TrimSpace(s.Service)
	p.Source = fmt.Sprintf("%s:%d", doc.File, doc.Line(key))
	if p.Service == "" {
		bad("service", "required: the service this policy governs, or \"*\" for the default")
	}
	ratio := func(field string, r *Ratio, dst *float64) {
		if r == nil {
			return
		}
		if *r < 0 || *r > 1 {
			bad(field, "%g is outside 0..1 (write 0.25 or 25%%)", float64(*r))
			return
		}
		*dst = float64(*r)
	}
	ratio("min_budget_remaining", s.MinBudgetRemaining, &p.MinBudgetRemaining)
	ratio("warn_budget_remaining", s.WarnBudgetRemaining, &p.WarnBudgetRemaining)
	ratio("min_coverage", s.MinCoverage, &p.MinCoverage)
	if p.WarnBudgetRemaining != 0 && p.WarnBudgetRemaining < p.MinBudgetRemaining {
		bad("warn_budget_remaining", "%g is below min_budget_remaining %g: the warning would never show", p.WarnBudgetRemaining, p.MinBudgetRemaining)
	}
	burns := func(field string, m map[string]float64) map[time.Duration]float64 {
		out := map[time.Duration]float64{}
		for w, v := range m {
			d, err := model.ParseDuration(w)
			if err != nil || d <= 0 {
				bad(field+"."+w, "%q is not a window (5m, 1h, 6h, 1d, 3d)", w)
				continue
			}
			if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				bad(field+"."+w, "burn rate %g must be a positive number", v)
				continue
			}
			out[time.Duration(d)] = v
		}
		return out
	}
	p.MaxBurnRate = burns("max_burn_rate", s.MaxBurnRate)
	p.WarnBurnRate = burns("warn_burn_rate", s.WarnBurnRate)
	for w, warn := range p.WarnBurnRate {
		if max, ok := p.MaxBurnRate[w]; ok && warn >= max {
			bad("warn_burn_rate."+windowKey(s.WarnBurnRate, w), "%g is not below max_burn_rate %g for the same window: the warning would never show", warn, max)
		}
	}
	p.doc, p.key = doc, key
	if s.FreezeOnPage != nil {
		p.FreezeOnPage = *s.FreezeOnPage
	}
	if s.FreezeOnIncident != nil {
		p.FreezeOnIncident = nil
		for j, sev := range s.FreezeOnIncident {
			up := strings.ToUpper(strings.TrimSpace(sev))
			switch up {
			case "SEV1", "SEV2", "SEV3", "SEV4":
				p.FreezeOnIncident = append(p.FreezeOnIncident, up)
			default:
				bad(fmt.Sprintf("freeze_on_incident[%d]", j), "%q is not a severity (SEV1, SEV2, SEV3, SEV4)", sev)
			}
		}
	}
	outcome := func(field, v string, dst *Outcome) {
		switch Outcome(v) {
		case "":
		case Pass, Warn, Fail:
			*dst = Outcome(v)
		default:
			bad(field, "%q is not one of pass, warn, fail", v)
		}
	}
	outcome("on_low_coverage", s.OnLowCoverage, &p.OnLowCoverage)
	outcome("on_stale", s.OnStale, &p.OnStale)
	if p.OnStale == Pass {
		bad("on_stale", "stale data may warn or fail, never pass silently")
	}
	if s.MaxDataAge != nil {
		if *s.MaxDataAge <= 0 {
			bad("max_data_age", "must be positive")
		}
		p.MaxDataAge = time.Duration(*s.MaxDataAge)
	}
	if s.Exceptions != nil {
		p.Exceptions = nil
		for j, k := range s.Exceptions {
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "" {
				bad(fmt.Sprintf("exceptions[%d]", j), "must not be empty")
				continue
			}
			p.Exceptions = append(p.Exceptions, k)
		}
	}
	for j, fs := range s.FreezeWindows {
		fw, err := fs.build()
		if err != nil {
			bad(fmt.Sprintf("freeze_windows[%d].%s", j, err.field), "%s", err.reason)
			continue
		}
		if fw.Name == "" {
			fw.Name = fmt.Sprintf("freeze window %d", j+1)
		}
		p.FreezeWindows = append(p.FreezeWindows, fw)
	}
	return p, errs
}
