package collector

import (
	"context"
	"errors"
	"fmt"
	"math"

	deltatocumulative "github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Reasons for delta points the delta-to-cumulative processor drops.
const (
	// reasonDeltaOutOfOrder is a delta point not after the newest of its
	// stream: out of order, or a duplicate (a retried export).
	reasonDeltaOutOfOrder = "delta_out_of_order"
	// reasonDeltaOlderStart is a delta point whose start time is before its
	// stream's: usually two processes sending the same stream.
	reasonDeltaOlderStart = "delta_older_start"
	// reasonDeltaStreamLimit is a point of a new delta stream beyond
	// collector.limits.max_delta_streams.
	reasonDeltaStreamLimit = "delta_stream_limit"
)

// deltaDropMessages explain each reason to the sender.
var deltaDropMessages = map[string]string{
	reasonDeltaOutOfOrder:  "delta point not after the newest point of its stream (out of order or a duplicate)",
	reasonDeltaOlderStart:  "delta point starts before its stream does (two senders of the same stream?)",
	reasonDeltaStreamLimit: "new delta stream beyond collector.limits.max_delta_streams",
	reasonInvalidSample:    "delta point could not be accumulated",
}

// errDeltaDropped is wrapped by the errors that report delta drops.
var errDeltaDropped = errors.New("delta point dropped")

// newDeltaToCumulative builds the OpenTelemetry Collector's
// delta-to-cumulative processor in front of fn, with its stream state
// bounded by maxStreams (0 means no bound). The processor drops points
// silently but for its own telemetry; drops reports each of them, with the
// request's context, so that they are counted and answered.
func newDeltaToCumulative(fn consumer.ConsumeMetricsFunc, maxStreams int, drops func(ctx context.Context, reason string, n int64)) (processor.Metrics, error) {
	next, err := consumer.NewMetrics(fn)
	if err != nil {
		return nil, err
	}
	fac := deltatocumulative.NewFactory()
	set := processor.Settings{
		ID:                component.NewID(fac.Type()),
		TelemetrySettings: component.TelemetrySettings{MeterProvider: dropMeterProvider{drops: drops}},
	}
	cfg := fac.CreateDefaultConfig().(*deltatocumulative.Config)
	cfg.MaxStreams = math.MaxInt
	if maxStreams > 0 {
		cfg.MaxStreams = maxStreams
	}
	p, err := fac.CreateMetrics(context.Background(), set, cfg, next)
	if err != nil {
		return nil, err
	}
	if err := p.Start(context.Background(), nil); err != nil {
		return nil, err
	}
	return p, nil
}

// deltaDropReason maps the processor's error attribute (an error type name
// or "limit") to a rejection reason.
func deltaDropReason(attr string) string {
	switch attr {
	case "delta.ErrOutOfOrder":
		return reasonDeltaOutOfOrder
	case "delta.ErrOlderStart":
		return reasonDeltaOlderStart
	case "limit":
		return reasonDeltaStreamLimit
	}
	return reasonInvalidSample
}

// dropMeterProvider hands the processor a data point counter that reports
// failed points (those with an "error" attribute) to drops; every other
// instrument is a no-op.
type dropMeterProvider struct {
	noop.MeterProvider
	drops func(ctx context.Context, reason string, n int64)
}

func (p dropMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return dropMeter{drops: p.drops}
}

type dropMeter struct {
	noop.Meter
	drops func(ctx context.Context, reason string, n int64)
}

func (m dropMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	if name == "otelcol_deltatocumulative_datapoints" {
		return dropCounter{drops: m.drops}, nil
	}
	return m.Meter.Int64Counter(name, opts...)
}

type dropCounter struct {
	noop.Int64Counter
	drops func(ctx context.Context, reason string, n int64)
}

func (dropCounter) Enabled(context.Context) bool { return true }

func (c dropCounter) Add(ctx context.Context, n int64, opts ...metric.AddOption) {
	attrs := metric.NewAddConfig(opts).Attributes()
	if v, ok := attrs.Value("error"); ok {
		c.drops(ctx, deltaDropReason(v.AsString()), n)
	}
}

// countDeltaDrops counts points the processor dropped against the request
// in ctx and in the collector's metrics.
func (c *Collector) countDeltaDrops(ctx context.Context, reason string, n int64) {
	var counts ingestCounts
	counts.reject(reason, int(n), fmt.Errorf("%w: %s", errDeltaDropped, deltaDropMessages[reason]))
	st, p := c.guarded.state(ctx)
	c.guarded.flush(st, p, counts)
}
