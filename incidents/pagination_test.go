package incidents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

type pageJSON struct {
	Incidents []incidents.Incident `json:"incidents"`
	Next      *string              `json:"next"`
}

func TestFollowingNextWalksEveryIncidentOnceNewestFirst(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 23 {
		_, err := e.svc.Declare(ctx, incidents.NewIncident{Title: fmt.Sprintf("incident %d", i+1), Severity: "SEV3"})
		require.NoError(t, err)
	}
	var seen []int64
	var pages int
	query := "?limit=5"
	for {
		var p pageJSON
		require.Equal(t, 200, e.call(t, "GET", "/api/v1/incidents"+query, nil, &p))
		pages++
		for _, inc := range p.Incidents {
			seen = append(seen, inc.ID)
		}
		if pages == 2 {
			// An incident declared mid-walk is newer than every cursor:
			// it shows on the next walk, and this one neither repeats nor
			// skips anything.
			_, err := e.svc.Declare(ctx, incidents.NewIncident{Title: "late", Severity: "SEV3"})
			require.NoError(t, err)
		}
		if p.Next == nil {
			require.LessOrEqual(t, len(p.Incidents), 5)
			break
		}
		require.Len(t, p.Incidents, 5)
		require.NotEmpty(t, *p.Next)
		query = "?limit=5&cursor=" + url.QueryEscape(*p.Next)
	}
	var want []int64
	for id := int64(23); id >= 1; id-- {
		want = append(want, id)
	}
	require.Equal(t, want, seen)
	require.Equal(t, 5, pages)

	// Filters hold across pages.
	_, err := e.svc.Resolve(ctx, 20, incidents.Actor{By: "ann"}, "")
	require.NoError(t, err)
	var p pageJSON
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/incidents?status=open&limit=4", nil, &p))
	require.Equal(t, []int64{24, 23, 22, 21}, ids(p.Incidents))
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/incidents?status=open&limit=4&cursor="+url.QueryEscape(*p.Next), nil, &p))
	require.Equal(t, []int64{19, 18, 17, 16}, ids(p.Incidents), "the resolved 20 is skipped")

	// Without a limit a page holds 100.
	p = pageJSON{}
	require.Equal(t, 200, e.call(t, "GET", "/api/v1/incidents", nil, &p))
	require.Len(t, p.Incidents, 24)
	require.Nil(t, p.Next)
}

func ids(list []incidents.Incident) []int64 {
	var out []int64
	for _, inc := range list {
		out = append(out, inc.ID)
	}
	return out
}

// An offset used to be ignored silently: every "page" was the first.
func TestUnknownListParametersAndBadCursorsAreRefusedByName(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.svc.Declare(context.Background(), incidents.NewIncident{Title: "x", Severity: "SEV3"})
	require.NoError(t, err)
	for _, tc := range []struct{ name, query, field string }{
		{"an offset", "?offset=20", "offset"},
		{"a misspelt limit", "?limt=5", "limt"},
		{"a cursor that is not one", "?cursor=page2", "cursor"},
		{"a cursor naming no incident", "?cursor=" + "YmVmb3JlOjA", "cursor"},
		{"a limit of zero", "?limit=0", "limit"},
		{"a limit above 1000", "?limit=1001", "limit"},
		{"a status given twice", "?status=open&status=resolved", "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body apiError
			require.Equal(t, 400, e.call(t, "GET", "/api/v1/incidents"+tc.query, nil, &body))
			require.Equal(t, tc.field, body.Field, body.Error)
			require.Equal(t, "bad_data", body.ErrorType)
		})
	}
}

// FuzzIncidentListQuery feeds GET /api/v1/incidents query strings: every
// answer is 200 or a 400 naming a field, never a 500 or a panic.
func FuzzIncidentListQuery(f *testing.F) {
	for _, q := range []string{"limit=5", "limit=5&cursor=YmVmb3JlOjM", "offset=20", "cursor=%%", "status=open&status=open",
		"cursor=YmVmb3JlOi0x", "limit=99999999999999999999", "severity=SEV1&service=api"} {
		f.Add(q)
	}
	e := newEnv(f, nil)
	for i := range 3 {
		_, err := e.svc.Declare(context.Background(), incidents.NewIncident{Title: fmt.Sprintf("i%d", i), Severity: "SEV3"})
		require.NoError(f, err)
	}
	h := e.svc.Handler()
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/api/v1/incidents", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
		case 400:
			var body apiError
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.NotEmpty(t, body.Field, body.Error)
		default:
			t.Fatalf("query %q: %d %s", query, rec.Code, rec.Body)
		}
	})
}
