package tracestore

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func get(t *testing.T, method, url string) (int, apiResponse) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var r apiResponse
	require.NoError(t, json.Unmarshal(body, &r), "body: %s", body)
	return resp.StatusCode, r
}

func TestHandlerTraceByID(t *testing.T) {
	s := searchFixture(t)
	appendAll(t, s.Store, batch(span{service: "demo-cache", name: "GET", trace: traceC, id: "cccccccccccccccc"}))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		name      string
		id        string
		code      int
		errorType string
		spans     []string
	}{
		{"a known ID returns the whole trace as OTLP/JSON", traceA, 200, "", []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}},
		{"upper-case hex finds the same trace", strings.ToUpper(traceA), 200, "", []string{"demo-api/checkout", "demo-edge/GET /checkout", "demo-store/SELECT"}},
		{"a 64-bit ID is zero-extended", "0000000000c0ffee", 200, "", []string{"demo-cache/GET"}},
		{"an unknown ID is 404", traceUnknown, 404, "not_found", nil},
		{"a short ID is 400", "0af7651916cd43dd8448", 400, "bad_data", nil},
		{"an ID of the wrong length is 400", "0af7651916cd43dd8448eb211c8031", 400, "bad_data", nil},
		{"non-hex is 400", "zzf7651916cd43dd8448eb211c80319c", 400, "bad_data", nil},
		{"all zeros is 400", "00000000000000000000000000000000", 400, "bad_data", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, r := get(t, http.MethodGet, srv.URL+"/api/v1/traces/"+tc.id)
			require.Equal(t, tc.code, code, "error: %s", r.Error)
			if tc.code != 200 {
				require.Equal(t, "error", r.Status)
				require.Equal(t, tc.errorType, r.ErrorType)
				require.NotEmpty(t, r.Error)
				return
			}
			require.Equal(t, "success", r.Status)
			var u ptrace.JSONUnmarshaler
			td, err := u.UnmarshalTraces(r.Data)
			require.NoError(t, err)
			require.Equal(t, tc.spans, spanNames(td))
			require.Contains(t, string(r.Data), `"traceId":"`+strings.ToLower(strings.Repeat("0", 32-len(tc.id))+tc.id)+`"`, "OTLP/JSON writes IDs as lowercase hex")
		})
	}
}

func TestHandlerSearch(t *testing.T) {
	s := searchFixture(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	unix := func(d time.Duration) string {
		return strconv.FormatFloat(float64(t0.Add(d).UnixNano())/1e9, 'f', -1, 64)
	}

	for _, tc := range []struct {
		name      string
		query     url.Values
		code      int
		errorType string
		want      []string
	}{
		{"the example from the docs", url.Values{"service": {"demo-api"}, "status": {"error"}, "min_duration": {"200ms"}, "limit": {"20"}}, 200, "", []string{traceA}},
		{"start and end as unix seconds", url.Values{"start": {unix(500 * time.Millisecond)}, "end": {unix(2100 * time.Millisecond)}}, 200, "", []string{traceHealth, traceB}},
		{"start and end as RFC 3339", url.Values{"start": {t0.Add(500 * time.Millisecond).Format(time.RFC3339Nano)}, "end": {t0.Add(2100 * time.Millisecond).Format(time.RFC3339)}}, 200, "", []string{traceHealth, traceB}},
		{"min_duration in seconds", url.Values{"min_duration": {"0.25"}}, 200, "", []string{traceHealth, traceA}},
		{"no match is an empty list, not null", url.Values{"service": {"nobody"}}, 200, "", []string{}},
		{"limit above the maximum is capped", url.Values{"limit": {"100000"}}, 200, "", []string{traceCache, traceNoRoot, traceHealth, traceB, traceA}},
		{"an unknown status is 400", url.Values{"status": {"failed"}}, 400, "bad_data", nil},
		{"a bad min_duration is 400", url.Values{"min_duration": {"soon"}}, 400, "bad_data", nil},
		{"a negative min_duration is 400", url.Values{"min_duration": {"-1s"}}, 400, "bad_data", nil},
		{"max_duration below min_duration is 400", url.Values{"min_duration": {"2s"}, "max_duration": {"1s"}}, 400, "bad_data", nil},
		{"a bad start is 400", url.Values{"start": {"yesterday"}}, 400, "bad_data", nil},
		{"a NaN end is 400", url.Values{"end": {"NaN"}}, 400, "bad_data", nil},
		{"end before start is 400", url.Values{"start": {"2000"}, "end": {"1000"}}, 400, "bad_data", nil},
		{"limit 0 is 400", url.Values{"limit": {"0"}}, 400, "bad_data", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, r := get(t, http.MethodGet, srv.URL+"/api/v1/traces?"+tc.query.Encode())
			require.Equal(t, tc.code, code, "error: %s", r.Error)
			if tc.code != 200 {
				require.Equal(t, "error", r.Status)
				require.Equal(t, tc.errorType, r.ErrorType)
				require.NotEmpty(t, r.Error)
				return
			}
			var sums []TraceSummary
			require.NoError(t, json.Unmarshal(r.Data, &sums))
			require.NotNil(t, sums)
			require.Equal(t, tc.want, ids(sums))
		})
	}
}

func TestHandlerRejectsOtherMethods(t *testing.T) {
	s := searchFixture(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/traces", "/api/v1/traces/" + traceA} {
		code, r := get(t, http.MethodDelete, srv.URL+path)
		require.Equal(t, http.StatusMethodNotAllowed, code)
		require.Equal(t, "error", r.Status)
	}
}
