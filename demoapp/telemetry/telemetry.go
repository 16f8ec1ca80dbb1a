// Package telemetry sets up OpenTelemetry for one demo component: a tracer
// and a meter provider with the component's resource, exporting over
// OTLP/HTTP to a collector.
//
// Nothing here is global. Each component instance gets its own providers, so
// four components in one process still look like four services (service.name
// demo-edge, demo-api, demo-cache, demo-store) with distinct
// service.instance.id values; two replicas sharing a resource would otherwise
// interleave their cumulative counters into one garbled series.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Options configure the providers of one component.
// headers are the HTTP headers of every export.
func (o Options) headers() map[string]string {
	if o.Token == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + o.Token}
}

type Options struct {
	// Enabled turns instrumentation on. Off, the providers are no-ops and
	// nothing is exported (the benchmark's baseline).
	Enabled bool
	// Endpoint is the collector's base URL; signals go to Endpoint+"/v1/metrics"
	// and Endpoint+"/v1/traces".
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <token>" with
	// every export (a collector with collector.require_token).
	Token string
	// MetricInterval is how often metrics are exported.
	MetricInterval time.Duration
	// SampleRatio is the share of traces kept whole whatever they did
	// (consistent on the trace ID, parent-based). Outside it, spans that
	// failed or took at least KeepSlowerThan are kept too (sampling.go).
	SampleRatio float64
	// KeepSlowerThan is the latency from which a span is kept outside the
	// share (0: only failed spans are).
	KeepSlowerThan time.Duration
	// SpanExporter and MetricReader replace the OTLP exporters (tests).
	SpanExporter sdktrace.SpanExporter
	MetricReader sdkmetric.Reader
	Logger       *slog.Logger
}

// Providers are one component's telemetry.
type Providers struct {
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator

	shutdown []func(context.Context) error
	flush    []func(context.Context) error

	// replays: spans outside the sampled share that failed or took at
	// least keepSlowerThan are recorded at their end (sampling.go).
	replays        bool
	keepSlowerThan time.Duration
}

// Propagator is W3C trace context plus baggage, used on every hop.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New builds the providers for service (demo-edge, ...) and instance (its
// listen address).
func New(ctx context.Context, service, instance string, o Options) (*Providers, error) {
	p := &Providers{Propagator: Propagator()}
	if !o.Enabled {
		p.Tracer = tracenoop.NewTracerProvider()
		p.Meter = metricnoop.NewMeterProvider()
		return p, nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MetricInterval <= 0 {
		o.MetricInterval = 5 * time.Second
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.instance.id", instance),
	)
	logger := o.Logger.With("service", service)

	spanExp := o.SpanExporter
	if spanExp == nil {
		if o.Endpoint == "" {
			return nil, errors.New("telemetry: no collector endpoint")
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint+"/v1/traces"), otlptracehttp.WithHeaders(o.headers()))
		if err != nil {
			return nil, fmt.Errorf("telemetry: trace exporter: %w", err)
		}
		spanExp = &quietSpans{SpanExporter: exp, log: newQuietLog(logger, "trace export failed")}
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler(o.SampleRatio)),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(spanExp, sdktrace.WithBatchTimeout(2*time.Second), sdktrace.WithMaxQueueSize(8192))),
	)
	p.replays, p.keepSlowerThan = true, o.KeepSlowerThan
	p.Tracer = tp
	p.shutdown = append(p.shutdown, tp.Shutdown)
	p.flush = append(p.flush, tp.ForceFlush)

	reader := o.MetricReader
	if reader == nil {
		if o.Endpoint == "" {
			return nil, errors.New("telemetry: no collector endpoint")
		}
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(o.Endpoint+"/v1/metrics"), otlpmetrichttp.WithHeaders(o.headers()))
		if err != nil {
			return nil, fmt.Errorf("telemetry: metric exporter: %w", err)
		}
		reader = sdkmetric.NewPeriodicReader(&quietMetrics{Exporter: exp, log: newQuietLog(logger, "metric export failed")},
			sdkmetric.WithInterval(o.MetricInterval))
	}
	// otelhttp also recorded request and response body sizes on every side
	// of every hop; the HTTP instrumentation here (http.go) does not.
	// Nothing reads them; the view still drops them should any
	// instrumentation record them, which keeps two thirds of the HTTP
	// histogram series out of every export and of the TSDB.
	dropBodySizes := sdkmetric.NewView(sdkmetric.Instrument{Name: "http.*.body.size"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}})
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader), sdkmetric.WithView(dropBodySizes),
		sdkmetric.WithExemplarFilter(exemplarFilter))
	p.Meter = mp
	p.shutdown = append(p.shutdown, mp.Shutdown)
	p.flush = append(p.flush, mp.ForceFlush)
	return p, nil
}

// ForceFlush exports what is buffered now.
func (p *Providers) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, fn := range p.flush {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Shutdown flushes and stops the exporters.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, fn := range p.shutdown {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// quietLog logs export failures at most once a minute: a collector that is
// down should not flood the log every five seconds per component. Failures
// are swallowed here so that the SDK does not also report them through the
// process-global error handler.
type quietLog struct {
	log  *slog.Logger
	msg  string
	mu   sync.Mutex
	last time.Time
	n    int
}

func newQuietLog(l *slog.Logger, msg string) *quietLog { return &quietLog{log: l, msg: msg} }

func (q *quietLog) report(err error) {
	if err == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	if time.Since(q.last) < time.Minute {
		return
	}
	q.log.Warn(q.msg, "err", err, "failures", q.n)
	q.last = time.Now()
	q.n = 0
}

type quietSpans struct {
	sdktrace.SpanExporter
	log *quietLog
}

func (q *quietSpans) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	q.log.report(q.SpanExporter.ExportSpans(ctx, spans))
	return nil
}

type quietMetrics struct {
	sdkmetric.Exporter
	log *quietLog
}

func (q *quietMetrics) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	q.log.report(q.Exporter.Export(ctx, rm))
	return nil
}
