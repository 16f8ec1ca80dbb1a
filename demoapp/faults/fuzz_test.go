package faults_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/burnrate/burnrate/demoapp/faults"
)

// FuzzSetValue feeds arbitrary flag names and values: a value is either
// accepted and reads back canonically, or refused with a sentinel error.
func FuzzSetValue(f *testing.F) {
	for _, s := range faults.Catalog {
		f.Add(s.Name, s.Example)
	}
	f.Add("store.shard_slow", "1@1s,0,3@-1s")
	f.Add("dependency.unreachable", "api,,store")
	f.Fuzz(func(t *testing.T, name, value string) {
		set := faults.New()
		v, err := set.Set(context.Background(), name, value, "fuzz")
		if err != nil {
			if !errors.Is(err, faults.ErrBadValue) && !errors.Is(err, faults.ErrUnknownFlag) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if len(set.Values()) != 0 {
				t.Fatal("a refused value changed the set")
			}
			return
		}
		again, err := faults.New().Set(context.Background(), name, v.Value, "fuzz")
		if err != nil || again.Value != v.Value {
			t.Fatalf("canonical value %q of %q does not read back: %v", v.Value, value, err)
		}
	})
}

// FuzzHandler sends arbitrary bodies to the set endpoint: the answer is 200,
// 400 or 404, never a panic or a 500.
func FuzzHandler(f *testing.F) {
	f.Add("api.latency", `{"value":"100ms"}`)
	f.Add("api.error_fraction", `{"value":0.5,"source":"ui"}`)
	f.Add("cache.mode", `{"value":null}`)
	f.Add("x", `[`)
	f.Fuzz(func(t *testing.T, name, body string) {
		if strings.ContainsAny(name, "/?#%") || name == "" {
			return
		}
		h := faults.New().Handler()
		req := httptest.NewRequest(http.MethodPut, "/api/v1/demo/faults/x", strings.NewReader(body))
		req.SetPathValue("name", name)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("status %d for %q %q: %s", rec.Code, name, body, rec.Body)
		}
	})
}
