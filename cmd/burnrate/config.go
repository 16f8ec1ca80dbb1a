package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/yamlfile"
)

// config is the whole configuration file. Keys are the mapstructure tags;
// nested structs are YAML sections, and BURNRATE_SECTION_KEY in the
// environment.
type config struct {
	app.Options `mapstructure:",squash"`
	Log         logConfig `mapstructure:"log"`
}

type logConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

func defaultConfig() config {
	return config{
		Options: app.DefaultOptions(),
		Log:     logConfig{Level: "info", Format: "text"},
	}
}

func (c config) validate() error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format)
	}
	return nil
}

// flagKeys maps command-line flags to configuration keys. Flags win over the
// environment, which wins over the file.
var flagKeys = map[string]string{
	"listen":      "listen",
	"data-dir":    "data_dir",
	"log-level":   "log.level",
	"log-format":  "log.format",
	"otlp-listen": "collector.otlp_listen",
	"slos":        "slos",
	"edge-listen": "demo.edge_listen",
}

// loadConfig reads the effective configuration: defaults, then the YAML file
// (if any), then BURNRATE_* variables, then flags that were set.
func loadConfig(file string, flags *pflag.FlagSet) (config, error) {
	v := viper.New()
	def := defaultConfig()
	for key, val := range leaves(reflect.ValueOf(def), "") {
		v.SetDefault(key, val.Interface())
	}
	v.SetEnvPrefix("BURNRATE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	var lines map[string]int
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return config{}, fmt.Errorf("config file: %w", err)
		}
		lines, err = checkFile(file, raw)
		if err != nil {
			return config{}, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
			return config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return config{}, fmt.Errorf("bind flag --%s: %w", name, err)
				}
			}
		}
	}

	// Decode into a zero value: every default is already in v, and decoding
	// over a filled struct would merge a file's list items into the default
	// items instead of replacing the list.
	var cfg config
	if err := v.UnmarshalExact(&cfg, viper.DecodeHook(decodeHook)); err != nil {
		return config{}, fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return config{}, locate(file, lines, err)
	}
	return cfg, nil
}

// parseDuration reads a Go duration (1h30m, 1.5h) or a Prometheus one with
// days and weeks (40d, 2w), so that collector.tsdb.retention takes the 30d
// an SLO period does.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}

// decodeHook is viper's default decoding (durations, comma-separated
// lists) with parseDuration's durations.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String {
		return data, nil
	}
	raw := reflect.ValueOf(data).String()
	switch {
	case to == reflect.TypeFor[time.Duration]():
		return parseDuration(raw)
	case to.Kind() == reflect.Slice:
		if raw == "" {
			return []string{}, nil
		}
		return strings.Split(raw, ","), nil
	}
	return data, nil
}

// locate prefixes a validation error ("key: reason") with the file and line
// where that key was set, when it came from the file.
func locate(file string, lines map[string]int, err error) error {
	if file == "" {
		return fmt.Errorf("configuration: %w", err)
	}
	key, _, _ := strings.Cut(err.Error(), ":")
	if line, ok := lines[key]; ok {
		return fmt.Errorf("config file %s:%d: %w", file, line, err)
	}
	return fmt.Errorf("config file %s: %w", file, err)
}

// checkFile checks every key of the YAML file against the configuration
// struct: unknown keys (with the nearest known key as a suggestion) and values
// of the wrong type are reported with file and line. It returns the line of
// each key for later validation errors.
func checkFile(file string, raw []byte) (map[string]int, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}
	lines := map[string]int{}
	if len(root.Content) == 0 {
		return lines, nil
	}
	var errs []error
	walkNode(file, root.Content[0], reflect.TypeFor[config](), "", lines, &errs)
	return lines, errors.Join(errs...)
}

func walkNode(file string, n *yaml.Node, t reflect.Type, prefix string, lines map[string]int, errs *[]error) {
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, fmt.Errorf("config file %s:%d: %s: want a mapping of keys, got %s",
			file, n.Line, orRoot(prefix), kindName(n)))
		return
	}
	fields := fieldsOf(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		lines[key] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("config file %s:%d: unknown key %q", file, k.Line, key)
			if s := yamlfile.Nearest(strings.ToLower(k.Value), fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+s)
			}
			*errs = append(*errs, errors.New(msg))
			continue
		}
		walkValue(file, val, f, key, lines, errs)
	}
}

// walkValue checks one value against its Go type: sections and list items
// that are structs are walked key by key, maps of structs value by value.
func walkValue(file string, n *yaml.Node, t reflect.Type, key string, lines map[string]int, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return // an empty value keeps the default
	case isSection(t):
		walkNode(file, n, t, key+".", lines, errs)
		return
	case t.Kind() == reflect.Slice && isSection(elem(t)):
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("config file %s:%d: %s: want a list, got %s", file, n.Line, key, kindName(n)))
			return
		}
		for i, item := range n.Content {
			walkValue(file, item, t.Elem(), fmt.Sprintf("%s[%d]", key, i), lines, errs)
		}
		return
	case t.Kind() == reflect.Map && isSection(elem(t)):
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("config file %s:%d: %s: want a mapping, got %s", file, n.Line, key, kindName(n)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			sub := key + "." + n.Content[i].Value
			lines[sub] = n.Content[i].Line
			walkValue(file, n.Content[i+1], t.Elem(), sub, lines, errs)
		}
		return
	}
	if err := checkScalar(n, t); err != nil {
		*errs = append(*errs, fmt.Errorf("config file %s:%d: %s: %w", file, n.Line, key, err))
	}
}

func elem(t reflect.Type) reflect.Type {
	t = t.Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isSection tells whether a type is a group of keys (a struct other than time).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]()
}

func orRoot(prefix string) string {
	if prefix == "" {
		return "top level"
	}
	return strings.TrimSuffix(prefix, ".")
}

func kindName(n *yaml.Node) string {
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

// checkScalar tells whether a YAML value fits a field's Go type.
func checkScalar(n *yaml.Node, t reflect.Type) error {
	if t == reflect.TypeFor[time.Duration]() {
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("want a duration such as 30s or 5m, got %s", kindName(n))
		}
		if _, err := parseDuration(n.Value); err != nil {
			return fmt.Errorf("want a duration such as 30s or 5m, got %q", n.Value)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("want a string, got %s", kindName(n))
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Errorf("want true or false, got %s", kindName(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		if _, err := strconv.ParseInt(n.Value, 0, 64); n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Errorf("want a whole number, got %s", kindName(n))
		}
	case reflect.Float64, reflect.Float32:
		if _, err := strconv.ParseFloat(n.Value, 64); n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Errorf("want a number, got %s", kindName(n))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("want a mapping, got %s", kindName(n))
		}
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkScalar(n.Content[i], t.Elem()); err != nil {
				return fmt.Errorf("%s: %w", n.Content[i-1].Value, err)
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("want a list, got %s", kindName(n))
		}
		for _, item := range n.Content {
			if err := checkScalar(item, t.Elem()); err != nil {
				return fmt.Errorf("item at line %d: %w", item.Line, err)
			}
		}
	}
	return nil
}

// fieldsOf maps configuration keys to field types, following squashed
// (embedded) structs and skipping untagged or "-" fields.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "squash" {
			for k, v := range fieldsOf(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// leaves flattens a configuration struct into dotted keys and values.
func leaves(v reflect.Value, prefix string) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "squash" {
			for k, fv := range leaves(v.Field(i), prefix) {
				out[k] = fv
			}
			continue
		}
		if name == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			for k, fv := range leaves(v.Field(i), prefix+name+".") {
				out[k] = fv
			}
			continue
		}
		out[prefix+name] = v.Field(i)
	}
	return out
}

// printConfig writes the effective configuration as YAML, in struct order,
// with every field tagged secret:"true" redacted when set.
func printConfig(cfg config) ([]byte, error) {
	node := toNode(reflect.ValueOf(cfg), false)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// toNode renders a section. Top-level sections list every key, so that users
// see what can be set; items of lists and maps list only the keys they set.
func toNode(v reflect.Value, omitEmpty bool) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	appendFields(m, v, omitEmpty)
	return m
}

func appendFields(m *yaml.Node, v reflect.Value, omitEmpty bool) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "squash" {
			appendFields(m, v.Field(i), omitEmpty)
			continue
		}
		if name == "" || (omitEmpty && isEmpty(v.Field(i))) {
			continue
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: name}
		var val *yaml.Node
		if f.Tag.Get("secret") == "true" {
			val = redacted(v.Field(i))
		} else {
			val = valueNode(v.Field(i), omitEmpty)
		}
		m.Content = append(m.Content, key, val)
	}
}

// redacted hides a secret's value but keeps its shape, so the printed file
// still loads: a secret map keeps its keys (header names), not its values.
func redacted(v reflect.Value) *yaml.Node {
	if v.Kind() == reflect.Map && v.IsNil() {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	}
	if v.Kind() == reflect.Map {
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(k.Interface())},
				&yaml.Node{Kind: yaml.ScalarNode, Value: "<redacted>", Style: yaml.DoubleQuotedStyle})
		}
		return m
	}
	s := ""
	if !isEmpty(v) {
		s = "<redacted>"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.DoubleQuotedStyle}
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Map, reflect.Slice:
		return v.Len() == 0
	}
	return v.IsZero()
}

// valueNode renders any configuration value by its mapstructure keys, so
// that what is printed can be pasted back into a file.
func valueNode(v reflect.Value, omitEmpty bool) *yaml.Node {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v.Interface().(time.Duration).String()}
	case isSection(v.Type()):
		return toNode(v, omitEmpty)
	case (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.IsNil():
		// Unset, as opposed to set to empty: an unset group_by inherits.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	case v.Kind() == reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 {
			seq.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			seq.Content = append(seq.Content, valueNode(v.Index(i), true))
		}
		return seq
	case v.Kind() == reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		if v.Len() == 0 {
			m.Style = yaml.FlowStyle
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(k.Interface())}, valueNode(v.MapIndex(k), true))
		}
		return m
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(v.Interface())}
	}
	return n
}
