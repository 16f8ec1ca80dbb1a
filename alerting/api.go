package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// maxBodyBytes bounds request bodies of the API.
const maxBodyBytes = 16 << 20

// Handler serves Alertmanager's API v2 subset that Prometheus and amtool
// use. Mount it at /api/v2/.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/alerts", m.postAlerts)
	mux.HandleFunc("GET /api/v2/alerts", m.getAlerts)
	mux.HandleFunc("GET /api/v2/silences", m.getSilences)
	mux.HandleFunc("POST /api/v2/silences", m.postSilences)
	mux.HandleFunc("GET /api/v2/silence/{id}", m.getSilence)
	mux.HandleFunc("DELETE /api/v2/silence/{id}", m.deleteSilence)
	mux.HandleFunc("GET /api/v2/status", m.getStatus)
	mux.HandleFunc("GET /api/v2/receivers", m.getReceivers)
	mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, 404, fmt.Sprintf("path %s was not found", r.URL.Path))
	})
	return mux
}

// writeAPIError answers like go-openapi does for requests that fail
// parsing or schema validation: {"code":N,"message":"..."}.
func writeAPIError(w http.ResponseWriter, status, code int, msg string) {
	httpserver.WriteJSON(w, status, map[string]any{"code": code, "message": msg})
}

// writeMessage answers like Alertmanager's handlers do for semantic
// errors: the message as a JSON string.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	httpserver.WriteJSON(w, status, msg)
}

func (m *Manager) postAlerts(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, 413, fmt.Sprintf("reading alerts body failed: %v", err))
		return
	}
	var in models.PostableAlerts
	if err := json.Unmarshal(body, &in); err != nil {
		writeAPIError(w, http.StatusBadRequest, 400, fmt.Sprintf("parsing alerts body from \"\" failed, because %v", err))
		return
	}
	if err := in.Validate(strfmt.Default); err != nil {
		m.invalid.Add(float64(len(in)))
		writeAPIError(w, http.StatusUnprocessableEntity, 602, err.Error())
		return
	}
	now := m.now()
	var valid []*Alert
	var errs error
	for _, pa := range in {
		a := &Alert{
			Labels:       model.LabelSet{},
			Annotations:  model.LabelSet{},
			StartsAt:     time.Time(pa.StartsAt),
			EndsAt:       time.Time(pa.EndsAt),
			GeneratorURL: string(pa.GeneratorURL),
			UpdatedAt:    now,
		}
		for k, v := range pa.Labels {
			if v != "" { // Alertmanager drops empty labels
				a.Labels[model.LabelName(k)] = model.LabelValue(v)
			}
		}
		for k, v := range pa.Annotations {
			a.Annotations[model.LabelName(k)] = model.LabelValue(v)
		}
		if a.StartsAt.IsZero() {
			if a.EndsAt.IsZero() {
				a.StartsAt = now
			} else {
				a.StartsAt = a.EndsAt
			}
		}
		if a.EndsAt.IsZero() {
			a.Timeout = true
			a.EndsAt = now.Add(m.cfg.ResolveTimeout)
		}
		if err := a.Validate(); err != nil {
			errs = errors.Join(errs, err)
			m.invalid.Inc()
			continue
		}
		valid = append(valid, a)
	}
	// Like Alertmanager, keep every valid alert even when others are not.
	if err := m.Put(r.Context(), valid...); err != nil {
		m.logger.Error("store alerts", "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	if errs != nil {
		writeMessage(w, http.StatusBadRequest, errs.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

// parseFilter parses the filter query parameters, one matcher each.
func parseFilter(r *http.Request) (Matchers, error) {
	var out Matchers
	for _, f := range r.URL.Query()["filter"] {
		m, err := labels.ParseMatcher(f)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s in query must be of type boolean: %q", name, v)
	}
	return b, nil
}

// alertStatus is the API status of one alert at one instant.
type alertStatus struct {
	state       string
	silencedBy  []string
	inhibitedBy []string
}

func (m *Manager) statusOf(a *Alert, inh *inhibitions, now time.Time) alertStatus {
	st := alertStatus{silencedBy: m.silences.Mutes(a.Labels, now), inhibitedBy: inh.inhibitedBy(a)}
	sort.Strings(st.inhibitedBy)
	st.state = models.AlertStatusStateActive
	if len(st.silencedBy) > 0 || len(st.inhibitedBy) > 0 {
		st.state = models.AlertStatusStateSuppressed
	}
	return st
}

func (m *Manager) getAlerts(w http.ResponseWriter, r *http.Request) {
	matchers, err := parseFilter(r)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	var flags [4]bool
	for i, p := range []string{"active", "silenced", "inhibited", "unprocessed"} {
		if flags[i], err = boolParam(r, p, true); err != nil {
			writeAPIError(w, http.StatusBadRequest, 400, err.Error())
			return
		}
	}
	showActive, showSilenced, showInhibited := flags[0], flags[1], flags[2]
	var receiverRe *regexp.Regexp
	if rv := r.URL.Query().Get("receiver"); rv != "" {
		if receiverRe, err = regexp.Compile("^(?:" + rv + ")$"); err != nil {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("failed to parse receiver param: %v", err))
			return
		}
	}
	now := m.now()
	all := m.snapshot()
	inh := m.disp.inhibitor.snapshot(all, now)
	res := models.GettableAlerts{}
	for _, a := range all {
		if a.Resolved(now) || !matchers.Matches(a.Labels) {
			continue
		}
		var receivers []*models.ReceiverReference
		var names []string
		for _, rt := range m.disp.route.Match(a.Labels) {
			name := rt.Receiver
			names = append(names, name)
			receivers = append(receivers, &models.ReceiverReference{Name: &name})
		}
		if receiverRe != nil && !anyMatch(receiverRe, names) {
			continue
		}
		st := m.statusOf(a, inh, now)
		if (!showSilenced && len(st.silencedBy) > 0) || (!showInhibited && len(st.inhibitedBy) > 0) ||
			(!showActive && st.state == models.AlertStatusStateActive) {
			continue
		}
		res = append(res, gettableAlert(a, st, receivers))
	}
	sort.Slice(res, func(i, j int) bool { return *res[i].Fingerprint < *res[j].Fingerprint })
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func anyMatch(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

func gettableAlert(a *Alert, st alertStatus, receivers []*models.ReceiverReference) *models.GettableAlert {
	fp := a.Fingerprint().String()
	startsAt, endsAt, updatedAt := strfmt.DateTime(a.StartsAt), strfmt.DateTime(a.EndsAt), strfmt.DateTime(a.UpdatedAt)
	state := st.state
	ga := &models.GettableAlert{
		Annotations: labelSet(a.Annotations),
		Receivers:   receivers,
		Fingerprint: &fp,
		StartsAt:    &startsAt,
		EndsAt:      &endsAt,
		UpdatedAt:   &updatedAt,
		Status: &models.AlertStatus{
			State:       &state,
			SilencedBy:  nonNil(st.silencedBy),
			InhibitedBy: nonNil(st.inhibitedBy),
			MutedBy:     []string{},
		},
	}
	ga.Labels = labelSet(a.Labels)
	ga.GeneratorURL = strfmt.URI(a.GeneratorURL)
	if ga.Receivers == nil {
		ga.Receivers = []*models.ReceiverReference{}
	}
	return ga
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func labelSet(ls model.LabelSet) models.LabelSet {
	out := models.LabelSet{}
	for k, v := range ls {
		out[string(k)] = string(v)
	}
	return out
}

func gettableSilence(s *Silence, now time.Time) *models.GettableSilence {
	id, state := s.ID, s.State(now)
	startsAt, endsAt, updatedAt := strfmt.DateTime(s.StartsAt), strfmt.DateTime(s.EndsAt), strfmt.DateTime(s.UpdatedAt)
	createdBy, comment := s.CreatedBy, s.Comment
	gs := &models.GettableSilence{ID: &id, Status: &models.SilenceStatus{State: &state}, UpdatedAt: &updatedAt}
	gs.StartsAt, gs.EndsAt, gs.CreatedBy, gs.Comment = &startsAt, &endsAt, &createdBy, &comment
	gs.Matchers = models.Matchers{}
	for _, m := range s.Matchers {
		name, value := m.Name, m.Value
		isRegex := m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp
		isEqual := m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp
		gs.Matchers = append(gs.Matchers, &models.Matcher{Name: &name, Value: &value, IsRegex: &isRegex, IsEqual: &isEqual})
	}
	return gs
}

// silenceMatchesFilter is Alertmanager's filter for silences: every filter
// matcher must equal one of the silence's matchers.
func silenceMatchesFilter(s *Silence, filter Matchers) bool {
	for _, f := range filter {
		found := false
		for _, m := range s.Matchers {
			if f.Name == m.Name && f.Type == m.Type && f.Value == m.Value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (m *Manager) getSilences(w http.ResponseWriter, r *http.Request) {
	matchers, err := parseFilter(r)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	now := m.now()
	res := models.GettableSilences{}
	for _, s := range m.silences.List() {
		if silenceMatchesFilter(s, matchers) {
			res = append(res, gettableSilence(s, now))
		}
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
}

func (m *Manager) postSilences(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, 413, fmt.Sprintf("reading silence body failed: %v", err))
		return
	}
	var ps models.PostableSilence
	if err := json.Unmarshal(body, &ps); err != nil {
		writeAPIError(w, http.StatusBadRequest, 400, fmt.Sprintf("parsing silence body from \"\" failed, because %v", err))
		return
	}
	if err := ps.Validate(strfmt.Default); err != nil {
		writeAPIError(w, http.StatusUnprocessableEntity, 602, err.Error())
		return
	}
	// With a token the silence is the token's, whatever createdBy says;
	// without one createdBy is kept, unverified, as Alertmanager keeps it.
	sil := &Silence{ID: ps.ID, StartsAt: time.Time(*ps.StartsAt), EndsAt: time.Time(*ps.EndsAt),
		CreatedBy: httpserver.Actor(r, *ps.CreatedBy), Comment: *ps.Comment}
	for _, pm := range ps.Matchers {
		t := labels.MatchEqual
		isEqual := pm.IsEqual == nil || *pm.IsEqual
		switch {
		case *pm.IsRegex && isEqual:
			t = labels.MatchRegexp
		case *pm.IsRegex:
			t = labels.MatchNotRegexp
		case !isEqual:
			t = labels.MatchNotEqual
		}
		lm, err := labels.NewMatcher(t, *pm.Name, *pm.Value)
		if err != nil {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("failed to convert API silence to internal silence: %v", err))
			return
		}
		sil.Matchers = append(sil.Matchers, lm)
	}
	if !sil.EndsAt.After(sil.StartsAt) {
		writeMessage(w, http.StatusBadRequest, "Failed to create silence: start time must be before end time")
		return
	}
	if sil.EndsAt.Before(m.now()) {
		writeMessage(w, http.StatusBadRequest, "Failed to create silence: end time can't be in the past")
		return
	}
	id, err := m.silences.Set(r.Context(), sil)
	switch {
	case errors.Is(err, ErrSilenceNotFound):
		writeMessage(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrInvalidSilence):
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		m.logger.Error("store silence", "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]string{"silenceID": id})
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// silenceID reads and checks the {id} path parameter (a UUID, as in
// Alertmanager's API schema).
func silenceID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !uuidRe.MatchString(id) {
		writeAPIError(w, http.StatusUnprocessableEntity, 605, fmt.Sprintf("silenceID in path must be of type uuid: %q", id))
		return "", false
	}
	return id, true
}

func (m *Manager) getSilence(w http.ResponseWriter, r *http.Request) {
	id, ok := silenceID(w, r)
	if !ok {
		return
	}
	s, err := m.silences.Get(id)
	if err != nil {
		writeMessage(w, http.StatusNotFound, err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, gettableSilence(s, m.now()))
}

func (m *Manager) deleteSilence(w http.ResponseWriter, r *http.Request) {
	id, ok := silenceID(w, r)
	if !ok {
		return
	}
	err := m.silences.Expire(r.Context(), id)
	switch {
	case errors.Is(err, ErrSilenceNotFound):
		writeMessage(w, http.StatusNotFound, err.Error())
	case err != nil:
		m.logger.Error("expire silence", "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (m *Manager) getStatus(w http.ResponseWriter, _ *http.Request) {
	uptime := strfmt.DateTime(m.started)
	disabled := models.ClusterStatusStatusDisabled
	goVersion := runtime.Version()
	v, rev, br, user, date := version.Version, version.Revision, version.Branch, version.BuildUser, version.BuildDate
	original := m.originalConfig()
	httpserver.WriteJSON(w, http.StatusOK, &models.AlertmanagerStatus{
		Uptime:      &uptime,
		VersionInfo: &models.VersionInfo{Version: &v, Revision: &rev, Branch: &br, BuildUser: &user, BuildDate: &date, GoVersion: &goVersion},
		Config:      &models.AlertmanagerConfig{Original: &original},
		Cluster:     &models.ClusterStatus{Status: &disabled, Peers: []*models.PeerStatus{}},
	})
}

func (m *Manager) getReceivers(w http.ResponseWriter, _ *http.Request) {
	seen := map[string]bool{}
	res := []*models.Receiver{}
	m.disp.route.Walk(func(r *Route) {
		if !seen[r.Receiver] {
			seen[r.Receiver] = true
			name := r.Receiver
			res = append(res, &models.Receiver{Name: &name})
		}
	})
	httpserver.WriteJSON(w, http.StatusOK, res)
}

// originalConfig renders the routing configuration as an Alertmanager
// configuration file, which `amtool config routes` parses. Receivers are
// listed by name only: their settings hold secrets.
func (m *Manager) originalConfig() string {
	var receivers []map[string]string
	m.disp.route.Walk(func(r *Route) {
		for _, x := range receivers {
			if x["name"] == r.Receiver {
				return
			}
		}
		receivers = append(receivers, map[string]string{"name": r.Receiver})
	})
	root := m.cfg.Route
	root.Receiver = m.disp.route.Receiver
	doc := map[string]any{"route": root, "receivers": receivers, "inhibit_rules": m.cfg.InhibitRules}
	if len(m.cfg.TimeIntervals) > 0 {
		doc["time_intervals"] = m.cfg.TimeIntervals
	}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		return ""
	}
	return string(raw)
}
