package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	deltatocumulative "github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
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

// pointLabel marks each delta point with its index while admitDelta
// translates a copy of the request.
const pointLabel = "burnrate_delta_point"

// admitDelta puts the series limits in front of the delta-to-cumulative
// state, so that a flood of new streams is refused before it fills that
// state: it translates a copy of the delta metrics (the series names need
// Prometheus's translator), asks the limiter about every series, and
// removes from md the points with a refused series, counting them.
func (c *Collector) admitDelta(ctx context.Context, md pmetric.Metrics) error {
	if !c.limiter.tracking() {
		return nil
	}
	cp, points := deltaCopy(md)
	adm := &admitAppender{limiter: c.limiter, now: c.guarded.now().Unix(), refused: map[int]error{}}
	settings := c.translatorSettings()
	settings.DisableTargetInfo = true
	if _, err := prw.NewPrometheusConverter(adm).FromMetrics(ctx, cp, settings); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// What the copy could not translate, the real pass reports.
	}
	if len(adm.refused) == 0 {
		return nil
	}
	var counts ingestCounts
	for idx, err := range adm.refused {
		counts.reject(classify(err), 1, err)
		points[idx] = true
	}
	removeDropped(md, points)
	st, p := c.guarded.state(ctx)
	c.guarded.flush(st, p, counts)
	return nil
}

// deltaCopy copies the delta metrics of md, as cumulative ones (the
// translator refuses delta) with each point labelled by its index in the
// returned slice, which follows md's order of delta points.
func deltaCopy(md pmetric.Metrics) (pmetric.Metrics, []bool) {
	cp := pmetric.NewMetrics()
	var points []bool
	mark := func(attrs pcommon.Map) {
		attrs.PutStr(pointLabel, strconv.Itoa(len(points)))
		points = append(points, false)
	}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		var crm pmetric.ResourceMetrics
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			var csm pmetric.ScopeMetrics
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if t, _ := temporality(m); t != pmetric.AggregationTemporalityDelta {
					continue
				}
				if csm == (pmetric.ScopeMetrics{}) {
					if crm == (pmetric.ResourceMetrics{}) {
						crm = cp.ResourceMetrics().AppendEmpty()
						rms.At(i).Resource().CopyTo(crm.Resource())
					}
					csm = crm.ScopeMetrics().AppendEmpty()
					sms.At(j).Scope().CopyTo(csm.Scope())
				}
				cm := csm.Metrics().AppendEmpty()
				m.CopyTo(cm)
				switch cm.Type() {
				case pmetric.MetricTypeSum:
					cm.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					for x := range cm.Sum().DataPoints().Len() {
						mark(cm.Sum().DataPoints().At(x).Attributes())
					}
				case pmetric.MetricTypeHistogram:
					cm.Histogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					for x := range cm.Histogram().DataPoints().Len() {
						mark(cm.Histogram().DataPoints().At(x).Attributes())
					}
				case pmetric.MetricTypeExponentialHistogram:
					cm.ExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					for x := range cm.ExponentialHistogram().DataPoints().Len() {
						mark(cm.ExponentialHistogram().DataPoints().At(x).Attributes())
					}
				}
			}
		}
	}
	return cp, points
}

// removeDropped removes from md the delta points whose entry in drop is
// true, walking md in deltaCopy's order.
func removeDropped(md pmetric.Metrics, points []bool) {
	n := 0
	drop := func() bool {
		d := points[n]
		n++
		return d
	}
	forEachMetrics(md, func(ms pmetric.MetricSlice) {
		for k := range ms.Len() {
			m := ms.At(k)
			if t, _ := temporality(m); t != pmetric.AggregationTemporalityDelta {
				continue
			}
			switch m.Type() {
			case pmetric.MetricTypeSum:
				m.Sum().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return drop() })
			case pmetric.MetricTypeHistogram:
				m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return drop() })
			case pmetric.MetricTypeExponentialHistogram:
				m.ExponentialHistogram().DataPoints().RemoveIf(func(pmetric.ExponentialHistogramDataPoint) bool { return drop() })
			}
		}
		ms.RemoveIf(func(m pmetric.Metric) bool {
			_, points := temporality(m)
			return points == 0
		})
	})
}

// admitAppender asks the limiter about each series of deltaCopy's
// translation and records the points with a refused one. It writes nothing.
type admitAppender struct {
	limiter *limiter
	now     int64
	refused map[int]error
}

func (a *admitAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AOptions) (storage.SeriesRef, error) {
	idx, err := strconv.Atoi(ls.Get(pointLabel))
	if err != nil {
		return 0, nil // not a marked point
	}
	if _, done := a.refused[idx]; done {
		return 0, nil
	}
	if _, _, err := a.limiter.admit(labels.NewBuilder(ls).Del(pointLabel).Labels(), a.now); err != nil {
		a.refused[idx] = err
	}
	return 0, nil
}

func (*admitAppender) Commit() error   { return nil }
func (*admitAppender) Rollback() error { return nil }
