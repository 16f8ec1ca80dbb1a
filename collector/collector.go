// Package collector receives metrics (OTLP/HTTP, Prometheus remote write,
// Prometheus scrape) into an embedded Prometheus TSDB, answers the Prometheus
// query API over it, and receives OTLP traces for the trace store.
//
// It is built from Prometheus's own parts wherever they exist: the tsdb and
// promql packages, the OTLP translator, the remote-write handler and queue
// manager, the scrape manager and web/api/v1. What Burnrate adds around them
// is what a shared ingest endpoint needs: body limits and media-type checks
// with OTLP's status codes, back-pressure, cardinality limits that reject
// with a clear count instead of falling over, and per-reason accounting.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// SpanStore keeps the spans received on /v1/traces (collector/tracestore).
type SpanStore interface {
	// Append stores td and returns how many spans it rejected. An error that
	// IsOverloaded recognises makes the sender retry later (429).
	Append(ctx context.Context, td ptrace.Traces) (rejected int, err error)
}

// Collector is the running ingest and query side of Burnrate.
type Collector struct {
	cfg      Config
	dir      string
	logger   *slog.Logger
	reg      prometheus.Registerer
	gatherer prometheus.Gatherer

	db      *tsdb.DB
	remote  *remote.Storage // nil without remote_write.url
	storage storage.Storage // db, or db fanned out to remote
	guarded *guardedStorage
	limiter *limiter
	metrics *metrics
	engine  *promql.Engine
	parser  parser.Parser
	d2c     interface {
		ConsumeMetrics(context.Context, pmetric.Metrics) error
		Shutdown(context.Context) error
	}
	scrape   *scrape.Manager
	api      http.Handler
	rw       http.Handler
	inflight chan struct{}
	clients  *clientSlots
	health   *storageHealth
	auth     *httpserver.Authenticator
	closing  atomic.Bool

	spans        SpanStore
	isOverloaded func(error) bool

	otlpLn  net.Listener
	otlpSrv *http.Server

	closeOnce sync.Once
	// observe is told of the series each committed ingest request wrote.
	observe atomic.Pointer[func(labels.Labels)]
}

// Options are what Open needs.
type Options struct {
	// Dir is the TSDB's directory, created if missing. Required.
	Dir    string
	Config Config
	// Logger and Registerer default to discarding. Registerer receives the
	// collector's, the TSDB's and the engine's metrics; Gatherer (usually
	// the same registry) serves /api/v1/status pages.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Validate checks the options and the configuration.
func (o Options) Validate() error {
	if o.Dir == "" {
		return errors.New("collector: a data directory is required")
	}
	return o.Config.Validate()
}

// Open opens (or creates) the TSDB in o.Dir, replaying its WAL, and builds
// every handler. The OTLP listener, when configured, is bound here so that
// a busy port fails start-up rather than the first export.
func Open(o Options) (*Collector, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir, cfg, logger, reg, gatherer := o.Dir, o.Config, o.Logger, o.Registerer, o.Gatherer
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("collector: create %s: %w", dir, err)
	}
	c := &Collector{
		cfg: cfg, dir: dir, logger: logger, reg: reg, gatherer: gatherer,
		inflight:     make(chan struct{}, cfg.MaxInflightRequests),
		clients:      newClientSlots(cfg.Ingest.MaxInflightPerClient),
		isOverloaded: func(error) bool { return false },
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()

	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.TSDB.Retention.Milliseconds()
	opts.MaxBytes = cfg.TSDB.RetentionBytes
	opts.OutOfOrderTimeWindow = cfg.TSDB.OutOfOrderWindow.Milliseconds()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = cfg.TSDB.MaxExemplars
	opts.WALCompression = "snappy"
	db, err := tsdb.Open(dir, logger.With("component", "tsdb"), reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("collector: open tsdb %s: %w", dir, err)
	}
	c.db = db
	c.storage = db

	c.metrics, err = newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("collector: register metrics: %w", err)
	}
	c.limiter = newLimiter(cfg.Limits)
	if err := c.limiter.rebuild(context.Background(), db, time.Now()); err != nil {
		return nil, fmt.Errorf("collector: series limits from the head: %w", err)
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "burnrate_collector_active_series",
		Help: "Series the active series limit counts: those of the TSDB head.",
	}, c.activeSeries)); err != nil {
		return nil, fmt.Errorf("collector: register metrics: %w", err)
	}

	c.parser = parser.NewParser(parser.Options{})
	c.engine = promql.NewEngine(promql.EngineOpts{
		Logger:                   logger.With("component", "promql"),
		Reg:                      reg,
		MaxSamples:               cfg.Query.MaxSamples,
		Timeout:                  cfg.Query.Timeout,
		LookbackDelta:            cfg.Query.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   c.parser,
	})

	if cfg.RemoteWrite.URL != "" {
		if err := c.openRemoteWrite(); err != nil {
			return nil, err
		}
	}
	c.health = &storageHealth{dir: dir, probeEvery: time.Second}
	c.guarded = &guardedStorage{db: c.storage, limiter: c.limiter, metrics: c.metrics, protocol: protoScrape, now: time.Now,
		observe: &c.observe, health: c.health}

	if cfg.OTLP.DeltaToCumulative {
		d2c, err := newDeltaToCumulative(c.convertOTLP, cfg.Limits.MaxDeltaStreams, c.countDeltaDrops)
		if err != nil {
			return nil, fmt.Errorf("collector: delta to cumulative: %w", err)
		}
		c.d2c = d2c
	}
	if err := c.openScrape(); err != nil {
		return nil, err
	}
	c.rw = newRemoteWriteHandler(logger, reg, c.guarded)
	c.api = c.newAPI()

	if cfg.OTLPListen != "" {
		ln, err := net.Listen("tcp", cfg.OTLPListen)
		if err != nil {
			return nil, fmt.Errorf("collector.otlp_listen: %w", err)
		}
		c.otlpLn = ln
		mux := http.NewServeMux()
		mux.Handle("/v1/metrics", c.OTLPMetricsHandler())
		mux.Handle("/v1/traces", c.OTLPTracesHandler())
		// Ingest handlers set each body's deadline themselves
		// (collector.ingest.body_timeout); ReadTimeout bounds what else
		// arrives with a body, such as a POST to an unknown path.
		c.otlpSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10*time.Second + cfg.Ingest.BodyTimeout,
			WriteTimeout:      cfg.Ingest.WriteTimeout,
			IdleTimeout:       cfg.Ingest.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
	}
	ok = true
	return c, nil
}

// SetSpanStore hands /v1/traces to a trace store. isOverloaded recognises
// its push-back errors (answered 429 with Retry-After).
func (c *Collector) SetSpanStore(s SpanStore, isOverloaded func(error) bool) {
	c.spans = s
	if isOverloaded != nil {
		c.isOverloaded = isOverloaded
	}
}

// SetAuthenticator gives ingest the process's API tokens, for
// collector.require_token. Call it before serving.
func (c *Collector) SetAuthenticator(a *httpserver.Authenticator) { c.auth = a }

// Storage is the TSDB (fanned out to remote write when configured), for
// components that query it or write recorded series back (the SLO engine).
// Writes through it bypass the ingest limits.
func (c *Collector) Storage() storage.Storage { return c.storage }

// ObserveWrites has fn told, once per committed ingest request (OTLP,
// remote write, scrape), of every series the request wrote to, so the SLO
// engine can evaluate the SLOs reading them as their samples arrive. fn
// must be cheap and safe for concurrent use.
func (c *Collector) ObserveWrites(fn func(labels.Labels)) { c.observe.Store(&fn) }

// QueryEngine is the PromQL engine the query API uses.
func (c *Collector) QueryEngine() *promql.Engine { return c.engine }

// DB is the embedded TSDB itself.
func (c *Collector) DB() *tsdb.DB { return c.db }

// OTLPAddr is the address of the separate OTLP listener, empty without one.
func (c *Collector) OTLPAddr() string {
	if c.otlpLn == nil {
		return ""
	}
	return c.otlpLn.Addr().String()
}

// OTLPMetricsHandler serves POST /v1/metrics.
func (c *Collector) OTLPMetricsHandler() http.Handler {
	return c.ingest(protoOTLP, c.serveOTLPMetrics)
}

// OTLPTracesHandler serves POST /v1/traces.
func (c *Collector) OTLPTracesHandler() http.Handler {
	return c.ingest(protoTraces, c.serveOTLPTraces)
}

// RemoteWriteHandler serves POST /api/v1/write (remote write 1.0).
func (c *Collector) RemoteWriteHandler() http.Handler {
	return c.ingest(protoRemoteWrite, c.serveRemoteWrite)
}

// APIHandler serves the Prometheus query API under /api/v1/ (see APIPaths).
func (c *Collector) APIHandler() http.Handler { return c.api }

// Mount registers every collector endpoint with mount (a ServeMux's Handle).
func (c *Collector) Mount(mount func(pattern string, h http.Handler)) {
	mount("/v1/metrics", c.OTLPMetricsHandler())
	mount("/v1/traces", c.OTLPTracesHandler())
	mount("/api/v1/write", c.RemoteWriteHandler())
	for _, p := range APIPaths {
		mount(p, c.api)
	}
}

// Ready reports whether the TSDB is open, not closing, and taking writes:
// after a commit failed (a full disk), it is not ready, with the reason,
// until a commit or a probe write to the TSDB's directory succeeds.
func (c *Collector) Ready() error {
	if c.closing.Load() {
		return errors.New("collector is shutting down")
	}
	return c.health.check(time.Now())
}

// Run serves the OTLP listener, scrapes, and forgets idle series for the
// limits until ctx is cancelled. Remote write out runs from Open to Close, so
// that it drains the WAL after the last request.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if c.otlpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.otlpSrv.Serve(c.otlpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("otlp listener: %w", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.runScrape(ctx); err != nil {
			errc <- err
		}
	}()

	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case now := <-tick.C:
			if err := c.limiter.sweep(ctx, c.db, now); err != nil && ctx.Err() == nil {
				c.logger.Warn("sweeping the series limits", "err", err)
			}
		}
	}
	c.closing.Store(true)
	if c.otlpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if serr := c.otlpSrv.Shutdown(sctx); serr != nil {
			_ = c.otlpSrv.Close()
		}
		cancel()
	}
	c.scrape.Stop()
	wg.Wait()
	return err
}

// activeSeries is what the active series limit counts (the head's series
// when no limit tracks them).
func (c *Collector) activeSeries() float64 {
	if c.limiter.tracking() {
		return float64(c.limiter.total.Load())
	}
	return float64(c.db.Head().NumSeries())
}

// Close flushes remote write and closes the TSDB. Call it after Run returned.
func (c *Collector) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if c.otlpLn != nil {
			_ = c.otlpLn.Close() // already closed when Run served it
		}
		if c.d2c != nil {
			errs = append(errs, c.d2c.Shutdown(context.Background()))
		}
		if c.remote != nil {
			errs = append(errs, c.remote.Close())
		}
		if c.db != nil {
			errs = append(errs, c.db.Close())
		}
	})
	return errors.Join(errs...)
}
