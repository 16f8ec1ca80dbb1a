package tracestore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Handler serves the trace API:
//
//	GET /api/v1/traces/{traceID}   the whole trace as OTLP/JSON
//	GET /api/v1/traces?service=&status=&min_duration=&max_duration=&start=&end=&limit=
//
// in Prometheus's envelope: {"status":"success","data":...} or
// {"status":"error","errorType":"...","error":"..."}.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/traces", s.serveSearch)
	mux.HandleFunc("/api/v1/traces/{traceID}", s.serveTrace)
	return mux
}

// Error types, as Prometheus's API names them.
const (
	errBadData   = "bad_data"
	errNotFound  = "not_found"
	errInternal  = "internal"
	errMethod    = "method_not_allowed"
	errCancelled = "canceled"
)

func (s *Store) serveTrace(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	raw := r.PathValue("traceID")
	id, err := ParseTraceID(raw)
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, errBadData, err.Error())
		return
	}
	td, err := s.Trace(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, errNotFound, fmt.Sprintf("trace %s not found", hex.EncodeToString(id[:])))
		return
	case err != nil && r.Context().Err() != nil:
		httpserver.WriteError(w, 499, errCancelled, err.Error())
		return
	case err != nil:
		httpserver.WriteError(w, http.StatusInternalServerError, errInternal, err.Error())
		return
	}
	var m ptrace.JSONMarshaler
	data, err := m.MarshalTraces(td)
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, errInternal, err.Error())
		return
	}
	writeSuccess(w, json.RawMessage(data))
}

func (s *Store) serveSearch(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	q, err := ParseQuery(r)
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, errBadData, err.Error())
		return
	}
	writeSuccess(w, s.Search(q))
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	httpserver.WriteError(w, http.StatusMethodNotAllowed, errMethod, fmt.Sprintf("method %s not allowed, use GET", r.Method))
	return false
}

// ParseTraceID reads a trace ID written as 32 hex digits, the way OTLP/JSON,
// W3C traceparent and metric exemplars (trace_id label) write it. Upper case
// is accepted; a 16-digit (64-bit, Jaeger-style) ID is zero-extended.
func ParseTraceID(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	if len(s) == 16 {
		s = strings.Repeat("0", 16) + s
	}
	if len(s) != 32 {
		return id, fmt.Errorf("invalid trace ID %q: want 32 hex digits", truncate(s, 64))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid trace ID %q: want 32 hex digits", truncate(s, 64))
	}
	if id.IsEmpty() {
		return id, errors.New("invalid trace ID: all zeros")
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ParseQuery reads search parameters: service, status (ok, error, unset),
// min_duration and max_duration (a Go duration such as 200ms or 1.5s, or
// seconds), start and end (RFC 3339 or unix seconds, as Prometheus takes
// them) and limit (default 20, at most 1000).
func ParseQuery(r *http.Request) (Query, error) {
	if err := r.ParseForm(); err != nil {
		return Query{}, fmt.Errorf("invalid parameters: %w", err)
	}
	v := r.Form
	q := Query{Service: v.Get("service"), Limit: defaultLimit}
	switch st := Status(v.Get("status")); st {
	case "", StatusOK, StatusError, StatusUnset:
		q.Status = st
	default:
		return Query{}, fmt.Errorf("invalid parameter \"status\": %q is not one of ok, error, unset", truncate(string(st), 64))
	}
	var err error
	if q.MinDuration, err = durationParam(v.Get("min_duration"), "min_duration"); err != nil {
		return Query{}, err
	}
	if q.MaxDuration, err = durationParam(v.Get("max_duration"), "max_duration"); err != nil {
		return Query{}, err
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return Query{}, errors.New("invalid parameter \"max_duration\": below min_duration")
	}
	if q.Start, err = timeParam(v.Get("start"), "start"); err != nil {
		return Query{}, err
	}
	if q.End, err = timeParam(v.Get("end"), "end"); err != nil {
		return Query{}, err
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return Query{}, errors.New("invalid parameter \"end\": end timestamp must not be before start time")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return Query{}, fmt.Errorf("invalid parameter \"limit\": %q is not a positive integer", truncate(l, 64))
		}
		q.Limit = min(n, maxLimit)
	}
	return q, nil
}

func durationParam(s, name string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64/1e9 {
			return 0, fmt.Errorf("invalid parameter %q: cannot parse %q to a valid duration", name, truncate(s, 64))
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid parameter %q: %q is negative", name, truncate(s, 64))
	}
	return d, nil
}

// timeParam parses a time like Prometheus's API: unix seconds (fractions
// allowed) or RFC 3339.
func timeParam(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/1e9 {
			return time.Time{}, fmt.Errorf("invalid parameter %q: %q is out of range", name, truncate(s, 64))
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid parameter %q: cannot parse %q to a valid timestamp", name, truncate(s, 64))
	}
	return t, nil
}

func writeSuccess(w http.ResponseWriter, data any) {
	body, err := json.Marshal(struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", data})
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, errInternal, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
