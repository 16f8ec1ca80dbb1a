package yamlfile_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/yamlfile"
)

type inner struct {
	Name  string            `yaml:"name"`
	Tags  []string          `yaml:"tags"`
	Extra map[string]string `yaml:"extra"`
}

type doc struct {
	Items []inner `yaml:"items"`
	Count int     `yaml:"count"`
}

func TestDecodeReportsEveryProblemWithFileLineAndKey(t *testing.T) {
	_, err := yamlfile.Decode("f.yml", []byte(`
items:
  - name: a
    nmae: typo
    tags: notalist
count: [1]
colour: red
`), &doc{})
	require.Error(t, err)
	var list interface{ Unwrap() []error }
	require.True(t, errors.As(err, &list))
	var msgs []string
	for _, e := range list.Unwrap() {
		msgs = append(msgs, e.Error())
	}
	require.Equal(t, []string{
		`f.yml:4: items[0].nmae: unknown key "nmae" (did you mean "name"?)`,
		`f.yml:5: items[0].tags: expected a list, got "notalist"`,
		`f.yml:6: count: expected a single value, got a list`,
		`f.yml:7: colour: unknown key "colour"`,
	}, msgs)
}

func TestDecodeFillsTheValueAndLocatesKeysForLaterErrors(t *testing.T) {
	var d doc
	got, err := yamlfile.Decode("f.yml", []byte("count: 2\nitems:\n  - name: a\n  - name: b\n    extra: {k: v}\n"), &d)
	require.NoError(t, err)
	require.Equal(t, doc{Count: 2, Items: []inner{{Name: "a"}, {Name: "b", Extra: map[string]string{"k": "v"}}}}, d)
	require.Equal(t, 4, got.Line("items[1]"))
	require.Equal(t, 5, got.Line("items[1].extra.k"))
	require.Equal(t, 4, got.Line("items[1].missing"), "a missing key points at its nearest parent")
	require.EqualError(t, got.Errorf("items[1].name", "%q is taken", "b"), `f.yml:4: items[1].name: "b" is taken`)
}

func TestDecodeRefusesEmptyFilesSyntaxErrorsAndSeveralDocuments(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"an empty file", "", "f.yml: the file is empty"},
		{"a syntax error names its line once", "count: 1\nitems: [\n", "f.yml:2: did not find expected node content"},
		{"two documents", "count: 1\n---\ncount: 2\n", "f.yml:2: more than one YAML document"},
		{"a value of the wrong type", "count: many\n", "f.yml:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := yamlfile.Decode("f.yml", []byte(tc.yaml), &doc{})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNearestSuggestsOnlyPlausibleTypos(t *testing.T) {
	fields := map[string]reflect.Type{"retention": nil, "interval": nil}
	require.Equal(t, "retention", yamlfile.Nearest("retnetion", fields))
	require.Empty(t, yamlfile.Nearest("colour", fields))
}
