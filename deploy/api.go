package deploy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Options build a Gate.
type Options struct {
	Policies *Policies
	Source   Source
	Store    *Store
	// Token, when set, is required as a bearer token on every gate and
	// deploy endpoint, reads included: pipelines hold it as a secret.
	// Ignored when Auth is set.
	Token string
	// Auth, when it has tokens, guards every endpoint by scope: reads need
	// read, deploy marks write, granting and revoking exceptions
	// gate:grant. The token's name is recorded as the actor.
	Auth *httpserver.Authenticator
	// ExceptionTTL is how long a recorded exception lets its version
	// through when the request names no ttl. Default 24h, capped by
	// MaxExceptionTTL.
	ExceptionTTL time.Duration
	// MaxExceptionTTL is the longest ttl an exception may ask for; longer
	// is refused. Default 24h.
	MaxExceptionTTL time.Duration
	// OnException, when set, is told of every exception granted or revoked
	// (the incident tracker adds it to the timelines of the service's open
	// incidents).
	OnException func(ctx context.Context, e Exception, revoked bool)
	// OnDeploy, when set, is told of every recorded deploy (the incident
	// tracker adds it to the timelines of the service's open incidents).
	OnDeploy func(context.Context, Deploy)
	// OnRegression, when set, is told once of each deploy that the
	// post-deploy watch finds raised the burn rate (see Watch).
	OnRegression func(context.Context, Deploy, Verdict)
	// History reads SLIs over past windows for the post-deploy watch;
	// without it deploys are recorded but not verified.
	History History
	// WatchWindow is the length of the baseline before a deploy and the
	// longest span after it the watch compares; default 5m.
	WatchWindow time.Duration
	// WatchSpan is how long after its start a deploy is watched, unless
	// the next deploy of the service starts first; default 1h.
	WatchSpan time.Duration
	// Appendable, when set, receives one burnrate_deploy_info sample per
	// recorded deploy at its start, so Grafana can show deploys as
	// annotations from the Prometheus data source.
	Appendable storage.Appendable
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Validate reports what is missing.
func (o Options) Validate() error {
	switch {
	case o.Policies == nil:
		return errors.New("deploy gate: no policies")
	case o.Source == nil:
		return errors.New("deploy gate: no SLO source")
	case o.Store == nil:
		return errors.New("deploy gate: no store")
	case o.ExceptionTTL < 0:
		return errors.New("deploy gate: exception_ttl must not be negative")
	case o.MaxExceptionTTL < 0:
		return errors.New("deploy gate: exceptions.max_ttl must not be negative")
	case o.MaxExceptionTTL > 0 && o.ExceptionTTL > o.MaxExceptionTTL:
		return fmt.Errorf("deploy gate: exception_ttl %s is longer than exceptions.max_ttl %s", o.ExceptionTTL, o.MaxExceptionTTL)
	case o.WatchWindow < 0, o.WatchSpan < 0:
		return errors.New("deploy gate: watch window and span must not be negative")
	}
	return nil
}

// Gate answers pipelines.
type Gate struct {
	opts      Options
	logger    *slog.Logger
	decisions *prometheus.CounterVec

	// exceptions holds the unexpired exceptions by service and version,
	// loaded at start and kept with each one recorded, so a decision reads
	// memory only.
	mu         sync.RWMutex
	exceptions map[[2]string]Exception

	// canaries remembers, per canary, what already failed when the gate
	// first saw it, so Flagger's rollback hook rolls back only for what
	// the canary can have caused (see rollbackReasons).
	canaryMu sync.Mutex
	canaries map[string]canaryStart
}

// canaryStart is the state of the gate when it first saw a canary.
type canaryStart struct {
	at time.Time
	// failing holds the burn_rate and budget checks that failed then.
	failing map[string]bool
}

// New builds a Gate.
func New(opts Options) (*Gate, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxExceptionTTL == 0 {
		opts.MaxExceptionTTL = 24 * time.Hour
	}
	if opts.ExceptionTTL == 0 {
		opts.ExceptionTTL = min(24*time.Hour, opts.MaxExceptionTTL)
	}
	if opts.WatchWindow == 0 {
		opts.WatchWindow = 5 * time.Minute
	}
	if opts.WatchSpan == 0 {
		opts.WatchSpan = time.Hour
	}
	g := &Gate{opts: opts, logger: opts.Logger,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_gate_decisions_total",
			Help: "Deploy gate decisions by service and outcome.",
		}, []string{"service", "decision"})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(g.decisions); err != nil {
			return nil, fmt.Errorf("deploy gate metrics: %w", err)
		}
	}
	es, err := opts.Store.ActiveExceptions(context.Background(), opts.Now())
	if err != nil {
		return nil, err
	}
	g.exceptions = map[[2]string]Exception{}
	g.canaries = map[string]canaryStart{}
	for _, e := range es {
		g.keep(e)
	}
	return g, nil
}

// reloadExceptions rebuilds the in-memory exceptions from the store.
func (g *Gate) reloadExceptions(ctx context.Context) error {
	es, err := g.opts.Store.ActiveExceptions(ctx, g.opts.Now())
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.exceptions = map[[2]string]Exception{}
	for _, e := range es {
		g.keep(e)
	}
	return nil
}

// keep remembers e unless a newer exception for its version is known.
func (g *Gate) keep(e Exception) {
	k := [2]string{e.Service, e.Version}
	if cur, ok := g.exceptions[k]; !ok || cur.ExpiresAt.Before(e.ExpiresAt) {
		g.exceptions[k] = e
	}
}

func (g *Gate) activeException(service, version string, now time.Time) *Exception {
	g.mu.RLock()
	defer g.mu.RUnlock()
	e, ok := g.exceptions[[2]string{service, version}]
	if !ok || !e.ExpiresAt.After(now) {
		return nil
	}
	return &e
}

// ErrUnknownService is returned when a service has no SLO.
var ErrUnknownService = errors.New("unknown service")

// Decide answers for service at version, applying an active exception for
// that version.
func (g *Gate) Decide(service, version string) (Decision, error) {
	snap, ok := g.opts.Source.Snapshot(service)
	if !ok {
		known := g.opts.Source.Services()
		return Decision{}, fmt.Errorf("%w %q: services with SLOs are %s", ErrUnknownService, service, strings.Join(known, ", "))
	}
	now := g.opts.Now()
	d := Decide(g.opts.Policies.For(service), snap, now)
	d.Version = version
	if version != "" {
		if e := g.activeException(service, version, now); e != nil {
			d.applyException(e)
		}
	}
	g.decisions.WithLabelValues(service, string(d.Decision)).Inc()
	return d, nil
}

// Handler serves the gate, exceptions and deploy events under /api/v1.
func (g *Gate) Handler() http.Handler {
	if g.opts.Auth.Enabled() {
		need := func(scope string, h http.HandlerFunc) http.Handler { return g.opts.Auth.RequireScope(scope, h) }
		mux := http.NewServeMux()
		mux.Handle("GET /api/v1/gate", need(httpserver.ScopeRead, g.serveGate))
		mux.Handle("POST /api/v1/gate", need(httpserver.ScopeRead, g.serveGate))
		mux.Handle("GET /api/v1/gate/exceptions", need(httpserver.ScopeRead, g.listExceptions))
		mux.Handle("POST /api/v1/gate/exceptions", need(httpserver.ScopeGateGrant, g.postException))
		mux.Handle("DELETE /api/v1/gate/exceptions/{id}", need(httpserver.ScopeGateGrant, g.deleteException))
		mux.Handle("GET /api/v1/deploys", need(httpserver.ScopeRead, g.listDeploys))
		mux.Handle("POST /api/v1/deploys", need(httpserver.ScopeWrite, g.postDeploy))
		mux.Handle("GET /api/v1/deploys/{id}", need(httpserver.ScopeRead, g.getDeploy))
		mux.Handle("GET /api/v1/deploys/{id}/verify", need(httpserver.ScopeRead, g.verifyDeploy))
		return mux
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/gate", g.serveGate)
	mux.HandleFunc("POST /api/v1/gate", g.serveGate)
	mux.HandleFunc("GET /api/v1/gate/exceptions", g.listExceptions)
	mux.HandleFunc("POST /api/v1/gate/exceptions", g.postException)
	mux.HandleFunc("DELETE /api/v1/gate/exceptions/{id}", g.deleteException)
	mux.HandleFunc("GET /api/v1/deploys", g.listDeploys)
	mux.HandleFunc("POST /api/v1/deploys", g.postDeploy)
	mux.HandleFunc("GET /api/v1/deploys/{id}", g.getDeploy)
	mux.HandleFunc("GET /api/v1/deploys/{id}/verify", g.verifyDeploy)
	return g.requireToken(mux)
}

func (g *Gate) requireToken(next http.Handler) http.Handler {
	if g.opts.Token == "" {
		return next
	}
	want := []byte("Bearer " + g.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="burnrate"`)
			httpserver.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FlaggerPayload is what Flagger posts to a webhook.
type FlaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
	// Service and Version may be posted directly by other callers.
	Service string `json:"service"`
	Version string `json:"version"`
}

const maxBody = 1 << 20

// readStrictJSON decodes a JSON body into v, refusing fields v does not
// have: a misspelt "time_to_live" must not silently become the default.
func readStrictJSON(r *http.Request, v any) error { return decodeBody(r, v, true) }

// readJSON decodes an optional JSON body into v; an empty body is fine.
// Flagger's payload is read with it: Flagger may add fields.
func readJSON(r *http.Request, v any) error { return decodeBody(r, v, false) }

// decodeBody reads a body of at most maxBody bytes (an empty one leaves v
// as it is) and decodes it into v, refusing unknown fields when strict.
func decodeBody(r *http.Request, v any, strict bool) error {
	if r.Body == nil {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(raw) > maxBody {
		return fmt.Errorf("the body is larger than %d bytes", maxBody)
	}
	if strings.TrimSpace(string(raw)) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("%s: unknown field", strings.Trim(f, `"`))
		}
		return fmt.Errorf("the body is not valid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

// Gate modes: the default always answers 200 with the decision (Argo
// Rollouts' web metric treats any other status as an error, not a
// failure); status answers 200 to pass and 403 to fail (Flagger's
// confirm and pre-rollout hooks); rollback is inverted for Flagger's
// rollback hook: 200 exactly when the canary must roll back, which is
// only for a burn-rate or budget rule the canary can have caused (see
// rollbackReasons), never for stale data, a freeze or an incident.
const (
	modeDecision = "decision"
	modeStatus   = "status"
	modeRollback = "rollback"
)

func (g *Gate) serveGate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var p FlaggerPayload
	if r.Method == http.MethodPost {
		if err := readJSON(r, &p); err != nil {
			httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
	}
	service := first(q.Get("service"), p.Service, p.Metadata["service"], p.Name)
	version := first(q.Get("version"), p.Version, p.Metadata["version"], p.Checksum)
	mode := first(q.Get("mode"), modeDecision)
	if service == "" {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", "service: required (?service=NAME, or a Flagger payload's name or metadata.service)")
		return
	}
	strict, err := boolParam(q, "strict")
	if err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	switch mode {
	case modeDecision, modeStatus, modeRollback:
	default:
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("mode: %q is not one of decision, status, rollback", mode))
		return
	}
	d, err := g.Decide(service, version)
	switch {
	case errors.Is(err, ErrUnknownService):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil:
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if strict && d.Decision == Warn {
		// strict changes the decision itself, so that Argo, which reads
		// only the JSON, sees it.
		d.Decision = Fail
		d.Reasons = append(d.Reasons, "strict: a warning fails")
	}
	blocked := d.Decision == Fail
	code := http.StatusOK
	canary := canaryKey(p, service, version)
	start := g.sawCanary(canary, d)
	switch mode {
	case modeStatus:
		if blocked {
			code = http.StatusForbidden
		}
	case modeRollback:
		code = http.StatusForbidden
		if why := rollbackReasons(d, start, strict); len(why) > 0 {
			code = http.StatusOK
			d.Reasons = append(d.Reasons, "roll back: "+strings.Join(why, "; "))
		} else if d.Decision != Pass {
			d.Reasons = append(d.Reasons, fmt.Sprintf("no roll back: nothing the canary can have caused since %s fails", start.at.UTC().Format(time.RFC3339)))
		}
	}
	if p.Phase != "" {
		g.logger.Info("flagger webhook", "service", service, "canary", p.Namespace+"/"+p.Name, "phase", p.Phase, "mode", mode, "decision", d.Decision)
	}
	httpserver.WriteJSON(w, code, d)
}

// canaryKey names a canary: Flagger's namespace, name and checksum (one
// per rollout of a new revision), else the service and version asked for.
func canaryKey(p FlaggerPayload, service, version string) string {
	if p.Checksum != "" || p.Name != "" {
		return "flagger/" + p.Namespace + "/" + p.Name + "/" + p.Checksum
	}
	return "version/" + service + "/" + version
}

// canaryTTL is how long the gate remembers a canary it saw.
const canaryTTL = 24 * time.Hour

// sawCanary returns the state of the gate when it first saw the canary,
// recording d as that state on the first sighting.
func (g *Gate) sawCanary(key string, d Decision) canaryStart {
	now := g.opts.Now()
	g.canaryMu.Lock()
	defer g.canaryMu.Unlock()
	if c, ok := g.canaries[key]; ok {
		return c
	}
	for k, c := range g.canaries {
		if now.Sub(c.at) > canaryTTL {
			delete(g.canaries, k)
		}
	}
	c := canaryStart{at: now, failing: map[string]bool{}}
	for _, ch := range d.Checks {
		if (ch.Rule == RuleBurnRate || ch.Rule == RuleBudget) && ch.Outcome != Pass {
			c.failing[ch.Rule+"/"+ch.Window] = true
		}
	}
	g.canaries[key] = c
	return c
}

// rollbackReasons lists what makes a canary roll back: a burn_rate or
// budget check that fails (warns too, under strict) now and did not when
// the gate first saw the canary. Stale or missing data, freezes, pages and
// incidents never roll a canary back: they say nothing of what the canary
// did, and Flagger would roll back a healthy release.
func rollbackReasons(d Decision, start canaryStart, strict bool) []string {
	var out []string
	for _, c := range d.Checks {
		if c.Rule != RuleBurnRate && c.Rule != RuleBudget {
			continue
		}
		if c.Outcome == Fail || (strict && c.Outcome == Warn) {
			if !start.failing[c.Rule+"/"+c.Window] {
				out = append(out, c.Message)
			}
		}
	}
	return out
}

func first(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", name, v)
	}
	return b, nil
}

// ExceptionRequest is the body of POST /api/v1/gate/exceptions.
type ExceptionRequest struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
	Author  string `json:"author"`
	// TTL is a duration ("24h"); default the gate's exception_ttl, at
	// most exceptions.max_ttl.
	TTL string `json:"ttl"`
}

func (g *Gate) postException(w http.ResponseWriter, r *http.Request) {
	var req ExceptionRequest
	if err := readStrictJSON(r, &req); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	// The grantor is the token's name; a free-text author counts only
	// where no tokens are configured.
	req.Author = httpserver.Actor(r, req.Author)
	e, err := g.RecordException(r.Context(), req)
	switch {
	case errors.Is(err, ErrUnknownService), errors.Is(err, errBadException):
		code := http.StatusBadRequest
		if errors.Is(err, ErrUnknownService) {
			code = http.StatusNotFound
		}
		httpserver.WriteError(w, code, "bad_data", err.Error())
		return
	case err != nil:
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusCreated, e)
}

var errBadException = errors.New("invalid exception")

// RecordException validates and stores an exception.
func (g *Gate) RecordException(ctx context.Context, req ExceptionRequest) (Exception, error) {
	bad := func(format string, args ...any) (Exception, error) {
		return Exception{}, fmt.Errorf("%w: %s", errBadException, fmt.Sprintf(format, args...))
	}
	req.Kind = strings.ToLower(strings.TrimSpace(req.Kind))
	switch {
	case strings.TrimSpace(req.Service) == "":
		return bad("service: required")
	case strings.TrimSpace(req.Version) == "":
		return bad("version: required: an exception lets one version through")
	case req.Kind == "":
		return bad("kind: required (for example p0 or security)")
	case strings.TrimSpace(req.Reason) == "":
		return bad("reason: required: say why this deploy may go while the policy says no")
	case strings.TrimSpace(req.Author) == "":
		return bad("author: required: who records the exception")
	}
	if _, ok := g.opts.Source.Snapshot(req.Service); !ok {
		return Exception{}, fmt.Errorf("%w %q", ErrUnknownService, req.Service)
	}
	p := g.opts.Policies.For(req.Service)
	if !p.Allows(req.Kind) {
		return bad("kind: %q is not an exception the policy of %s allows (allowed: %s)", req.Kind, req.Service, strings.Join(p.Exceptions, ", "))
	}
	ttl := g.opts.ExceptionTTL
	if req.TTL != "" {
		d, err := model.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return bad("ttl: %q is not a positive duration", req.TTL)
		}
		ttl = time.Duration(d)
	}
	if ttl > g.opts.MaxExceptionTTL {
		return bad("ttl: %s is longer than the %s exceptions may last (deploy.exceptions.max_ttl)", model.Duration(ttl), model.Duration(g.opts.MaxExceptionTTL))
	}
	now := g.opts.Now().UTC()
	e, err := g.opts.Store.AddException(ctx, Exception{Service: req.Service, Version: req.Version, Kind: req.Kind,
		Reason: strings.TrimSpace(req.Reason), Author: strings.TrimSpace(req.Author), CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return e, err
	}
	g.mu.Lock()
	g.keep(e)
	g.mu.Unlock()
	g.logger.Warn("deploy gate exception recorded", "service", e.Service, "version", e.Version, "kind", e.Kind, "author", e.Author, "reason", e.Reason)
	if g.opts.OnException != nil {
		g.opts.OnException(ctx, e, false)
	}
	return e, nil
}

// RevokeException ends exception id at once; by is who ends it.
func (g *Gate) RevokeException(ctx context.Context, id, by string) (Exception, error) {
	e, err := g.opts.Store.RevokeException(ctx, id, by, g.opts.Now().UTC())
	if err != nil {
		return e, err
	}
	if err := g.reloadExceptions(ctx); err != nil {
		// The store holds the revocation; memory must not keep honouring it.
		g.mu.Lock()
		delete(g.exceptions, [2]string{e.Service, e.Version})
		g.mu.Unlock()
		g.logger.Warn("exceptions not reloaded after a revocation", "err", err)
	}
	g.logger.Warn("deploy gate exception revoked", "id", e.ID, "service", e.Service, "version", e.Version, "by", by)
	if g.opts.OnException != nil {
		g.opts.OnException(ctx, e, true)
	}
	return e, nil
}

func (g *Gate) deleteException(w http.ResponseWriter, r *http.Request) {
	by := httpserver.Actor(r, r.URL.Query().Get("by"))
	if strings.TrimSpace(by) == "" {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", "by: required without a token: who revokes the exception (?by=NAME)")
		return
	}
	e, err := g.RevokeException(r.Context(), r.PathValue("id"), by)
	switch {
	case errors.Is(err, ErrNotFound):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case errors.Is(err, ErrEnded):
		httpserver.WriteError(w, http.StatusConflict, "conflict", err.Error())
		return
	case err != nil:
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, e)
}

func (g *Gate) listExceptions(w http.ResponseWriter, r *http.Request) {
	es, err := g.opts.Store.Exceptions(r.Context(), r.URL.Query().Get("service"), 500)
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": es})
}

// DeployRequest is the body of POST /api/v1/deploys.
type DeployRequest struct {
	Service    string    `json:"service"`
	Version    string    `json:"version"`
	Commit     string    `json:"commit"`
	Author     string    `json:"author"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

func (g *Gate) postDeploy(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if err := readStrictJSON(r, &req); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	req.Author = httpserver.Actor(r, req.Author)
	d, err := g.RecordDeploy(r.Context(), req)
	switch {
	case errors.Is(err, errBadDeploy):
		httpserver.WriteError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	case errors.Is(err, ErrUnknownService):
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil:
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusCreated, d)
}

var errBadDeploy = errors.New("invalid deploy")

// RecordDeploy validates and stores a deploy event. Its baseline is not
// read now: the watch reads it from the TSDB over the window before
// StartedAt, so a deploy marked after it ran is judged against the burn
// before it, not the burn it caused.
func (g *Gate) RecordDeploy(ctx context.Context, req DeployRequest) (Deploy, error) {
	bad := func(format string, args ...any) (Deploy, error) {
		return Deploy{}, fmt.Errorf("%w: %s", errBadDeploy, fmt.Sprintf(format, args...))
	}
	now := g.opts.Now().UTC()
	switch {
	case strings.TrimSpace(req.Service) == "":
		return bad("service: required")
	case strings.TrimSpace(req.Version) == "":
		return bad("version: required")
	}
	if req.StartedAt.IsZero() {
		req.StartedAt = now
	}
	if !req.FinishedAt.IsZero() && req.FinishedAt.Before(req.StartedAt) {
		return bad("finished_at: %s is before started_at %s", req.FinishedAt.Format(time.RFC3339), req.StartedAt.Format(time.RFC3339))
	}
	if req.StartedAt.After(now.Add(time.Minute)) {
		return bad("started_at: %s is in the future", req.StartedAt.Format(time.RFC3339))
	}
	if _, ok := g.opts.Source.Snapshot(req.Service); !ok {
		known := g.opts.Source.Services()
		return Deploy{}, fmt.Errorf("%w %q: services with SLOs are %s", ErrUnknownService, req.Service, strings.Join(known, ", "))
	}
	d, err := g.opts.Store.AddDeploy(ctx, Deploy{Service: req.Service, Version: req.Version, Commit: req.Commit,
		Author: req.Author, StartedAt: req.StartedAt.UTC(), FinishedAt: req.FinishedAt.UTC()})
	if err != nil {
		return d, err
	}
	g.logger.Info("deploy recorded", "id", d.ID, "service", d.Service, "version", d.Version)
	if g.opts.OnDeploy != nil {
		g.opts.OnDeploy(ctx, d)
	}
	if err := g.annotate(ctx, d); err != nil {
		// The deploy is recorded; only its marker in the TSDB is missing.
		g.logger.Warn("deploy marker not written to the TSDB", "id", d.ID, "err", err)
	}
	return d, nil
}

// DeployInfoMetric is the series that marks deploys in the TSDB.
const DeployInfoMetric = "burnrate_deploy_info"

func (g *Gate) annotate(ctx context.Context, d Deploy) error {
	if g.opts.Appendable == nil {
		return nil
	}
	app := g.opts.Appendable.Appender(ctx)
	ls := labels.FromStrings(labels.MetricName, DeployInfoMetric, "deploy_id", d.ID, "service", d.Service,
		"version", d.Version, "commit", d.Commit, "author", d.Author)
	if _, err := app.Append(0, ls, d.StartedAt.UnixMilli(), 1); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}

func (g *Gate) listDeploys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := time.Time{}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			httpserver.WriteError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("since: %q is not an RFC 3339 time", v))
			return
		}
		since = t
	}
	ds, err := g.opts.Store.Deploys(r.Context(), q.Get("service"), since, 500)
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": ds})
}

func (g *Gate) getDeploy(w http.ResponseWriter, r *http.Request) {
	d, err := g.opts.Store.Deploy(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": d})
}

func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
}

func (g *Gate) verifyDeploy(w http.ResponseWriter, r *http.Request) {
	d, err := g.opts.Store.Deploy(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	v, err := g.Verify(r.Context(), d)
	switch {
	case errors.Is(err, ErrNoHistory):
		httpserver.WriteError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	case err != nil:
		writeStoreError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, v)
}
