package sloengine

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// OpenSLO v1 documents. Burnrate reads the subset that maps onto its own
// model: SLO (with an inline or referenced SLI and alert policies), SLI
// (ratioMetric over Prometheus queries), Service, AlertPolicy and
// AlertCondition (burn-rate conditions). DataSource and
// AlertNotificationTarget are accepted and ignored: queries go to the
// configured metrics backend, notifications to alerting.
type osDoc struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   osMetadata `yaml:"metadata"`
	Spec       yaml.Node  `yaml:"spec"`
}

type osMetadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type osSLOSpec struct {
	Description     string         `yaml:"description"`
	Service         string         `yaml:"service"`
	Indicator       *osInlineSLI   `yaml:"indicator"`
	IndicatorRef    string         `yaml:"indicatorRef"`
	TimeWindow      []osTimeWindow `yaml:"timeWindow"`
	BudgetingMethod string         `yaml:"budgetingMethod"`
	Objectives      []osObjective  `yaml:"objectives"`
	AlertPolicies   []yaml.Node    `yaml:"alertPolicies"`
}

type osInlineSLI struct {
	Metadata osMetadata `yaml:"metadata"`
	Spec     osSLISpec  `yaml:"spec"`
}

type osSLISpec struct {
	Description     string         `yaml:"description"`
	ThresholdMetric *osMetricHold  `yaml:"thresholdMetric"`
	RatioMetric     *osRatioMetric `yaml:"ratioMetric"`
}

type osRatioMetric struct {
	Counter bool          `yaml:"counter"`
	Good    *osMetricHold `yaml:"good"`
	Bad     *osMetricHold `yaml:"bad"`
	Total   *osMetricHold `yaml:"total"`
	RawType string        `yaml:"rawType"`
	Raw     *osMetricHold `yaml:"raw"`
}

type osMetricHold struct {
	MetricSource osMetricSource `yaml:"metricSource"`
}

type osMetricSource struct {
	MetricSourceRef string         `yaml:"metricSourceRef"`
	Type            string         `yaml:"type"`
	Spec            map[string]any `yaml:"spec"`
}

type osTimeWindow struct {
	Duration  string      `yaml:"duration"`
	IsRolling bool        `yaml:"isRolling"`
	Calendar  *osCalendar `yaml:"calendar"`
}

type osCalendar struct {
	StartTime string `yaml:"startTime"`
	TimeZone  string `yaml:"timeZone"`
}

type osObjective struct {
	DisplayName     string   `yaml:"displayName"`
	Op              string   `yaml:"op"`
	Value           *float64 `yaml:"value"`
	Target          *float64 `yaml:"target"`
	TargetPercent   *float64 `yaml:"targetPercent"`
	TimeSliceTarget *float64 `yaml:"timeSliceTarget"`
	TimeSliceWindow string   `yaml:"timeSliceWindow"`
	CompositeWeight *float64 `yaml:"compositeWeight"`
}

type osAlertPolicySpec struct {
	Description         string      `yaml:"description"`
	AlertWhenNoData     bool        `yaml:"alertWhenNoData"`
	AlertWhenResolved   bool        `yaml:"alertWhenResolved"`
	AlertWhenBreaching  bool        `yaml:"alertWhenBreaching"`
	Conditions          []yaml.Node `yaml:"conditions"`
	NotificationTargets []yaml.Node `yaml:"notificationTargets"`
}

type osAlertConditionSpec struct {
	Description string `yaml:"description"`
	Severity    string `yaml:"severity"`
	Condition   struct {
		Kind           string  `yaml:"kind"`
		Op             string  `yaml:"op"`
		Threshold      float64 `yaml:"threshold"`
		LookbackWindow string  `yaml:"lookbackWindow"`
		AlertAfter     string  `yaml:"alertAfter"`
	} `yaml:"condition"`
}

type osObject struct {
	ctx  *fileCtx
	doc  osDoc
	node *yaml.Node
}

func (l *Loader) addOpenSLO(name string, docs []*yaml.Node) {
	byKind := map[string]map[string]osObject{}
	var slos []osObject
	var errs []error
	for i, n := range docs {
		c := &fileCtx{name: name, lines: map[string]int{}}
		var d osDoc
		if err := n.Decode(&d); err != nil {
			errs = append(errs, &SpecError{File: name, Line: yamlErrLine(err), Reason: err.Error()})
			continue
		}
		c.lines[""] = n.Line
		c.checkShape(n, reflect.TypeFor[osDoc](), "")
		if d.APIVersion != "openslo/v1" {
			c.errf("apiVersion", "%q is not supported; want openslo/v1", d.APIVersion)
		}
		if d.Metadata.Name == "" {
			c.errf("metadata.name", "missing (document %d)", i+1)
		}
		var specType reflect.Type
		switch d.Kind {
		case "SLO":
			specType = reflect.TypeFor[osSLOSpec]()
		case "SLI":
			specType = reflect.TypeFor[osSLISpec]()
		case "AlertPolicy":
			specType = reflect.TypeFor[osAlertPolicySpec]()
		case "AlertCondition":
			specType = reflect.TypeFor[osAlertConditionSpec]()
		case "Service", "DataSource", "AlertNotificationTarget":
		default:
			c.errf("kind", "%q is not an OpenSLO v1 kind Burnrate reads (SLO, SLI, Service, AlertPolicy, AlertCondition, DataSource, AlertNotificationTarget)", d.Kind)
		}
		if specType != nil && d.Spec.Kind != 0 {
			c.checkShape(&d.Spec, specType, "spec")
		}
		errs = append(errs, c.errs...)
		c.errs = nil
		o := osObject{ctx: c, doc: d, node: n}
		if byKind[d.Kind] == nil {
			byKind[d.Kind] = map[string]osObject{}
		}
		byKind[d.Kind][d.Metadata.Name] = o
		if d.Kind == "SLO" {
			slos = append(slos, o)
		}
	}
	if len(errs) > 0 {
		l.errs = append(l.errs, errs...)
		return
	}
	if len(slos) == 0 {
		l.errs = append(l.errs, &SpecError{File: name, Reason: "no OpenSLO SLO document"})
	}
	for _, o := range slos {
		c := o.ctx
		slo := buildOpenSLO(c, o, byKind)
		if slo != nil {
			slo.File, slo.Line = name, c.lines["metadata.name"]
			l.add(c, "metadata.name", slo)
		}
		l.errs = append(l.errs, c.errs...)
	}
}

func buildOpenSLO(c *fileCtx, o osObject, byKind map[string]map[string]osObject) *SLO {
	var spec osSLOSpec
	if err := o.doc.Spec.Decode(&spec); err != nil {
		c.errf("spec", "%v", err)
		return nil
	}
	before := len(c.errs)
	slo := &SLO{Service: spec.Service, Name: o.doc.Metadata.Name, Description: spec.Description,
		Labels: merge(nil, o.doc.Metadata.Labels), Budgeting: Occurrences}
	slo.ID = slo.Service + "-" + slo.Name
	if spec.Service == "" {
		c.errf("spec.service", "missing")
	} else if !idRe.MatchString(spec.Service) {
		c.errf("spec.service", "%q may hold only letters, digits, '_', '.' and '-'", spec.Service)
	}
	if !idRe.MatchString(slo.Name) {
		c.errf("metadata.name", "%q may hold only letters, digits, '_', '.' and '-'", slo.Name)
	}
	if svc := byKind["Service"]; len(svc) > 0 {
		if _, ok := svc[spec.Service]; !ok && spec.Service != "" {
			c.errf("spec.service", "%q is not a Service defined in this file", spec.Service)
		}
	}

	// Indicator: inline or referenced.
	var sli *osSLISpec
	switch {
	case spec.Indicator != nil && spec.IndicatorRef != "":
		c.errf("spec.indicatorRef", "set indicator or indicatorRef, not both")
	case spec.Indicator != nil:
		sli = &spec.Indicator.Spec
		buildOpenSLI(c, "spec.indicator.spec", sli, &slo.SLI)
	case spec.IndicatorRef != "":
		ref, ok := byKind["SLI"][spec.IndicatorRef]
		if !ok {
			c.errf("spec.indicatorRef", "no SLI named %q in this file", spec.IndicatorRef)
			break
		}
		var s osSLISpec
		if err := ref.doc.Spec.Decode(&s); err != nil {
			c.errf("spec.indicatorRef", "%v", err)
			break
		}
		buildOpenSLI(ref.ctx, "spec", &s, &slo.SLI)
		c.errs = append(c.errs, ref.ctx.errs...)
		ref.ctx.errs = nil
	default:
		c.errf("spec.indicator", "missing: set indicator or indicatorRef")
	}

	// Objective.
	switch len(spec.Objectives) {
	case 0:
		c.errf("spec.objectives", "missing")
	case 1:
		ob := spec.Objectives[0]
		switch {
		case ob.Target != nil:
			if !(*ob.Target > 0 && *ob.Target < 1) {
				c.errf("spec.objectives[0].target", "%v is out of range: want a ratio greater than 0 and less than 1 (such as 0.999)", *ob.Target)
			} else {
				slo.Objective = *ob.Target
			}
		case ob.TargetPercent != nil:
			if !(*ob.TargetPercent > 0 && *ob.TargetPercent < 100) {
				c.errf("spec.objectives[0].targetPercent", "%v is out of range: want a percentage greater than 0 and less than 100", *ob.TargetPercent)
			} else {
				slo.Objective = round15(*ob.TargetPercent / 100)
			}
		default:
			c.errf("spec.objectives[0].target", "missing")
		}
		if ob.Op != "" || ob.Value != nil {
			c.errf("spec.objectives[0].op", "threshold objectives (op/value) are not supported; use a ratioMetric SLI")
		}
		switch BudgetingMethod(spec.BudgetingMethod) {
		case Occurrences, "":
		case RatioTimeslices, Timeslices:
			slo.Budgeting = BudgetingMethod(spec.BudgetingMethod)
			if ob.TimeSliceWindow != "" {
				if d, err := model.ParseDuration(ob.TimeSliceWindow); err != nil || time.Duration(d) != SliceWidth {
					c.errf("spec.objectives[0].timeSliceWindow", "%q is not supported: Burnrate's time slices are 5m", ob.TimeSliceWindow)
				}
			}
			if slo.Budgeting == Timeslices {
				if ob.TimeSliceTarget == nil || !(*ob.TimeSliceTarget > 0 && *ob.TimeSliceTarget < 1) {
					c.errf("spec.objectives[0].timeSliceTarget", "Timeslices needs a timeSliceTarget between 0 and 1")
				} else {
					slo.TimeSliceTarget = *ob.TimeSliceTarget
				}
			}
		default:
			c.errf("spec.budgetingMethod", "%q is not one of Occurrences, Timeslices, RatioTimeslices", spec.BudgetingMethod)
		}
	default:
		c.errf("spec.objectives", "%d objectives: Burnrate supports one objective per SLO", len(spec.Objectives))
	}

	// Time window.
	if len(spec.TimeWindow) != 1 {
		c.errf("spec.timeWindow", "want exactly one time window, got %d", len(spec.TimeWindow))
	} else {
		tw := spec.TimeWindow[0]
		if tw.IsRolling || tw.Calendar == nil {
			d, err := model.ParseDuration(tw.Duration)
			switch {
			case err != nil:
				c.errf("spec.timeWindow[0].duration", "%q is not a duration such as 28d", tw.Duration)
			case time.Duration(d) < 24*time.Hour || time.Duration(d)%SliceWidth != 0 || windowFor(time.Duration(d)):
				c.errf("spec.timeWindow[0].duration", "%s must be at least 1d, a multiple of 5m and differ from the SLI windows (%s)", tw.Duration, windowNames())
			default:
				slo.Period = time.Duration(d)
			}
		} else {
			loc, err := time.LoadLocation(tw.Calendar.TimeZone)
			if err != nil {
				c.errf("spec.timeWindow[0].calendar.timeZone", "%q is not an IANA time zone: %v", tw.Calendar.TimeZone, err)
			}
			unit := map[string]string{"1w": "week", "7d": "week", "1M": "month", "1Q": "quarter", "3M": "quarter"}[tw.Duration]
			switch unit {
			case "week":
				slo.Period = 7 * 24 * time.Hour
			case "month":
				slo.Period = 30 * 24 * time.Hour
			case "quarter":
				slo.Period = 90 * 24 * time.Hour
			default:
				c.errf("spec.timeWindow[0].duration", "%q: calendar windows are 1w, 1M or 1Q", tw.Duration)
			}
			slo.Calendar = &Calendar{Unit: unit, Location: loc}
		}
	}

	// Alert policies: burn-rate conditions become tiers.
	for i, ap := range spec.AlertPolicies {
		p := fmt.Sprintf("spec.alertPolicies[%d]", i)
		var pol osAlertPolicySpec
		var pc *fileCtx
		switch {
		case ap.Kind == yaml.ScalarNode || scalarField(&ap, "alertPolicyRef") != "":
			ref := ap.Value
			if ap.Kind != yaml.ScalarNode {
				ref = scalarField(&ap, "alertPolicyRef")
			}
			o, ok := byKind["AlertPolicy"][ref]
			if !ok {
				c.errf(p, "no AlertPolicy named %q in this file", ref)
				continue
			}
			if err := o.doc.Spec.Decode(&pol); err != nil {
				c.errf(p, "%v", err)
				continue
			}
			pc = o.ctx
		default:
			var inline osDoc
			if err := ap.Decode(&inline); err != nil || inline.Kind != "AlertPolicy" {
				c.errf(p, "want an AlertPolicy name, {alertPolicyRef: name} or an inline AlertPolicy")
				continue
			}
			if err := inline.Spec.Decode(&pol); err != nil {
				c.errf(p, "%v", err)
				continue
			}
			pc = c
		}
		for j, cn := range pol.Conditions {
			var cond osAlertConditionSpec
			// Problems are reported where the condition is written: the
			// AlertCondition document, or the policy's inline entry.
			cc, cp := pc, fmt.Sprintf("spec.conditions[%d].spec", j)
			if ref := scalarField(&cn, "conditionRef"); ref != "" {
				o, ok := byKind["AlertCondition"][ref]
				if !ok {
					pc.errf(fmt.Sprintf("spec.conditions[%d].conditionRef", j), "no AlertCondition named %q in this file", ref)
					continue
				}
				_ = o.doc.Spec.Decode(&cond)
				cc, cp = o.ctx, "spec"
			} else {
				var inline osDoc
				if err := cn.Decode(&inline); err != nil || inline.Kind != "AlertCondition" {
					pc.errf(fmt.Sprintf("spec.conditions[%d]", j), "want {conditionRef: name} or an inline AlertCondition")
					continue
				}
				_ = inline.Spec.Decode(&cond)
			}
			if cond.Condition.Kind != "burnrate" {
				cc.errf(cp+".condition.kind", "%q is not supported; want burnrate", cond.Condition.Kind)
				continue
			}
			long, err := model.ParseDuration(cond.Condition.LookbackWindow)
			short := time.Duration(long) / 12
			if err != nil || !windowFor(time.Duration(long)) || !windowFor(short) {
				cc.errf(cp+".condition.lookbackWindow", "%q: want one of 1h, 6h, 1d, 3d (the short window is a twelfth of it)", cond.Condition.LookbackWindow)
				continue
			}
			sev := strings.ToLower(cond.Severity)
			if sev != "page" && sev != "ticket" {
				cc.errf(cp+".severity", "%q: want page or ticket", cond.Severity)
				continue
			}
			if !(cond.Condition.Threshold > 0) {
				cc.errf(cp+".condition.threshold", "must be a positive burn rate")
				continue
			}
			percent := cond.Condition.Threshold * float64(long) / float64(slo.Period) * 100
			t := newTier(sev, time.Duration(long), short, percent, slo.Period)
			t.Factor = cond.Condition.Threshold
			slo.Tiers = append(slo.Tiers, t)
		}
		// Errors found in referenced AlertCondition documents count
		// against this SLO.
		for _, o := range byKind["AlertCondition"] {
			c.errs = append(c.errs, o.ctx.errs...)
			o.ctx.errs = nil
		}
		c.errs = append(c.errs, pc.errs...)
		if pc != c {
			pc.errs = nil
		}
	}
	if len(spec.AlertPolicies) == 0 {
		slo.Tiers = DefaultTiers(slo.Period)
	}
	slo.OwnTiers = len(spec.AlertPolicies) > 0
	nameSpecTiers(slo.Tiers, slo.Period)
	if len(c.errs) > before {
		return nil
	}
	return slo
}

// buildOpenSLI maps a ratioMetric onto events or raw SLIs. Counter metrics
// given as plain selectors are wrapped as sum(rate(<selector>[window])).
func buildOpenSLI(c *fileCtx, p string, s *osSLISpec, out *SLI) {
	if s.ThresholdMetric != nil {
		c.errf(p+".thresholdMetric", "threshold metrics are not supported; use ratioMetric")
		return
	}
	r := s.RatioMetric
	if r == nil {
		c.errf(p+".ratioMetric", "missing")
		return
	}
	query := func(field string, h *osMetricHold) string {
		if h == nil {
			return ""
		}
		q, _ := h.MetricSource.Spec["query"].(string)
		if q == "" {
			c.errf(field+".metricSource.spec.query", "missing: Burnrate reads Prometheus queries")
			return ""
		}
		if windowTmpl.MatchString(q) {
			return q
		}
		e, err := promqlParser.ParseExpr(q)
		if err != nil {
			c.errf(field+".metricSource.spec.query", "invalid PromQL: %v", err)
			return ""
		}
		if _, ok := e.(*parser.VectorSelector); !ok || !r.Counter {
			c.errf(field+".metricSource.spec.query", "want a counter selector (with counter: true) or a query holding {{.window}}")
			return ""
		}
		return "sum(rate(" + q + "[{{.window}}]))"
	}
	if r.Raw != nil {
		out.Kind = KindRaw
		if r.RawType != "failure" {
			c.errf(p+".ratioMetric.rawType", "%q: only failure ratios are supported", r.RawType)
		}
		q, _ := r.Raw.MetricSource.Spec["query"].(string)
		out.ErrorRatioQuery = q
		if q == "" {
			c.errf(p+".ratioMetric.raw.metricSource.spec.query", "missing")
		} else {
			c.checkQuery(p+".ratioMetric.raw.metricSource.spec.query", q)
		}
		return
	}
	out.Kind = KindEvents
	switch {
	case r.Good != nil && r.Bad != nil:
		c.errf(p+".ratioMetric.bad", "set good or bad, not both")
	case r.Good != nil:
		out.GoodQuery = query(p+".ratioMetric.good", r.Good)
	case r.Bad != nil:
		out.ErrorQuery = query(p+".ratioMetric.bad", r.Bad)
	default:
		c.errf(p+".ratioMetric.good", "missing: set good or bad")
	}
	if r.Total == nil {
		c.errf(p+".ratioMetric.total", "missing")
		return
	}
	out.TotalQuery = query(p+".ratioMetric.total", r.Total)
}
