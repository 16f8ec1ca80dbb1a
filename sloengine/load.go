package sloengine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// The own format is Sloth's prometheus/v1 with optional extensions, so a
// Sloth file loads unchanged.
type fileSpec struct {
	Version string            `yaml:"version"`
	Service string            `yaml:"service"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []sloSpec         `yaml:"slos"`
}

type sloSpec struct {
	Name        string            `yaml:"name"`
	Objective   *float64          `yaml:"objective"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	SLI         sliSpec           `yaml:"sli"`
	Alerting    alertingSpec      `yaml:"alerting"`
	// Burnrate extensions.
	Period          string        `yaml:"period"`
	Calendar        *calendarSpec `yaml:"calendar"`
	BudgetingMethod string        `yaml:"budgeting_method"`
	TimeSliceTarget *float64      `yaml:"time_slice_target"`
	MinEvents       float64       `yaml:"min_events"`
}

type calendarSpec struct {
	Unit     string `yaml:"unit"`
	TimeZone string `yaml:"time_zone"`
}

type sliSpec struct {
	Events *struct {
		ErrorQuery string `yaml:"error_query"`
		GoodQuery  string `yaml:"good_query"`
		TotalQuery string `yaml:"total_query"`
	} `yaml:"events"`
	Raw *struct {
		ErrorRatioQuery string `yaml:"error_ratio_query"`
	} `yaml:"raw"`
	Plugin *struct {
		ID      string            `yaml:"id"`
		Options map[string]string `yaml:"options"`
	} `yaml:"plugin"`
	Latency       *latencySpec `yaml:"latency"`
	LatencyNative *latencySpec `yaml:"latency_native"`
	BoolGauge     *struct {
		Query string `yaml:"query"`
	} `yaml:"bool_gauge"`
}

type latencySpec struct {
	Metric    string    `yaml:"metric"`
	Selector  string    `yaml:"selector"`
	Threshold *float64  `yaml:"threshold"`
	Buckets   []float64 `yaml:"buckets"`
}

type alertingSpec struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	PageAlert   alertSpec         `yaml:"page_alert"`
	TicketAlert alertSpec         `yaml:"ticket_alert"`
	Tiers       []tierSpec        `yaml:"tiers"`
}

type alertSpec struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type tierSpec struct {
	Severity      string  `yaml:"severity"`
	LongWindow    string  `yaml:"long_window"`
	ShortWindow   string  `yaml:"short_window"`
	BudgetPercent float64 `yaml:"budget_percent"`
}

// Loader collects SLOs from many files and reports every problem.
type Loader struct {
	slos []*SLO
	ids  map[string]*SLO
	errs []error
}

// NewLoader returns an empty loader.
func NewLoader() *Loader { return &Loader{ids: map[string]*SLO{}} }

// Result returns the SLOs loaded so far and every error, joined.
func (l *Loader) Result() ([]*SLO, error) {
	sort.SliceStable(l.slos, func(i, j int) bool { return l.slos[i].ID < l.slos[j].ID })
	return l.slos, errors.Join(l.errs...)
}

// LoadPaths loads SLO files from paths: files, or directories whose *.yml
// and *.yaml files are read (not recursively).
func LoadPaths(paths []string) ([]*SLO, error) {
	l := NewLoader()
	for _, p := range paths {
		l.AddPath(p)
	}
	return l.Result()
}

// AddPath adds a file or a directory of files.
func (l *Loader) AddPath(p string) {
	st, err := os.Stat(p)
	if err != nil {
		l.errs = append(l.errs, &SpecError{File: p, Reason: err.Error()})
		return
	}
	if !st.IsDir() {
		l.AddFile(p)
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		l.errs = append(l.errs, &SpecError{File: p, Reason: err.Error()})
		return
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yml") || strings.HasSuffix(e.Name(), ".yaml")) {
			continue
		}
		l.AddFile(filepath.Join(p, e.Name()))
	}
}

// AddFile reads and adds one file.
func (l *Loader) AddFile(path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, &SpecError{File: path, Reason: err.Error()})
		return
	}
	l.Add(path, raw)
}

// Add parses one file's content; name is used in errors.
func (l *Loader) Add(name string, raw []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.errs = append(l.errs, &SpecError{File: name, Line: yamlErrLine(err), Reason: err.Error()})
			return
		}
		if len(n.Content) > 0 {
			docs = append(docs, n.Content[0])
		}
	}
	if len(docs) == 0 {
		l.errs = append(l.errs, &SpecError{File: name, Reason: "file holds no SLO document"})
		return
	}
	if v := scalarField(docs[0], "apiVersion"); strings.HasPrefix(v, "openslo/") {
		l.addOpenSLO(name, docs)
		return
	}
	if len(docs) > 1 {
		l.errs = append(l.errs, &SpecError{File: name, Line: docs[1].Line, Reason: "more than one YAML document; only OpenSLO files may hold several"})
		return
	}
	l.addOwn(name, docs[0])
}

var lineRe = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func scalarField(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// fileCtx reports errors against one file with the line of each field path.
type fileCtx struct {
	name  string
	lines map[string]int
	errs  []error
}

func (c *fileCtx) errf(field, format string, args ...any) {
	line := 0
	// The nearest set ancestor carries the line when the field is missing.
	for p := field; ; {
		if n, ok := c.lines[p]; ok {
			line = n
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	c.errs = append(c.errs, &SpecError{File: c.name, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// checkShape walks n against Go type t: unknown keys and wrong kinds are
// reported with their line; the line of every field path is recorded.
func (c *fileCtx) checkShape(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias // YAML anchors (&sli / *sli) share one SLI between SLOs
	}
	if t == reflect.TypeFor[yaml.Node]() {
		return // free-form here; decoded and checked by its own kind
	}
	if path != "" {
		if _, ok := c.lines[path]; !ok {
			c.lines[path] = n.Line
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Line, Field: path, Reason: "want a mapping of fields, got " + nodeKind(n)})
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			c.lines[fp] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				c.errs = append(c.errs, &SpecError{File: c.name, Line: k.Line, Field: fp,
					Reason: fmt.Sprintf("unknown field; known fields here: %s", strings.Join(names, ", "))})
				continue
			}
			c.checkShape(v, ft, fp)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Line, Field: path, Reason: "want a list, got " + nodeKind(n)})
			return
		}
		for i, item := range n.Content {
			c.checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Line, Field: path, Reason: "want a mapping, got " + nodeKind(n)})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.lines[join(path, n.Content[i].Value)] = n.Content[i].Line
			if t.Elem().Kind() == reflect.String && n.Content[i+1].Kind != yaml.ScalarNode {
				c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Content[i+1].Line, Field: join(path, n.Content[i].Value), Reason: "want a string, got " + nodeKind(n.Content[i+1])})
			}
		}
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Line, Field: path, Reason: "want a single value, got " + nodeKind(n)})
			return
		}
		var err error
		switch t.Kind() {
		case reflect.Float64:
			_, err = strconv.ParseFloat(n.Value, 64)
		case reflect.Bool:
			_, err = strconv.ParseBool(n.Value)
		}
		if err != nil {
			c.errs = append(c.errs, &SpecError{File: c.name, Line: n.Line, Field: path, Reason: fmt.Sprintf("want a %s, got %q", t.Kind(), n.Value)})
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func (l *Loader) addOwn(name string, root *yaml.Node) {
	c := &fileCtx{name: name, lines: map[string]int{}}
	c.checkShape(root, reflect.TypeFor[fileSpec](), "")
	if len(c.errs) > 0 {
		l.errs = append(l.errs, c.errs...)
		return
	}
	var fs fileSpec
	if err := root.Decode(&fs); err != nil {
		l.errs = append(l.errs, &SpecError{File: name, Line: yamlErrLine(err), Reason: err.Error()})
		return
	}
	switch fs.Version {
	case "prometheus/v1", "burnrate/v1":
	case "":
		c.errf("version", "missing; want prometheus/v1 (Sloth) or burnrate/v1")
	default:
		c.errf("version", "%q is not supported; want prometheus/v1 (Sloth) or burnrate/v1", fs.Version)
	}
	if fs.Service == "" {
		c.errf("service", "missing")
	} else if !idRe.MatchString(fs.Service) {
		c.errf("service", "%q may hold only letters, digits, '_', '.' and '-'", fs.Service)
	}
	if len(fs.SLOs) == 0 {
		c.errf("slos", "no SLOs defined")
	}
	for i, s := range fs.SLOs {
		p := fmt.Sprintf("slos[%d]", i)
		slo := c.buildOwn(p, fs, s)
		if slo != nil {
			slo.File, slo.Line = name, c.lines[p+".name"]
			l.add(c, p+".name", slo)
		}
	}
	l.errs = append(l.errs, c.errs...)
}

func (l *Loader) add(c *fileCtx, field string, slo *SLO) {
	if prev, ok := l.ids[slo.ID]; ok {
		c.errf(field, "duplicate SLO ID %q (service %q, name %q), first defined at %s:%d", slo.ID, slo.Service, slo.Name, prev.File, prev.Line)
		return
	}
	l.ids[slo.ID] = slo
	l.slos = append(l.slos, slo)
}

func (c *fileCtx) buildOwn(p string, fs fileSpec, s sloSpec) *SLO {
	before := len(c.errs)
	slo := &SLO{
		Service: fs.Service, Name: s.Name, Description: s.Description,
		Labels:           merge(fs.Labels, s.Labels),
		AlertName:        s.Alerting.Name,
		AlertLabels:      s.Alerting.Labels,
		AlertAnnotations: s.Alerting.Annotations,
		PageLabels:       s.Alerting.PageAlert.Labels,
		TicketLabels:     s.Alerting.TicketAlert.Labels,
		MinEvents:        s.MinEvents,
		Budgeting:        Occurrences,
	}
	if s.Name == "" {
		c.errf(p+".name", "missing")
	} else if !idRe.MatchString(s.Name) {
		c.errf(p+".name", "%q may hold only letters, digits, '_', '.' and '-'", s.Name)
	}
	slo.ID = fs.Service + "-" + s.Name
	switch {
	case s.Objective == nil:
		c.errf(p+".objective", "missing; want a percentage such as 99.9")
	case !(*s.Objective > 0 && *s.Objective < 100):
		c.errf(p+".objective", "%v is out of range: want a percentage greater than 0 and less than 100 (such as 99.9)", *s.Objective)
	default:
		slo.Objective = round15(*s.Objective / 100)
	}
	if s.MinEvents < 0 {
		c.errf(p+".min_events", "must not be negative")
	}
	c.buildSLI(p+".sli", s.SLI, &slo.SLI)
	slo.Period = 30 * 24 * time.Hour
	if s.Period != "" {
		d, err := model.ParseDuration(s.Period)
		switch {
		case err != nil:
			c.errf(p+".period", "%q is not a duration such as 28d or 30d", s.Period)
		case time.Duration(d) < 24*time.Hour || time.Duration(d)%SliceWidth != 0 || windowFor(time.Duration(d)):
			c.errf(p+".period", "%s must be at least 1d, a multiple of 5m and differ from the SLI windows (%s)", s.Period, windowNames())
		default:
			slo.Period = time.Duration(d)
		}
	}
	if s.Calendar != nil {
		if s.Period != "" {
			c.errf(p+".calendar", "set either period (rolling) or calendar, not both")
		}
		loc, err := time.LoadLocation(s.Calendar.TimeZone)
		if err != nil {
			c.errf(p+".calendar.time_zone", "%q is not an IANA time zone: %v", s.Calendar.TimeZone, err)
		}
		switch s.Calendar.Unit {
		case "week":
			slo.Period = 7 * 24 * time.Hour
		case "month":
			slo.Period = 30 * 24 * time.Hour
		case "quarter":
			slo.Period = 90 * 24 * time.Hour
		default:
			c.errf(p+".calendar.unit", "%q is not one of week, month, quarter", s.Calendar.Unit)
		}
		slo.Calendar = &Calendar{Unit: s.Calendar.Unit, Location: loc}
	}
	switch BudgetingMethod(s.BudgetingMethod) {
	case "", Occurrences:
	case RatioTimeslices:
		slo.Budgeting = RatioTimeslices
	case Timeslices:
		slo.Budgeting = Timeslices
		if s.TimeSliceTarget == nil || !(*s.TimeSliceTarget > 0 && *s.TimeSliceTarget < 1) {
			c.errf(p+".time_slice_target", "Timeslices budgeting needs a time_slice_target between 0 and 1 (the SLI a 5m slice must reach to be good)")
		} else {
			slo.TimeSliceTarget = *s.TimeSliceTarget
		}
	default:
		c.errf(p+".budgeting_method", "%q is not one of Occurrences, Timeslices, RatioTimeslices", s.BudgetingMethod)
	}
	if s.TimeSliceTarget != nil && slo.Budgeting != Timeslices {
		c.errf(p+".time_slice_target", "only applies to budgeting_method Timeslices")
	}
	slo.Tiers = c.buildTiers(p+".alerting", s.Alerting, slo.Period)
	slo.OwnTiers = len(s.Alerting.Tiers) > 0
	nameSpecTiers(slo.Tiers, slo.Period)
	slo.disabledSeverity = map[string]bool{"page": s.Alerting.PageAlert.Disable, "ticket": s.Alerting.TicketAlert.Disable}
	if len(c.errs) > before {
		return nil
	}
	return slo
}

func (c *fileCtx) buildTiers(p string, a alertingSpec, period time.Duration) []Tier {
	var tiers []Tier
	if len(a.Tiers) == 0 {
		tiers = DefaultTiers(period)
	}
	for i, t := range a.Tiers {
		tp := fmt.Sprintf("%s.tiers[%d]", p, i)
		if t.Severity != "page" && t.Severity != "ticket" {
			c.errf(tp+".severity", "%q is not page or ticket", t.Severity)
		}
		long := c.window(tp+".long_window", t.LongWindow)
		short := c.window(tp+".short_window", t.ShortWindow)
		if long > 0 && short > 0 && short >= long {
			c.errf(tp+".short_window", "must be shorter than long_window (usually long/12)")
		}
		if !(t.BudgetPercent > 0 && t.BudgetPercent <= 100) {
			c.errf(tp+".budget_percent", "want the share of the period's budget the tier spends before firing, in (0, 100]")
		}
		tiers = append(tiers, newTier(t.Severity, long, short, t.BudgetPercent, period))
	}
	out := tiers[:0]
	for _, t := range tiers {
		if (t.Severity == "page" && a.PageAlert.Disable) || (t.Severity == "ticket" && a.TicketAlert.Disable) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (c *fileCtx) window(field, s string) time.Duration {
	d, err := model.ParseDuration(s)
	if err != nil || !windowFor(time.Duration(d)) {
		c.errf(field, "%q is not an evaluated window; want one of %s", s, windowNames())
		return 0
	}
	return time.Duration(d)
}

func (c *fileCtx) buildSLI(p string, s sliSpec, out *SLI) {
	n := 0
	for _, set := range []bool{s.Events != nil, s.Raw != nil, s.Plugin != nil, s.Latency != nil, s.LatencyNative != nil, s.BoolGauge != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.errf(p, "want exactly one of events, raw, latency, latency_native, bool_gauge; got %d", n)
		return
	}
	switch {
	case s.Plugin != nil:
		c.errf(p+".plugin", "Sloth SLI plugins are not supported; write the plugin's queries as events or raw")
	case s.Events != nil:
		out.Kind = KindEvents
		out.ErrorQuery, out.GoodQuery, out.TotalQuery = s.Events.ErrorQuery, s.Events.GoodQuery, s.Events.TotalQuery
		switch {
		case out.ErrorQuery == "" && out.GoodQuery == "":
			c.errf(p+".events.error_query", "missing: set error_query (or good_query)")
		case out.ErrorQuery != "" && out.GoodQuery != "":
			c.errf(p+".events.good_query", "set error_query or good_query, not both")
		case out.ErrorQuery != "":
			c.checkQuery(p+".events.error_query", out.ErrorQuery)
		default:
			c.checkQuery(p+".events.good_query", out.GoodQuery)
		}
		if out.TotalQuery == "" {
			c.errf(p+".events.total_query", "missing")
		} else {
			c.checkQuery(p+".events.total_query", out.TotalQuery)
		}
	case s.Raw != nil:
		out.Kind = KindRaw
		out.ErrorRatioQuery = s.Raw.ErrorRatioQuery
		if out.ErrorRatioQuery == "" {
			c.errf(p+".raw.error_ratio_query", "missing")
		} else {
			c.checkQuery(p+".raw.error_ratio_query", out.ErrorRatioQuery)
		}
	case s.Latency != nil:
		out.Kind = KindLatency
		c.latency(p+".latency", s.Latency, out, true)
	case s.LatencyNative != nil:
		out.Kind = KindLatencyNative
		c.latency(p+".latency_native", s.LatencyNative, out, false)
	case s.BoolGauge != nil:
		out.Kind = KindBoolGauge
		out.Metric = s.BoolGauge.Query
		if out.Metric == "" {
			c.errf(p+".bool_gauge.query", "missing")
		} else if e, err := promqlParser.ParseExpr(out.Metric); err != nil {
			c.errf(p+".bool_gauge.query", "invalid PromQL: %v", err)
		} else if _, ok := e.(*parser.VectorSelector); !ok {
			c.errf(p+".bool_gauge.query", "want a series selector such as probe_success{job=\"x\"}, whose 0/1 samples are counted")
		}
	}
	if out.Kind != "" && len(c.errs) == 0 {
		// The generated expressions must parse too (selector typos show here).
		for _, q := range []string{out.errorExpr(5 * time.Minute), out.totalExpr(5 * time.Minute)} {
			if q == "" {
				continue
			}
			if _, err := promqlParser.ParseExpr(q); err != nil {
				c.errf(p, "generated query %q is invalid PromQL: %v", q, err)
			}
		}
	}
}

var promqlParser = parser.NewParser(parser.Options{})

func (c *fileCtx) latency(p string, l *latencySpec, out *SLI, classic bool) {
	out.Metric = l.Metric
	out.Selector = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l.Selector), "{"), "}")
	if !model.UTF8Validation.IsValidMetricName(l.Metric) || l.Metric == "" {
		c.errf(p+".metric", "%q is not a metric name; want the histogram's base name such as http_server_request_duration_seconds", l.Metric)
	}
	if classic && strings.HasSuffix(l.Metric, "_bucket") {
		c.errf(p+".metric", "%q: give the histogram's base name without _bucket", l.Metric)
	}
	if out.Selector != "" {
		if _, err := promqlParser.ParseMetricSelector("{" + out.Selector + "}"); err != nil {
			c.errf(p+".selector", "%q is not a label selector: %v", l.Selector, err)
		}
	}
	if l.Threshold == nil {
		c.errf(p+".threshold", "missing; want the latency bound in seconds")
		return
	}
	th := *l.Threshold
	if !(th > 0) || math.IsInf(th, 0) {
		c.errf(p+".threshold", "%v must be a positive number of seconds", th)
		return
	}
	out.Threshold = th
	out.Le = FormatLe(th)
	if !classic {
		return
	}
	buckets := l.Buckets
	if len(buckets) == 0 {
		buckets = OtelHTTPBuckets
	}
	for _, b := range buckets {
		if b == th {
			return
		}
	}
	names := make([]string, len(buckets))
	for i, b := range buckets {
		names[i] = FormatLe(b)
	}
	what := "otelhttp's default bucket bounds"
	if len(l.Buckets) > 0 {
		what = "the buckets listed"
	}
	c.errf(p+".threshold", "%v is not a bucket bound (le) of the histogram; %s are: %s (set buckets: to the histogram's bounds if it has others)", th, what, strings.Join(names, ", "))
}

// checkQuery parses q with its {{.window}} placeholder replaced.
func (c *fileCtx) checkQuery(field, q string) {
	if _, err := promqlParser.ParseExpr(expand(q, 5*time.Minute)); err != nil {
		c.errf(field, "invalid PromQL: %v", err)
	}
}

var windowTmpl = regexp.MustCompile(`\{\{\s*\.window\s*\}\}`)

// expand replaces Sloth's {{.window}} placeholder.
func expand(q string, w time.Duration) string {
	return windowTmpl.ReplaceAllString(q, FormatWindow(w))
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
