// Package app is Burnrate's composition root: it builds every component from
// typed Options, wires them into one oklog/run group and stops them in order.
//
// It never touches signals or flags. cmd/burnrate turns those into a context
// and Options; tests start the same App on 127.0.0.1:0 and wait for /-/ready.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/collector"
	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/deploy"
	"github.com/burnrate/burnrate/incidents"
	"github.com/burnrate/burnrate/internal/httpserver"
	"github.com/burnrate/burnrate/sloengine"
)

// Options is everything a Burnrate process is built from. The mapstructure
// tags are the configuration keys (YAML file, BURNRATE_* variables, flags).
type Options struct {
	// Listen is the address of the one HTTP listener (UI, APIs, /metrics).
	Listen string `mapstructure:"listen"`
	// DataDir holds every store: TSDB, SQLite databases, trace store.
	DataDir string `mapstructure:"data_dir"`
	// APIToken, when set, is required as a bearer token on mutating API calls
	// and on the deploy gate.
	APIToken string `mapstructure:"api_token" secret:"true"`
	// APITokens are named tokens with scopes (read, write, ingest,
	// gate:grant, admin); the name of the token a change was made with is
	// recorded as its actor. APIToken keeps working as an admin named
	// "api_token".
	APITokens []httpserver.Token `mapstructure:"api_tokens"`
	// ShutdownTimeout bounds how long in-flight HTTP requests may drain.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// ReadTimeout, WriteTimeout and IdleTimeout bound the main listener's
	// requests: the time to send a body, the time to answer (longer than
	// collector.query.timeout, so queries finish), the idle time of a
	// kept-alive connection. Ingest bodies have their own bound
	// (collector.ingest.body_timeout).
	ReadTimeout  time.Duration `mapstructure:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	IdleTimeout  time.Duration `mapstructure:"idle_timeout"`

	// Collector configures ingest (OTLP, remote write, scrape), the TSDB,
	// the query API and the trace store.
	Collector collector.Config `mapstructure:"collector"`

	// Demo configures the demo platform that `burnrate up` runs.
	Demo demoapp.Config `mapstructure:"demo"`
	// SelfScrape scrapes Burnrate's own /metrics into its TSDB (job
	// "burnrate") at collector.scrape.interval.
	SelfScrape bool `mapstructure:"self_scrape"`

	// Slos lists SLO files or directories (Sloth prometheus/v1, burnrate/v1
	// or OpenSLO v1). `up` adds the demo platform's embedded SLOs.
	Slos []string `mapstructure:"slos"`
	// Metrics selects where SLIs are queried: the embedded TSDB ("tsdb") or
	// an external Prometheus-compatible API ("prometheus" at metrics.url).
	Metrics sloengine.MetricsConfig `mapstructure:"metrics"`
	// SLO configures the SLO engine (evaluation interval, history kept).
	SLO sloengine.Config `mapstructure:"slo"`

	// Alerting configures SLO alert rules, routing, silences, the outbox
	// and the receivers (Slack, webhook, Alertmanager).
	Alerting alerting.Config `mapstructure:"alerting"`

	// Deploy configures the deploy gate's error-budget policies.
	Deploy DeployConfig `mapstructure:"deploy"`
	// Incidents configures incidents opened from alerts (tickets, what an
	// alert's resolution does, the default escalation policy).
	Incidents incidents.Config `mapstructure:"incidents"`

	// Logger and Registry are injected, never read from configuration.
	Logger   *slog.Logger         `mapstructure:"-"`
	Registry *prometheus.Registry `mapstructure:"-"`
}

// DefaultOptions are the embedded defaults `burnrate up` runs on.
func DefaultOptions() Options {
	return Options{
		Listen:          "127.0.0.1:8080",
		DataDir:         "./data",
		ShutdownTimeout: 4 * time.Second,
		ReadTimeout:     httpserver.DefaultReadTimeout,
		WriteTimeout:    httpserver.DefaultWriteTimeout,
		IdleTimeout:     httpserver.DefaultIdleTimeout,
		Collector:       collector.DefaultConfig(),
		Demo:            demoapp.DefaultConfig(),
		SelfScrape:      true,
		Metrics:         sloengine.MetricsConfig{Backend: "tsdb"},
		SLO:             sloengine.DefaultConfig(),
		Alerting:        alerting.DefaultConfig(),
		Incidents:       incidents.Config{}.WithDefaults(),
	}
}

// Validate reports the first invalid option, naming its configuration key.
func (o Options) Validate() error {
	if err := o.httpConfig().Validate(); err != nil {
		return err
	}
	if q := o.Collector.WithDefaults().Query.Timeout; o.WriteTimeout > 0 && o.WriteTimeout <= q {
		return fmt.Errorf("write_timeout: %s must be longer than collector.query.timeout (%s), or long queries lose their answer", o.WriteTimeout, q)
	}
	if o.Collector.RequireToken && !httpserver.NewAuthenticator(o.APIToken, o.APITokens).CanAny(httpserver.ScopeIngest) {
		return errors.New("collector.require_token: no api_token, and no api_tokens entry with the ingest scope: nothing could push")
	}
	if o.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if err := o.Collector.Validate(); err != nil {
		return err
	}
	if err := o.Demo.Validate(); err != nil {
		return err
	}
	if err := o.Metrics.Validate(); err != nil {
		return err
	}
	if err := o.SLO.Validate(); err != nil {
		return err
	}
	if err := o.Alerting.Validate(); err != nil {
		return err
	}
	if err := o.Deploy.Validate(); err != nil {
		return err
	}
	if err := o.Incidents.Validate(); err != nil {
		return err
	}
	if o.ShutdownTimeout > 4500*time.Millisecond {
		return fmt.Errorf("shutdown_timeout: %s is too long: the whole process must stop within 5s", o.ShutdownTimeout)
	}
	return nil
}

// httpConfig is the main listener's part of the options.
func (o Options) httpConfig() httpserver.Config {
	return httpserver.Config{
		Listen:          o.Listen,
		Token:           o.APIToken,
		Tokens:          o.APITokens,
		ShutdownTimeout: o.ShutdownTimeout,
		ReadTimeout:     o.ReadTimeout,
		WriteTimeout:    o.WriteTimeout,
		IdleTimeout:     o.IdleTimeout,
	}
}

// Endpoint is a URL worth printing at start-up.
type Endpoint struct {
	Name string
	URL  string
}

// App is a built, not yet running, Burnrate process.
type App struct {
	opts   Options
	logger *slog.Logger
	reg    *prometheus.Registry
	http   *httpserver.Server

	// collector is the TSDB, query engine and ingest; other components
	// (the SLO engine) query and write through it.
	collector *collector.Collector
	// slo is the SLO engine; alerting and the deploy gate read its Snapshot.
	slo *sloengine.Engine
	// alerting holds alerts, silences and the notification outbox.
	alerting *alerting.Manager
	// faults are the demo platform's fault flags (nil without the demo).
	faults *faults.Set
	// rulesNow asks for the alert rules to run after an SLO evaluation.
	rulesNow chan struct{}
	// gate answers deploy pipelines from the SLO engine's snapshot.
	gate *deploy.Gate
	// gateSrc is the gate's index of the SLO engine's statuses, rebuilt
	// after each evaluation.
	gateSrc atomic.Pointer[gateSource]
	// incidents is alerting's "incidents" receiver, so it is built first.
	incidents *incidents.Service

	// closers release storage in reverse order of opening, after every actor
	// of the run group has returned.
	closers   []closer
	closeOnce sync.Once
	actors    []actor
	clients   []client
	endpoints []Endpoint
	reloaders []reloader
	static    []string // components that cannot reload
}

type closer struct {
	name string
	fn   func() error
}

// actor is a long-running component: execute runs until interrupt is called.
type actor struct {
	name      string
	execute   func() error
	interrupt func(error)
}

type reloader struct {
	name string
	fn   func(Options) error
}

// New builds the process: it creates the data directory, opens storage and
// binds the listener, so that errors surface before anything runs.
func New(opts Options) (*App, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	a := &App{opts: opts, logger: opts.Logger, reg: opts.Registry, rulesNow: make(chan struct{}, 1)}

	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: create %s: %w", opts.DataDir, err)
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	a.opts.DataDir = abs

	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("burnrate"),
	)

	srv, err := httpserver.New(opts.httpConfig(), a.logger.With("component", "http"), a.reg, a.reg)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	a.http = srv
	a.addStatic("http (listen address, api_token)")
	a.addEndpoint("health", "/-/ready")
	a.addEndpoint("metrics", "/metrics")

	// Components are built here, storage first, each in a build* function in
	// its own file (internal/app/<component>.go). A failure closes what was
	// already opened.
	for _, build := range []func() error{
		a.buildCollector,
		a.buildDemo,
		a.buildSLOEngine,
		a.buildIncidents,
		a.buildAlerting,
		a.buildDeploy,
		a.buildUI,
		a.buildAnnotations,
	} {
		if err := build(); err != nil {
			a.http.Close()
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// addActor adds a long-running component. Actors start together and stop in
// the order they were added, after the HTTP listener.
func (a *App) addActor(name string, execute func() error, interrupt func(error)) {
	a.actors = append(a.actors, actor{name: name, execute: execute, interrupt: interrupt})
}

// client is a component that sends to this process's own listener (the demo
// platform exports its telemetry over OTLP/HTTP to it). It must stop, and
// flush, before the listener drains.
type client struct {
	name string
	run  func(context.Context) error
}

// addClient adds a long-running component that talks to the main listener.
// On stop it is cancelled and awaited (at most clientStopTimeout) before the
// listener starts draining, so its last requests are still answered.
func (a *App) addClient(name string, run func(context.Context) error) {
	a.clients = append(a.clients, client{name: name, run: run})
}

// clientStopTimeout bounds the wait for clients inside the 5 s stop budget.
const clientStopTimeout = 1500 * time.Millisecond

// addRunner adds a component whose Run(ctx) returns when ctx is cancelled.
func (a *App) addRunner(name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	a.addActor(name, func() error {
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, func(error) { cancel() })
}

// addCloser registers storage to close after every actor has returned, in
// reverse order of registration.
func (a *App) addCloser(name string, fn func() error) {
	a.closers = append(a.closers, closer{name: name, fn: fn})
}

// addReloader registers a component that can apply new options at run time.
// Components without one are listed by Reload as needing a restart.
func (a *App) addReloader(name string, fn func(Options) error) {
	a.reloaders = append(a.reloaders, reloader{name: name, fn: fn})
}

// addStatic records a component that cannot reload its configuration.
func (a *App) addStatic(name string) { a.static = append(a.static, name) }

// mount mounts a component's handler and records a URL worth printing.
func (a *App) mount(pattern string, h http.Handler) { a.http.Handle(pattern, h) }

// addEndpoint records a URL printed at start-up.
func (a *App) addEndpoint(name, path string) {
	a.endpoints = append(a.endpoints, Endpoint{Name: name, URL: a.http.URL() + path})
}

// addReady makes /-/ready depend on a component.
func (a *App) addReady(name string, fn func() error) { a.http.AddReadyCheck(name, fn) }

// URL is the base URL of the HTTP listener.
func (a *App) URL() string { return a.http.URL() }

// Endpoints lists the URLs a user wants to know about, in print order.
func (a *App) Endpoints() []Endpoint { return append([]Endpoint(nil), a.endpoints...) }

// Ready reports whether every component is ready, as /-/ready does.
func (a *App) Ready() error { return a.http.Ready() }

// Run runs every component until ctx is cancelled or one of them fails, then
// stops them: HTTP first so in-flight requests drain while the engines still
// run, storage last.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	var g run.Group
	{
		// The context is the stop signal (SIGINT/SIGTERM in cmd/burnrate, test
		// cleanup in tests). Its actor returns when it is cancelled, which
		// interrupts every other actor.
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			<-ctx.Done()
			return nil
		}, func(error) {
			cancel()
		})
	}
	var stopClients []func()
	for _, c := range a.clients {
		// Clients of the listener run beside it; the listener's interrupt
		// stops them first.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			if err := c.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		}, func(error) { cancel() })
		stopClients = append(stopClients, func() {
			cancel()
			select {
			case <-done:
			case <-time.After(clientStopTimeout):
				a.logger.Warn("component did not stop in time; the listener drains without it", "component", c.name)
			}
		})
	}
	{
		// The HTTP listener: on stop it first lets its own clients finish,
		// then drains in-flight requests before the components behind them
		// go away.
		g.Add(a.http.Run, func(error) {
			for _, stop := range stopClients {
				stop()
			}
			a.http.Shutdown()
		})
	}
	for _, ac := range a.actors {
		// Components run behind the listener and stop after it has drained:
		// run.Group calls interrupts in the order actors were added.
		g.Add(ac.execute, ac.interrupt)
	}
	a.logger.Info("burnrate started", "url", a.URL(), "data_dir", a.opts.DataDir)
	err := g.Run()
	a.logger.Info("burnrate stopping")
	return err
}

// Close releases storage in reverse order of opening. Run calls it; callers
// that build an App and never run it call it themselves. It is idempotent.
func (a *App) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			c := a.closers[i]
			if err := c.fn(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", c.name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Reload applies opts to the components that can change at run time and
// logs, for each one that cannot, that a restart is needed.
func (a *App) Reload(opts Options) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	var errs []error
	for _, r := range a.reloaders {
		if err := r.fn(opts); err != nil {
			errs = append(errs, fmt.Errorf("reload %s: %w", r.name, err))
		}
	}
	for _, name := range a.static {
		a.logger.Info("component cannot reload its configuration; restart to apply changes", "component", name)
	}
	return errors.Join(errs...)
}
