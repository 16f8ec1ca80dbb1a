package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/incidents"
	"github.com/burnrate/burnrate/sloengine"
)

// DeployConfig is the `deploy` section: the gate's error-budget policies.
type DeployConfig struct {
	// Policies lists policy files or directories; services without a
	// policy get the built-in default (budget left, no page firing, fresh
	// data).
	Policies []string `mapstructure:"policies"`
	// ExceptionTTL is how long a recorded exception lets its version pass.
	ExceptionTTL time.Duration `mapstructure:"exception_ttl"`
	// Exceptions governs policy exceptions.
	Exceptions ExceptionsConfig `mapstructure:"exceptions"`
	// Watch configures the post-deploy watch.
	Watch WatchConfig `mapstructure:"watch"`
}

// ExceptionsConfig is the `deploy.exceptions` section.
type ExceptionsConfig struct {
	// MaxTTL is the longest an exception may last (default 24h); a grant
	// asking for longer is refused with 400.
	MaxTTL time.Duration `mapstructure:"max_ttl"`
}

// WatchConfig is the `deploy.watch` section.
type WatchConfig struct {
	// Window is the baseline before a deploy and the longest span after it
	// that the watch compares (default 5m); the first verdict comes one
	// minute after the start, or after Window when shorter.
	Window time.Duration `mapstructure:"window"`
	// Span is how long a deploy is watched unless the next deploy of its
	// service starts first (default 1h).
	Span time.Duration `mapstructure:"span"`
}

// Validate checks the section.
func (c DeployConfig) Validate() error {
	if c.ExceptionTTL < 0 {
		return errors.New("deploy.exception_ttl: must not be negative")
	}
	if c.Exceptions.MaxTTL < 0 {
		return errors.New("deploy.exceptions.max_ttl: must not be negative")
	}
	if max := c.Exceptions.MaxTTL; max > 0 && c.ExceptionTTL > max {
		return fmt.Errorf("deploy.exception_ttl: %s is longer than deploy.exceptions.max_ttl %s", c.ExceptionTTL, max)
	}
	if c.Watch.Window < 0 {
		return errors.New("deploy.watch.window: must not be negative")
	}
	if c.Watch.Span < 0 {
		return errors.New("deploy.watch.span: must not be negative")
	}
	return nil
}

// buildDeploy opens <data_dir>/deploy.db and serves the deploy gate,
// exceptions and deploy events under /api/v1/gate and /api/v1/deploys.
func (a *App) buildDeploy() error {
	if a.slo == nil {
		return nil
	}
	ps, err := deploy.LoadPolicies(a.opts.Deploy.Policies)
	if err != nil {
		return fmt.Errorf("deploy.policies: %w", err)
	}
	var services []string
	for _, slo := range a.slo.SLOs() {
		svc := slo.Service
		if svc == "" {
			svc = slo.ID
		}
		if !slices.Contains(services, svc) {
			services = append(services, svc)
		}
	}
	sort.Strings(services)
	if err := deploy.CheckPolicies(ps, services, sloengine.Windows); err != nil {
		return fmt.Errorf("deploy.policies: %w", err)
	}
	store, err := deploy.OpenStore(context.Background(), filepath.Join(a.opts.DataDir, "deploy.db"))
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	a.addCloser("deploy store", store.Close)
	src := newGateSource(a.slo, a.alerting, a.openIncidents)
	a.gateSrc.Store(src)
	if a.incidents != nil {
		// An incident that opens or closes is in the gate's next answer,
		// not up to a rebuild interval later.
		a.incidents.OnChange(src.invalidate)
	}
	g, err := deploy.New(deploy.Options{
		Policies:        deploy.NewPolicies(ps...),
		Source:          src,
		OnDeploy:        a.deployToTimelines,
		OnRegression:    a.regressionToTimelines,
		History:         sloHistory{engine: a.slo},
		WatchWindow:     a.opts.Deploy.Watch.Window,
		WatchSpan:       a.opts.Deploy.Watch.Span,
		Store:           store,
		Auth:            a.http.Auth(),
		ExceptionTTL:    a.opts.Deploy.ExceptionTTL,
		MaxExceptionTTL: a.opts.Deploy.Exceptions.MaxTTL,
		OnException:     a.exceptionToTimelines,
		Appendable:      a.collector.Storage(),
		Logger:          a.logger.With("component", "deploy"),
		Registerer:      a.reg,
	})
	if err != nil {
		return err
	}
	a.gate = g
	h := g.Handler()
	for _, p := range []string{"/api/v1/gate", "/api/v1/gate/", "/api/v1/deploys", "/api/v1/deploys/"} {
		a.mount(p, h)
	}
	{
		// The gate's index of SLO states, pages and incidents is rebuilt
		// here, off the request path, after each engine evaluation and
		// every second.
		a.addRunner("deploy gate index", src.run)
	}
	{
		// The post-deploy watch compares burn rates after each recent deploy
		// with before it, and tells the incidents of a regression.
		a.addRunner("deploy watch", func(ctx context.Context) error { return g.Watch(ctx, 15*time.Second) })
	}
	a.addStatic("deploy gate (restart to change deploy.*)")
	a.addEndpoint("gate", "/api/v1/gate?service=SERVICE")
	a.logger.Info("deploy gate ready", "policies", len(ps))
	return nil
}

// openIncidents lists the open incidents by service, for the gate's
// incident freeze; nil without the incident tracker. A failed lookup is an
// error, never "no incident": the gate fails closed on it.
func (a *App) openIncidents() (map[string][]deploy.OpenIncident, error) {
	if a.incidents == nil {
		return nil, nil
	}
	list, err := a.incidents.List(context.Background(), incidents.Filter{Status: "open", Limit: 1000})
	if err != nil {
		a.logger.Warn("deploy gate: open incidents unknown", "err", err)
		return nil, err
	}
	out := map[string][]deploy.OpenIncident{}
	for _, inc := range list {
		out[inc.Service] = append(out[inc.Service], deploy.OpenIncident{ID: strconv.FormatInt(inc.ID, 10), Severity: string(inc.Severity), Title: inc.Title})
	}
	return out, nil
}

// deployToTimelines adds a recorded deploy to the timelines of the
// service's open incidents.
func (a *App) deployToTimelines(ctx context.Context, d deploy.Deploy) {
	if a.incidents == nil {
		return
	}
	text := fmt.Sprintf("deploy %s of %s recorded", d.Version, d.Service)
	if d.Author != "" {
		text += " by " + d.Author
	}
	if d.Commit != "" {
		text += " (" + d.Commit + ")"
	}
	if err := a.incidents.Record(ctx, d.Service, "deploy", "deploy", text); err != nil {
		a.logger.Warn("deploy not added to incident timelines", "deploy", d.ID, "err", err)
	}
}

// exceptionToTimelines adds a granted or revoked exception to the
// timelines of the service's open incidents: who let which version
// through, why, and until when.
func (a *App) exceptionToTimelines(ctx context.Context, e deploy.Exception, revoked bool) {
	if a.incidents == nil {
		return
	}
	text := fmt.Sprintf("deploy gate: %s exception %s granted by %s for %s %s until %s: %s",
		e.Kind, e.ID, e.Author, e.Service, e.Version, e.ExpiresAt.UTC().Format(time.RFC3339), e.Reason)
	if revoked {
		text = fmt.Sprintf("deploy gate: %s exception %s for %s %s revoked by %s", e.Kind, e.ID, e.Service, e.Version, e.RevokedBy)
	}
	if err := a.incidents.Record(ctx, e.Service, incidents.EventDeploy, "gate", text); err != nil {
		a.logger.Warn("gate exception not added to incident timelines", "exception", e.ID, "err", err)
	}
}

// regressionToTimelines tells the service's open incidents that a deploy
// raised the burn rate.
func (a *App) regressionToTimelines(ctx context.Context, d deploy.Deploy, v deploy.Verdict) {
	if a.incidents == nil {
		return
	}
	if err := a.incidents.Record(ctx, d.Service, "deploy", "deploy", v.Message); err != nil {
		a.logger.Warn("deploy regression not added to incident timelines", "deploy", d.ID, "err", err)
	}
}

// sloHistory reads a service's SLIs over past windows from the TSDB, for
// the post-deploy watch.
type sloHistory struct{ engine *sloengine.Engine }

func (h sloHistory) Burn(ctx context.Context, service string, w time.Duration, at time.Time) ([]deploy.WindowBurn, error) {
	var out []deploy.WindowBurn
	for _, slo := range h.engine.SLOs() {
		svc := slo.Service
		if svc == "" {
			svc = slo.ID
		}
		if svc != service {
			continue
		}
		ws, err := h.engine.WindowAt(ctx, slo.ID, w, at)
		if err != nil {
			return nil, fmt.Errorf("SLO %s: %w", slo.ID, err)
		}
		out = append(out, deploy.WindowBurn{SLO: slo.ID, BurnRate: float64(ws.BurnRate), NoData: ws.NoData,
			LowTraffic: ws.LowTraffic || math.IsNaN(float64(ws.BurnRate))})
	}
	return out, nil
}

// Gate is the deploy gate (nil when no SLO engine runs).
func (a *App) Gate() *deploy.Gate { return a.gate }

// gateSource indexes the SLO engine's snapshot by service for the gate, as
// an immutable index swapped in whole: a reader loads a pointer and never
// waits, not for an engine cycle, not for the incident lookup. The index
// is rebuilt off the request path, after each evaluation of the engine
// (invalidate) and every second for pages and incidents, so a pipeline
// polling at thousands of requests a second costs no query and reads the
// engine's latest evaluation within moments of it.
type gateSource struct {
	engine    *sloengine.Engine
	alerts    *alerting.Manager
	incidents func() (map[string][]deploy.OpenIncident, error)

	idx     atomic.Pointer[gateIndex]
	kick    chan struct{}
	buildMu sync.Mutex // one rebuild at a time
}

// gateIndex is one immutable index: never written after it is stored.
type gateIndex struct {
	services []string
	bySvc    map[string]deploy.Snapshot
}

// gateSourceEvery is how often the index is rebuilt without an
// evaluation, for pages and incidents.
const gateSourceEvery = time.Second

func newGateSource(e *sloengine.Engine, m *alerting.Manager, incidents func() (map[string][]deploy.OpenIncident, error)) *gateSource {
	return &gateSource{engine: e, alerts: m, incidents: incidents, kick: make(chan struct{}, 1)}
}

func (s *gateSource) load() *gateIndex {
	if idx := s.idx.Load(); idx != nil {
		return idx
	}
	// Only before the first rebuild: build it on this request.
	s.rebuild()
	return s.idx.Load()
}

func (s *gateSource) Snapshot(service string) (deploy.Snapshot, bool) {
	v, ok := s.load().bySvc[service]
	return v, ok
}

func (s *gateSource) Services() []string { return s.load().services }

// invalidate asks for a rebuild: the engine has evaluated.
func (s *gateSource) invalidate() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run rebuilds the index on every invalidate and every second until ctx
// ends.
func (s *gateSource) run(ctx context.Context) error {
	t := time.NewTicker(gateSourceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.kick:
		case <-t.C:
		}
		s.rebuild()
	}
}

// rebuild builds a new index from the engine, the alerts and the open
// incidents, and swaps it in.
func (s *gateSource) rebuild() {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	pages := s.firingPages()
	open, err := s.incidents()
	incErr := ""
	if err != nil {
		incErr = err.Error()
	}
	latest := map[string]sloengine.Status{}
	for _, st := range s.engine.Snapshot() {
		latest[st.ID] = st
	}
	by := map[string]deploy.Snapshot{}
	for _, slo := range s.engine.SLOs() {
		svc := slo.Service
		if svc == "" {
			svc = slo.ID
		}
		state := deploy.SLOState{ID: slo.ID, BudgetRemaining: math.NaN(), Coverage: math.NaN(), PageFiring: pages[slo.ID]}
		if st, ok := latest[slo.ID]; ok {
			state = gateState(st, pages[slo.ID])
		}
		snap := by[svc]
		snap.Service = svc
		snap.Incidents, snap.IncidentsErr = open[svc], incErr
		snap.SLOs = append(snap.SLOs, state)
		by[svc] = snap
	}
	services := make([]string, 0, len(by))
	for svc := range by {
		services = append(services, svc)
	}
	sort.Strings(services)
	s.idx.Store(&gateIndex{services: services, bySvc: by})
}

// gateState is what the gate reads of one SLO status: windows with too few
// events to trust are left out of the burn rates and marked quiet; windows
// without series are marked missing; an SLI that had traffic and has no
// series in its shortest window is absent, as SLODataAbsent judges it.
func gateState(st sloengine.Status, pages []string) deploy.SLOState {
	out := deploy.SLOState{ID: st.ID, BudgetRemaining: float64(st.BudgetRemaining), Coverage: float64(st.PeriodCoverage),
		InsufficientData: st.InsufficientData, EvaluatedAt: st.EvaluatedAt, Error: st.Error, PageFiring: pages,
		BurnRates: map[time.Duration]float64{}, NoData: map[time.Duration]bool{}, LowTraffic: map[time.Duration]bool{}}
	var shortest sloengine.WindowStatus
	for _, w := range st.Windows {
		if shortest.Length == 0 || w.Length < shortest.Length {
			shortest = w
		}
		b := float64(w.BurnRate)
		switch {
		case w.NoData:
			out.NoData[w.Length] = true
		case w.LowTraffic || math.IsNaN(b):
			out.LowTraffic[w.Length] = true
		default:
			out.BurnRates[w.Length] = b
		}
	}
	out.Absent = st.HadTraffic() && shortest.NoData
	return out
}

// firingPages maps SLO IDs to the names of their firing page alerts.
func (s *gateSource) firingPages() map[string][]string {
	if s.alerts == nil {
		return map[string][]string{}
	}
	return s.alerts.FiringPages()
}
