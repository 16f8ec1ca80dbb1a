package incidents

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Prefixes are the URL paths Handler serves; internal/app mounts each of
// them (and the path with a trailing slash).
var Prefixes = []string{
	"/api/v1/incidents", "/api/v1/schedules", "/api/v1/users", "/api/v1/oncall",
	"/api/v1/escalation-policies", "/api/v1/slack",
}

// Handler serves the incidents, on-call and Slack APIs.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/incidents", s.handleList)
	mux.HandleFunc("POST /api/v1/incidents", s.handleDeclare)
	mux.HandleFunc("POST /api/v1/incidents/events", s.handleRecord)
	mux.HandleFunc("GET /api/v1/incidents/{id}", s.withIncident(s.handleGet))
	mux.HandleFunc("GET /api/v1/incidents/{id}/timeline", s.withIncident(s.handleTimeline))
	mux.HandleFunc("GET /api/v1/incidents/{id}/postmortem", s.withIncident(s.handlePostmortem))
	mux.HandleFunc("POST /api/v1/incidents/{id}/{action}", s.withIncident(s.handleAction))

	mux.HandleFunc("GET /api/v1/users", s.handleUsers)
	mux.HandleFunc("POST /api/v1/users", s.handlePutUser)
	mux.HandleFunc("PUT /api/v1/users/{id}", s.handlePutUser)
	mux.HandleFunc("GET /api/v1/users/{id}", s.handleGetUser)
	mux.HandleFunc("GET /api/v1/users/{id}/calendar.ics", s.handleUserCalendar)

	mux.HandleFunc("GET /api/v1/oncall", s.handleOnCall)
	mux.HandleFunc("GET /api/v1/schedules", s.handleSchedules)
	mux.HandleFunc("POST /api/v1/schedules", s.handlePutSchedule)
	mux.HandleFunc("PUT /api/v1/schedules/{id}", s.handlePutSchedule)
	mux.HandleFunc("GET /api/v1/schedules/{id}", s.handleGetSchedule)
	mux.HandleFunc("DELETE /api/v1/schedules/{id}", s.handleDeleteSchedule)
	mux.HandleFunc("GET /api/v1/schedules/{id}/oncall", s.handleOnCall)
	mux.HandleFunc("GET /api/v1/schedules/{id}/final", s.handleFinal)
	mux.HandleFunc("GET /api/v1/schedules/{id}/calendar.ics", s.handleScheduleCalendar)
	mux.HandleFunc("POST /api/v1/schedules/{id}/overrides", s.handleAddOverride)
	mux.HandleFunc("DELETE /api/v1/schedules/{id}/overrides/{oid}", s.handleDeleteOverride)
	mux.HandleFunc("POST /api/v1/schedules/{id}/swaps", s.handleSwap)
	mux.HandleFunc("GET /api/v1/schedules/{id}/handoffs", s.handleHandoffs)

	mux.HandleFunc("GET /api/v1/escalation-policies", s.handlePolicies)
	mux.HandleFunc("POST /api/v1/escalation-policies", s.handlePutPolicy)
	mux.HandleFunc("PUT /api/v1/escalation-policies/{id}", s.handlePutPolicy)
	mux.HandleFunc("GET /api/v1/escalation-policies/{id}", s.handleGetPolicy)
	mux.HandleFunc("DELETE /api/v1/escalation-policies/{id}", s.handleDeletePolicy)

	mux.HandleFunc("POST /api/v1/slack/interactions", s.handleSlackInteraction)
	mux.HandleFunc("POST /api/v1/slack/commands", s.handleSlackCommand)
	return mux
}

// writeError maps the package's sentinel errors to HTTP statuses.
func writeError(w http.ResponseWriter, err error) {
	body := httpserver.ErrorBody{Status: "error", Error: err.Error()}
	code := http.StatusInternalServerError
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		code, body.ErrorType, body.Field = http.StatusBadRequest, "bad_data", fe.Field
	case errors.Is(err, ErrInvalid):
		code, body.ErrorType = http.StatusBadRequest, "bad_data"
	case errors.Is(err, ErrNotFound):
		code, body.ErrorType = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrConflict):
		code, body.ErrorType = http.StatusConflict, "conflict"
	default:
		body.ErrorType = "internal"
	}
	httpserver.WriteJSON(w, code, body)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors naming the field.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return invalid("body", "a JSON object is required")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid(te.Field, "want a %s, got JSON %s", te.Type, te.Value)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return invalid("body", "times must be RFC 3339 (2026-03-08T09:00:00Z): %v", err)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return invalid(strings.Trim(f, `"`), "unknown field")
		}
		return invalid("body", "%v", err)
	}
	if dec.More() {
		return invalid("body", "trailing data after the JSON object")
	}
	return nil
}

func (s *Service) withIncident(h func(http.ResponseWriter, *http.Request, int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, invalid("id", "%q is not an incident ID", r.PathValue("id")))
			return
		}
		h(w, r, id)
	}
}

// Incident list pages (GET /api/v1/incidents?limit=&cursor=).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// listParams are the query parameters GET /api/v1/incidents takes; any
// other is refused rather than ignored (an ignored offset would serve the
// first page forever).
var listParams = map[string]bool{"status": true, "severity": true, "service": true, "limit": true, "cursor": true}

// encodeCursor makes the opaque cursor of the page after incident id.
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("before:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if v, ok := strings.CutPrefix(string(raw), "before:"); ok {
			if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
				return id, nil
			}
		}
	}
	return 0, invalid("cursor", "%q is not a cursor this server gave (pass the \"next\" of the previous page)", c)
}

// handleList serves incidents newest first, a page at a time: limit
// (default 100, at most 1000) per page, and next, when there are more,
// the cursor of the page after. Following next walks every incident once:
// the cursor is the last ID served, and IDs only grow.
func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k == "" {
			writeError(w, invalid("query", "a parameter without a name"))
			return
		}
		if !listParams[k] {
			writeError(w, invalid(k, "unknown query parameter (want status, severity, service, limit, cursor)"))
			return
		}
		if len(q[k]) > 1 {
			writeError(w, invalid(k, "given %d times", len(q[k])))
			return
		}
	}
	f := Filter{Status: q.Get("status"), Severity: q.Get("severity"), Service: q.Get("service"), Limit: defaultPageSize}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, invalid("limit", "%q is not a number from 1 to %d", v, maxPageSize))
			return
		}
		f.Limit = n
	}
	if v, ok := q["cursor"]; ok {
		before, err := decodeCursor(v[0])
		if err != nil {
			writeError(w, err)
			return
		}
		f.Before = before
	}
	size := f.Limit
	f.Limit++ // one more says whether there is a next page
	list, err := s.List(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	page := struct {
		Incidents []*Incident `json:"incidents"`
		Next      string      `json:"next,omitempty"`
	}{Incidents: list}
	if len(list) > size {
		page.Incidents = list[:size]
		page.Next = encodeCursor(list[size-1].ID)
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

func (s *Service) handleDeclare(w http.ResponseWriter, r *http.Request) {
	var n NewIncident
	if err := decode(r, &n); err != nil {
		writeError(w, err)
		return
	}
	n.By = httpserver.Actor(r, n.By)
	inc, err := s.Declare(r.Context(), n)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusCreated, inc)
}

func (s *Service) handleRecord(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Service string `json:"service"`
		Kind    string `json:"kind"`
		Source  string `json:"source"`
		Text    string `json:"text"`
	}
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Kind != EventFault && body.Kind != EventDeploy {
		writeError(w, invalid("kind", "%q is neither fault nor deploy", body.Kind))
		return
	}
	if body.Source == "" {
		body.Source = body.Kind
	}
	if err := s.Record(r.Context(), body.Service, body.Kind, body.Source, body.Text); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// incidentView is an incident with its timeline and the budget it spent.
type incidentView struct {
	*Incident
	Budget   *BudgetSpent `json:"budget,omitempty"`
	Timeline []Event      `json:"timeline"`
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, id int64) {
	inc, err := s.Get(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	tl, err := s.Timeline(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, incidentView{inc, s.budgetSpent(r.Context(), inc), tl})
}

func (s *Service) handleTimeline(w http.ResponseWriter, r *http.Request, id int64) {
	tl, err := s.Timeline(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"timeline": tl})
}

func (s *Service) handlePostmortem(w http.ResponseWriter, r *http.Request, id int64) {
	md, err := s.Postmortem(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	_, _ = w.Write(md)
}

// actionBody is the body of POST /api/v1/incidents/{id}/{action}.
type actionBody struct {
	By     string `json:"by"`
	Source string `json:"source"`
	Text   string `json:"text"`
	User   string `json:"user"`
	Role   string `json:"role"`
}

func (s *Service) handleAction(w http.ResponseWriter, r *http.Request, id int64) {
	var b actionBody
	if r.ContentLength != 0 {
		if err := decode(r, &b); err != nil {
			writeError(w, err)
			return
		}
	}
	if b.Source != "" && b.Source != "api" && b.Source != "cli" {
		writeError(w, invalid("source", "%q is neither api nor cli", b.Source))
		return
	}
	// With a token the change is the token's: a by in the body is ignored.
	a := Actor{By: httpserver.Actor(r, b.By), Source: b.Source}
	var inc *Incident
	var err error
	switch r.PathValue("action") {
	case "ack", "acknowledge":
		inc, err = s.Acknowledge(r.Context(), id, a)
	case "resolve":
		inc, err = s.Resolve(r.Context(), id, a, b.Text)
	case "reopen":
		inc, err = s.Reopen(r.Context(), id, a, b.Text)
	case "note", "notes":
		inc, err = s.AddNote(r.Context(), id, a, b.Text)
	case "assign":
		inc, err = s.Assign(r.Context(), id, a, b.User, b.Role)
	case "escalate":
		inc, err = s.EscalateNow(r.Context(), id, a)
	default:
		writeError(w, fmt.Errorf("action %q (want ack, resolve, reopen, note, assign, escalate): %w", r.PathValue("action"), ErrNotFound))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, inc)
}

func (s *Service) handleUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.Users(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"users": us})
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, u)
}

// samePathID refuses a body whose id differs from the URL's.
func samePathID(r *http.Request, id *string) error {
	p := r.PathValue("id")
	if p == "" {
		return nil
	}
	if *id == "" {
		*id = p
	}
	if *id != p {
		return invalid("id", "%q differs from the URL's %q", *id, p)
	}
	return nil
}

func (s *Service) handlePutUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := decode(r, &u); err != nil {
		writeError(w, err)
		return
	}
	if err := samePathID(r, &u.ID); err != nil {
		writeError(w, err)
		return
	}
	if err := s.PutUser(r.Context(), &u); err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, u)
}

func (s *Service) handleSchedules(w http.ResponseWriter, r *http.Request) {
	scs, err := s.Schedules(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"schedules": scs})
}

func (s *Service) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	sc, err := s.Schedule(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, sc)
}

func (s *Service) handlePutSchedule(w http.ResponseWriter, r *http.Request) {
	var sc Schedule
	if err := decode(r, &sc); err != nil {
		writeError(w, err)
		return
	}
	if err := samePathID(r, &sc.ID); err != nil {
		writeError(w, err)
		return
	}
	if len(sc.Overrides) > 0 {
		writeError(w, invalid("overrides", "add overrides through /api/v1/schedules/{id}/overrides"))
		return
	}
	if err := s.PutSchedule(r.Context(), &sc); err != nil {
		writeError(w, err)
		return
	}
	// Answer with the schedule as stored, as GET returns it (its
	// overrides included).
	stored, err := s.Schedule(r.Context(), sc.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	code := http.StatusOK
	if r.Method == http.MethodPost {
		code = http.StatusCreated
	}
	httpserver.WriteJSON(w, code, stored)
}

func (s *Service) handleDeleteSchedule(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteSchedule(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// timeParam reads an RFC 3339 query parameter, def when absent.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalid(name, "%q is not an RFC 3339 time", v)
	}
	return t, nil
}

func (s *Service) handleOnCall(w http.ResponseWriter, r *http.Request) {
	at, err := timeParam(r, "at", s.now())
	if err != nil {
		writeError(w, err)
		return
	}
	oc, err := s.WhoIsOnCall(r.Context(), r.PathValue("id"), at)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"oncall": oc})
}

func (s *Service) handleFinal(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	from, err := timeParam(r, "from", now)
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := timeParam(r, "to", from.Add(7*24*time.Hour))
	if err != nil {
		writeError(w, err)
		return
	}
	if !to.After(from) {
		writeError(w, invalid("to", "must be after from"))
		return
	}
	if to.Sub(from) > 366*24*time.Hour {
		writeError(w, invalid("to", "the range may span at most 366 days"))
		return
	}
	sc, err := s.Schedule(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"schedule": sc.ID, "time_zone": sc.TimeZone, "from": from.UTC(), "to": to.UTC(),
		"shifts": nonNil(sc.Final(from, to))})
}

func nonNil(s []Shift) []Shift {
	if s == nil {
		return []Shift{}
	}
	return s
}

func (s *Service) handleAddOverride(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Override
		By string `json:"by"`
	}
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	o := body.Override
	if o.ID != 0 {
		writeError(w, invalid("id", "is assigned by the server"))
		return
	}
	if o.CreatedBy != "" {
		writeError(w, invalid("created_by", "is recorded by the server (the token's name, else by)"))
		return
	}
	o.CreatedBy = httpserver.Actor(r, body.By)
	out, err := s.AddOverride(r.Context(), r.PathValue("id"), o)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusCreated, out)
}

func (s *Service) handleDeleteOverride(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("oid"), 10, 64)
	if err != nil {
		writeError(w, invalid("oid", "%q is not an override ID", r.PathValue("oid")))
		return
	}
	if err := s.DeleteOverride(r.Context(), r.PathValue("id"), id); err != nil {
		writeError(w, err)
		return
	}
	s.logger.Info("override deleted", "schedule", r.PathValue("id"), "override", id, "by", httpserver.Actor(r, ""))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleSwap(w http.ResponseWriter, r *http.Request) {
	var sw Swap
	if err := decode(r, &sw); err != nil {
		writeError(w, err)
		return
	}
	sw.By = httpserver.Actor(r, sw.By)
	out, err := s.SwapShifts(r.Context(), r.PathValue("id"), sw)
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusCreated, map[string]any{"overrides": out})
}

func (s *Service) handlePolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Policies(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"escalation_policies": ps})
}

func (s *Service) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.GetPolicy(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, p)
}

func (s *Service) handlePutPolicy(w http.ResponseWriter, r *http.Request) {
	var p Policy
	if err := decode(r, &p); err != nil {
		writeError(w, err)
		return
	}
	if err := samePathID(r, &p.ID); err != nil {
		writeError(w, err)
		return
	}
	if err := s.PutPolicy(r.Context(), &p); err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, p)
}

func (s *Service) handleDeletePolicy(w http.ResponseWriter, r *http.Request) {
	if err := s.DeletePolicy(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleHandoffs(w http.ResponseWriter, r *http.Request) {
	hs, err := s.Handoffs(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"handoffs": hs})
}
