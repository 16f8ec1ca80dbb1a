// Package yamlfile decodes YAML files strictly and reports every problem
// with the file, the line and the key path, as `file:line: key: reason`.
//
// It is the one loader for Burnrate's own YAML documents (deploy policies
// today; schedules and escalation policies use it too), so that a typo in a
// key is an error naming the line instead of a silently ignored setting.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a file.
type Error struct {
	File string
	Line int
	// Key is the dotted path of the offending key ("policies[0].freeze_windows[1].start").
	Key    string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Doc is a decoded document: its root node, kept so that validation errors
// found after decoding can still name their line.
type Doc struct {
	File string
	Root *yaml.Node
}

// Decode parses raw (one YAML document) into out, a pointer to a struct
// with yaml tags. Unknown keys, wrong kinds and values that do not decode
// are reported together, each with its line and key.
func Decode(file string, raw []byte, out any) (*Doc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Reason: "the file is empty"}
		}
		return nil, &Error{File: file, Line: errLine(err), Reason: lineRe.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Reason: "more than one YAML document"}
	}
	doc := &Doc{File: file, Root: &root}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var errs []error
	walk(file, n, reflect.TypeOf(out).Elem(), "", &errs)
	if len(errs) > 0 {
		return doc, errors.Join(errs...)
	}
	if err := n.Decode(out); err != nil {
		// Name the key of each value that did not decode: the decoder
		// knows only its line.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				line := errLine(errors.New(msg))
				errs = append(errs, &Error{File: file, Line: line, Key: keyAt(n, "", line), Reason: lineRe.ReplaceAllString(msg, "")})
			}
			return doc, errors.Join(errs...)
		}
		line := errLine(err)
		return doc, &Error{File: file, Line: line, Key: keyAt(n, "", line), Reason: lineRe.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "), "")}
	}
	return doc, nil
}

// keyAt returns the path of the deepest key or list item of n that starts
// on line, or "" when none does.
func keyAt(n *yaml.Node, key string, line int) string {
	if n.Kind == yaml.AliasNode || line == 0 {
		return ""
	}
	found := ""
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := join(key, n.Content[i].Value)
			if n.Content[i].Line == line {
				found = k
			}
			if deeper := keyAt(n.Content[i+1], k, line); deeper != "" {
				return deeper
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", key, i)
			if deeper := keyAt(c, k, line); deeper != "" {
				return deeper
			}
			if c.Line == line && found == "" {
				found = k
			}
		}
	}
	return found
}

// Errorf returns an error at the node reached by key (a dotted path with
// [i] indexes, as Error.Key), or at the nearest existing parent.
func (d *Doc) Errorf(key, format string, args ...any) error {
	return &Error{File: d.File, Line: d.Line(key), Key: key, Reason: fmt.Sprintf(format, args...)}
}

var segRe = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// Line returns the line of the node at key, or of its nearest parent.
func (d *Doc) Line(key string) int {
	if d == nil || d.Root == nil {
		return 0
	}
	n := d.Root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, m := range segRe.FindAllStringSubmatch(key, -1) {
		var next *yaml.Node
		switch {
		case m[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			if i, _ := strconv.Atoi(m[2]); i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

var lineRe = regexp.MustCompile(`line (\d+):? ?`)

func errLine(err error) int {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks n against t: mapping keys against struct fields (recursively
// through slices, maps and pointers), and the node kind against the type.
// Types with their own UnmarshalYAML are checked by decoding only.
func walk(file string, n *yaml.Node, t reflect.Type, key string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	if n.Tag == "!!null" {
		return
	}
	kindErr := func(want string) {
		*errs = append(*errs, &Error{File: file, Line: n.Line, Key: key, Reason: fmt.Sprintf("expected %s, got %s", want, kindName(n))})
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			kindErr("a mapping")
			return
		}
		fields := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			ft, ok := fields[k]
			if !ok {
				reason := fmt.Sprintf("unknown key %q", k)
				if s := Nearest(k, fields); s != "" {
					reason += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, &Error{File: file, Line: n.Content[i].Line, Key: join(key, k), Reason: reason})
				continue
			}
			walk(file, v, ft, join(key, k), errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			kindErr("a list")
			return
		}
		for i, c := range n.Content {
			walk(file, c, t.Elem(), fmt.Sprintf("%s[%d]", key, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			kindErr("a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walk(file, n.Content[i+1], t.Elem(), join(key, n.Content[i].Value), errs)
		}
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			kindErr("a single value")
		}
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// fieldsOf maps the yaml keys of struct t (inline fields flattened) to
// their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range fieldsOf(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// Nearest suggests the known key closest to k when it is a plausible typo
// (at most two edits away), or "".
func Nearest(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
