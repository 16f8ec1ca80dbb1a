package faults

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Handler serves the fault API, mounted by the app under /api/v1/demo/:
//
//	GET    /api/v1/demo/faults         active flags and the catalogue
//	PUT    /api/v1/demo/faults/{name}  set a flag: {"value": "0.1", "source": "cli"}
//	POST   /api/v1/demo/faults/{name}  same as PUT
//	DELETE /api/v1/demo/faults/{name}  clear one flag
//	DELETE /api/v1/demo/faults         clear every flag
//	GET    /api/v1/demo/events         recorded changes (?since=RFC3339&limit=N)
//
// Mutating calls are guarded by the bearer token: on Burnrate's main
// listener by the listener itself, on a tier's own listener by
// RequireToken.
func (s *Set) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/demo/faults", s.serveList)
	mux.HandleFunc("PUT /api/v1/demo/faults/{name}", s.serveSet)
	mux.HandleFunc("POST /api/v1/demo/faults/{name}", s.serveSet)
	mux.HandleFunc("DELETE /api/v1/demo/faults/{name}", s.serveClear)
	mux.HandleFunc("DELETE /api/v1/demo/faults", s.serveClear)
	mux.HandleFunc("GET /api/v1/demo/events", s.serveEvents)
	return mux
}

// ListResponse is the data of GET /api/v1/demo/faults.
type ListResponse struct {
	Active  []Value `json:"active"`
	Catalog []Spec  `json:"catalog"`
}

func (s *Set) serveList(w http.ResponseWriter, _ *http.Request) {
	httpserver.WriteData(w, http.StatusOK, ListResponse{Active: s.Values(), Catalog: Catalog})
}

// SetRequest is the body of PUT /api/v1/demo/faults/{name}. Value may be a
// JSON string or number.
type SetRequest struct {
	Value  json.RawMessage `json:"value"`
	Source string          `json:"source"`
}

func (s *Set) serveSet(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", "read body: "+err.Error())
		return
	}
	var req SetRequest
	if err := json.Unmarshal(body, &req); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", `body: want {"value": ...}: `+err.Error())
		return
	}
	raw, err := rawValue(req.Value)
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	v, err := s.Set(r.Context(), r.PathValue("name"), raw, sourceOf(req.Source))
	if err != nil {
		writeFaultError(w, err)
		return
	}
	httpserver.WriteData(w, http.StatusOK, v)
}

func rawValue(m json.RawMessage) (string, error) {
	if len(m) == 0 {
		return "", errors.New(`body: "value" is missing`)
	}
	var str string
	if err := json.Unmarshal(m, &str); err == nil {
		return str, nil
	}
	var num json.Number
	if err := json.Unmarshal(m, &num); err == nil {
		return num.String(), nil
	}
	return "", fmt.Errorf(`body: "value" must be a string or a number, got %s`, m)
}

func sourceOf(s string) string {
	if s == "" || len(s) > 64 {
		return "api"
	}
	return s
}

func (s *Set) serveClear(w http.ResponseWriter, r *http.Request) {
	cleared, err := s.Clear(r.Context(), r.PathValue("name"), sourceOf(r.URL.Query().Get("source")))
	if err != nil {
		writeFaultError(w, err)
		return
	}
	if cleared == nil {
		cleared = []string{}
	}
	httpserver.WriteData(w, http.StatusOK, map[string][]string{"cleared": cleared})
}

func (s *Set) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpserver.WriteError(w, http.StatusBadRequest, "bad_data", "since: want an RFC 3339 time: "+err.Error())
			return
		}
		since = t
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 10000 {
			httpserver.WriteError(w, http.StatusBadRequest, "bad_data", "limit: want a whole number between 1 and 10000")
			return
		}
		limit = n
	}
	events, err := s.Events(r.Context(), since, limit)
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteData(w, http.StatusOK, events)
}

func writeFaultError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownFlag):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrBadValue):
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
	default:
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// RequireToken guards the mutating calls of h (PUT, POST, DELETE) with the
// bearer token, as Burnrate's main listener does for its whole API: a tier
// that serves the fault API on its own listener must not let anyone who can
// reach it break the platform. Reads stay open. An empty token guards
// nothing.
func RequireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="burnrate"`)
				httpserver.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
