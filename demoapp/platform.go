package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/burnrate/burnrate/demoapp/api"
	"github.com/burnrate/burnrate/demoapp/cache"
	"github.com/burnrate/burnrate/demoapp/edge"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/internal/inproc"
	"github.com/burnrate/burnrate/demoapp/load"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/store"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// Roles a process can take; RoleAll runs every tier in one process.
const (
	RoleAll   = "all"
	RoleEdge  = "edge"
	RoleAPI   = "api"
	RoleCache = "cache"
	RoleStore = "store"
)

// Roles lists the single-tier roles.
var Roles = []string{RoleEdge, RoleAPI, RoleCache, RoleStore}

// ErrBadRole is returned for an unknown role or one missing its upstream.
var ErrBadRole = errors.New("bad demo role")

// Options build a Platform.
type Options struct {
	Config
	// DataDir is the process's data directory: shards go under
	// DataDir/demo/shard-N.
	DataDir string
	// Role is RoleAll (default) or one tier.
	Role string
	// Listen is the tier's address in single-tier roles (edge: EdgeListen).
	Listen string
	// APIURLs, CacheURL and StoreURL locate the upstreams of a single-tier
	// role.
	APIURLs  []string
	CacheURL string
	StoreURL string
	// Faults is the process's fault set (the app opens it on demo.db).
	Faults *faults.Set
	// ServeFaultAPI mounts the fault API (/api/v1/demo/) on the last tier's
	// listener. Single-tier roles always do; in `burnrate up` the main
	// listener serves it instead.
	ServeFaultAPI bool
	// APIToken, when set, is required as a bearer token by the mutating
	// calls of the fault API served on a tier's listener (api_token).
	APIToken string
	// TierSecret is what the cache and the store require of every write
	// (TierSecretHeader), and what the API and the cache send them. Empty
	// means a random secret of this process when it runs every tier, and
	// APIToken in a single-tier process (whose peers are other processes
	// of the same deployment); with neither, a single tier's writes are
	// open.
	TierSecret string
	// OTLPToken, when set, is sent as a bearer token with every export to
	// demo.otlp_endpoint (a collector with collector.require_token).
	OTLPToken string
	Logger    *slog.Logger
	// SpanExporter and MetricReader, when set, replace OTLP export (tests).
	// One span exporter collects from every tier; MetricReader is called once
	// per tier instance.
	SpanExporter sdktrace.SpanExporter
	MetricReader func(service string) sdkmetric.Reader
}

// Platform is a built, not yet running, set of demo tiers.
type Platform struct {
	opts   Options
	logger *slog.Logger
	faults *faults.Set

	servers   []*server
	edge      *edge.Edge
	store     *store.Server
	providers []*telemetry.Providers
	stressor  *faults.Stressor
	edgeURL   string
	ran       bool

	// loadOn switches the background load; loadChanged wakes it.
	loadOn      atomic.Bool
	loadChanged chan struct{}
}

type server struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

func (s *server) url() string { return "http://" + s.ln.Addr().String() }

// New builds the tiers of opts.Role and binds their listeners, so that
// address errors surface before anything runs.
func New(ctx context.Context, o Options) (p *Platform, err error) {
	if o.Role == "" {
		o.Role = RoleAll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Faults == nil {
		o.Faults = faults.New()
	}
	if o.ClientIDSecret == "" {
		// The background load's clients are signed with it, and so are
		// those of `burnrate load` run on the same data directory; everyone
		// else is limited by address.
		if o.ClientIDSecret, err = clientSecret(o.DataDir); err != nil {
			return nil, err
		}
	}
	if o.TierSecret == "" {
		o.TierSecret = o.APIToken
		if o.Role == RoleAll {
			o.TierSecret = randomSecret()
		}
	}
	p = &Platform{opts: o, logger: o.Logger, faults: o.Faults, stressor: faults.NewStressor(o.Faults), loadChanged: make(chan struct{}, 1)}
	p.loadOn.Store(o.Load.Enabled)
	built := p // p is nil when an error is returned
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	role := o.Role
	all := role == RoleAll
	if !all && !slices.Contains(Roles, role) {
		return nil, fmt.Errorf("%w: %q is not one of all, %s", ErrBadRole, role, strings.Join(Roles, ", "))
	}
	listen := func(name string) (*server, error) {
		addr := "127.0.0.1:0"
		switch {
		case name == RoleEdge:
			addr = o.EdgeListen
			if !all && o.Listen != "" {
				addr = o.Listen
			}
		case !all:
			addr = o.Listen
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("demo %s: listen on %s: %w", name, addr, err)
		}
		s := &server{name: name, ln: ln}
		p.servers = append(p.servers, s)
		return s, nil
	}
	// Tiers in this process call each other without the wire, unless the
	// configuration asks for loopback; base nil gives each pool its own
	// network transport.
	var base http.RoundTripper
	var inp *inproc.Transport
	if all && o.TierCalls != TierCallsLoopback {
		inp = inproc.New(resilience.NewTransport())
		base = inp
	}
	tel := func(service, instance string) (*telemetry.Providers, error) {
		to := telemetry.Options{
			Enabled:        o.Instrumentation,
			Endpoint:       strings.TrimSuffix(o.OTLPEndpoint, "/"),
			Token:          o.OTLPToken,
			MetricInterval: o.MetricInterval,
			SampleRatio:    o.TraceSampleRatio,
			KeepSlowerThan: o.TraceKeepSlowerThan,
			SpanExporter:   o.SpanExporter,
			Logger:         o.Logger,
		}
		if o.MetricReader != nil {
			to.MetricReader = o.MetricReader(service)
		}
		tp, err := telemetry.New(ctx, service, instance, to)
		if err != nil {
			return nil, err
		}
		p.providers = append(p.providers, tp)
		return tp, nil
	}

	// Store.
	storeURL := o.StoreURL
	if all || role == RoleStore {
		s, err := listen(RoleStore)
		if err != nil {
			return nil, err
		}
		tp, err := tel("demo-store", s.ln.Addr().String())
		if err != nil {
			return nil, err
		}
		p.store, err = store.Open(filepath.Join(o.DataDir, "demo"), o.Shards, o.Faults, tp)
		if err != nil {
			return nil, err
		}
		if err := seed(p.store, o.Shards, o.Products); err != nil {
			return nil, err
		}
		s.srv = tierServer(requireTierSecret(o.TierSecret, p.store.Handler()))
		storeURL = s.url()
	}
	// Cache.
	cacheURL := o.CacheURL
	if all || role == RoleCache {
		if storeURL == "" {
			return nil, fmt.Errorf("%w: the cache needs --store-url", ErrBadRole)
		}
		s, err := listen(RoleCache)
		if err != nil {
			return nil, err
		}
		tp, err := tel("demo-cache", s.ln.Addr().String())
		if err != nil {
			return nil, err
		}
		pool, err := resilience.NewPool(tp, tierSecretTransport(o.TierSecret, base))
		if err != nil {
			return nil, err
		}
		sc := store.NewClient(storeURL, o.Shards, pool, o.storeClient(), o.Faults)
		c, err := cache.New(cache.Config{
			Size: o.CacheSize, MaxBytes: o.CacheMaxBytes, TTL: o.CacheTTL,
			FetchTimeout: o.storeClient().Budget(),
		}, sc, o.Faults, tp)
		if err != nil {
			return nil, err
		}
		s.srv = tierServer(requireTierSecret(o.TierSecret, c.Handler()))
		cacheURL = s.url()
	}
	// API replicas.
	apiURLs := o.APIURLs
	if all || role == RoleAPI {
		if cacheURL == "" {
			return nil, fmt.Errorf("%w: the API needs --cache-url", ErrBadRole)
		}
		n := 1
		if all {
			n = o.APIReplicas
		}
		for range n {
			s, err := listen(RoleAPI)
			if err != nil {
				return nil, err
			}
			tp, err := tel("demo-api", s.ln.Addr().String())
			if err != nil {
				return nil, err
			}
			pool, err := resilience.NewPool(tp, tierSecretTransport(o.TierSecret, base))
			if err != nil {
				return nil, err
			}
			a := api.New(cacheURL, pool, o.cacheClient(), o.Faults, tp)
			s.srv = tierServer(a.Handler())
			if all {
				apiURLs = append(apiURLs, s.url())
			}
		}
	}
	// Edge.
	if all || role == RoleEdge {
		if len(apiURLs) == 0 {
			return nil, fmt.Errorf("%w: the edge needs --api-url", ErrBadRole)
		}
		s, err := listen(RoleEdge)
		if err != nil {
			return nil, err
		}
		tp, err := tel("demo-edge", s.ln.Addr().String())
		if err != nil {
			return nil, err
		}
		p.edge, err = edge.New(edge.Config{
			RateLimit:      o.RateLimit,
			Burst:          o.RateBurst,
			MaxConcurrent:  o.MaxConcurrent,
			Timeout:        o.EdgeTimeout,
			HealthInterval: o.HealthInterval,
			Routes:         api.Routes,
			ClientIDSecret: o.ClientIDSecret,
			Transport:      base,
		}, apiURLs, o.Faults, tp)
		if err != nil {
			return nil, err
		}
		s.srv = tierServer(p.edge.Handler())
		p.edgeURL = s.url()
	}
	// A single-tier process also serves the fault API, since no Burnrate
	// listener is there to mount it.
	if !all || o.ServeFaultAPI {
		s := p.servers[len(p.servers)-1]
		mux := http.NewServeMux()
		mux.Handle("/api/v1/demo/", faults.RequireToken(o.APIToken, o.Faults.Handler()))
		mux.Handle("/", s.srv.Handler)
		s.srv.Handler = mux
	}
	if inp != nil {
		for _, s := range p.servers {
			inp.Handle(s.ln.Addr().String(), s.srv.Handler)
		}
	}
	return p, nil
}

// tierServer is the HTTP server of one tier. Its timeouts bound what a slow
// client can hold; tier calls themselves are bounded far tighter by their
// deadlines (demo.*_timeout).
func tierServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

// tierLabels mark a tier's goroutines in CPU profiles.
func tierLabels(tier string) pprof.LabelSet { return pprof.Labels("component", "demo", "tier", tier) }

// seed fills the catalogue on first start; existing keys are kept.
func seed(st *store.Server, shards, products int) error {
	ring := store.NewRing(shards)
	for id := range products {
		b, err := json.Marshal(api.SeedProduct(id))
		if err != nil {
			return err
		}
		if err := st.Seed(ring, api.ProductKey(id), b); err != nil {
			return fmt.Errorf("seed catalogue: %w", err)
		}
	}
	return nil
}

// Flush exports buffered spans and metrics of every tier now.
func (p *Platform) Flush(ctx context.Context) error {
	var errs []error
	for _, tp := range p.providers {
		errs = append(errs, tp.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

// EdgeURL is the edge's base URL (empty when this process has no edge).
func (p *Platform) EdgeURL() string { return p.edgeURL }

// URLs lists each tier's base URL by role, in start order.
func (p *Platform) URLs() map[string][]string {
	out := map[string][]string{}
	for _, s := range p.servers {
		out[s.name] = append(out[s.name], s.url())
	}
	return out
}

// Faults is the platform's fault set.
func (p *Platform) Faults() *faults.Set { return p.faults }

// HealthyReplicas is the number of API replicas the edge sends traffic to
// (0 when this process has no edge).
func (p *Platform) HealthyReplicas() int {
	if p.edge == nil {
		return 0
	}
	return p.edge.Healthy()
}

// Ready reports whether the edge has a healthy API replica.
func (p *Platform) Ready() error {
	if p.edge != nil && p.edge.Healthy() == 0 {
		return errors.New("no healthy API replica behind the edge")
	}
	return nil
}

// Run serves every tier, checks replica health, applies process-wide faults
// and sends the background load until ctx ends; then it stops them, edge
// first so requests drain inward, and flushes telemetry.
func (p *Platform) Run(ctx context.Context) error {
	p.ran = true
	errc := make(chan error, len(p.servers))
	for _, s := range p.servers {
		go func() {
			// Connections' goroutines inherit the label, so a CPU profile of
			// a process that also runs the collector tells the tiers' reads
			// and writes from everyone else's (bench/demo splits by it).
			pprof.Do(context.Background(), tierLabels(s.name), func(context.Context) {
				if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errc <- fmt.Errorf("demo %s: %w", s.name, err)
				}
			})
		}()
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.stressor.Run(rctx) })
	if p.edge != nil {
		wg.Go(func() { _ = p.edge.Run(rctx) })
		wg.Go(func() { p.backgroundLoad(rctx) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	p.shutdown()
	return err
}

// SetLoad switches the background load on or off while the platform runs
// (the UI's and the API's load switch).
func (p *Platform) SetLoad(on bool) {
	p.loadOn.Store(on)
	select {
	case p.loadChanged <- struct{}{}:
	default:
	}
}

// LoadOn reports whether the background load runs.
func (p *Platform) LoadOn() bool { return p.loadOn.Load() }

// backgroundLoad keeps the dashboards alive: the configured shape, in runs
// each bounded in time and count, while the load is switched on and until
// ctx ends. Switching it off ends the current run at once.
func (p *Platform) backgroundLoad(ctx context.Context) {
	lo := p.opts.Load
	for ctx.Err() == nil {
		if !p.loadOn.Load() {
			select {
			case <-ctx.Done():
				return
			case <-p.loadChanged:
			}
			continue
		}
		runCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-p.loadChanged:
				cancel()
			case <-runCtx.Done():
			}
		}()
		rep, err := load.Run(runCtx, load.Options{
			Target:   p.edgeURL,
			Rate:     lo.Rate,
			Duration: lo.Period,
			Period:   lo.Period,
			Shape:    lo.Shape,
			Clients:  lo.Clients,
			Keys:     p.opts.Products,
			Timeout:  5 * time.Second,
			// Signed, so each simulated client has its own bucket.
			ClientSecret: p.opts.ClientIDSecret,
		}, nil)
		stopped := runCtx.Err() != nil
		cancel()
		if err != nil && !stopped {
			p.logger.Error("background load failed", "err", err)
			return
		}
		p.logger.Debug("background load run finished", "requests", rep.Requests, "p99_ms", rep.Latency.P99, "status", rep.Status)
	}
}

func (p *Platform) shutdown() {
	// Servers were added store first; stop the edge first.
	for i := len(p.servers) - 1; i >= 0; i-- {
		s := p.servers[i]
		if s.srv == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, tp := range p.providers {
		if err := tp.Shutdown(ctx); err != nil {
			p.logger.Debug("telemetry flush on stop failed", "err", err)
		}
	}
}

// Close releases listeners of a platform that never ran and closes the
// shards. Run does not close the shards; the caller closes after Run.
func (p *Platform) Close() error {
	for _, s := range p.servers {
		_ = s.ln.Close()
	}
	if !p.ran {
		// Exporters started in New; Run stops them, so a platform that never
		// ran stops them here.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		for _, tp := range p.providers {
			_ = tp.Shutdown(ctx)
		}
		cancel()
	}
	if p.store != nil {
		return p.store.Close()
	}
	return nil
}

// DataDirFor is where the platform keeps its shards under a data directory.
func DataDirFor(dataDir string) string { return filepath.Join(dataDir, "demo") }
