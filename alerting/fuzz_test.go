package alerting_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/burnrate/burnrate/alerting"
)

// FuzzPostAlerts feeds arbitrary bodies to POST /api/v2/alerts: the answer
// is always one of the documented statuses and the API keeps serving.
//
//	go test ./alerting -run '^$' -fuzz FuzzPostAlerts -fuzztime 60s
func FuzzPostAlerts(f *testing.F) {
	for _, s := range []string{
		`[{"labels":{"alertname":"A","severity":"page"},"annotations":{"summary":"s"},"startsAt":"2026-03-02T10:00:00Z"}]`,
		`[{"labels":{"alertname":"A"},"endsAt":"2026-03-02T09:00:00Z","startsAt":"2026-03-02T10:00:00Z"}]`,
		`[]`, `{}`, `[{}]`, `[{"labels":{"":"x"}}]`, `[{"labels":{"a":""}}]`, `null`,
	} {
		f.Add(s)
	}
	fx := newFixture(f, alerting.DefaultConfig())
	h := fx.m.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v2/alerts", strings.NewReader(body)))
		switch w.Code {
		case 200, 400, 413, 422:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/alerts", nil))
		if w.Code != 200 {
			t.Fatalf("GET after %q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzPostSilences does the same for POST /api/v2/silences.
//
//	go test ./alerting -run '^$' -fuzz FuzzPostSilences -fuzztime 60s
func FuzzPostSilences(f *testing.F) {
	for _, s := range []string{
		`{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T11:00:00Z","createdBy":"me","comment":"c"}`,
		`{"matchers":[{"name":"a","value":"(","isRegex":true}],"startsAt":"2026-03-02T10:00:00Z","endsAt":"2026-03-02T11:00:00Z","createdBy":"me","comment":"c"}`,
		`{"id":"x","matchers":[]}`, `{}`, `[]`,
	} {
		f.Add(s)
	}
	fx := newFixture(f, alerting.DefaultConfig())
	h := fx.m.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v2/silences", strings.NewReader(body)))
		switch w.Code {
		case 200, 400, 404, 413, 422:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
