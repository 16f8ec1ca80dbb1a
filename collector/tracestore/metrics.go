package tracestore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's self-metrics, registered on the injected
// registerer.
type metrics struct {
	accepted       prometheus.Counter
	duplicates     prometheus.Counter
	rejected       *prometheus.CounterVec
	appendDuration prometheus.Histogram
	bytes          prometheus.Gauge
	segments       prometheus.Gauge
	traces         prometheus.Gauge
	deleted        *prometheus.CounterVec
	corrupt        prometheus.Counter
	fsyncFailures  prometheus.Counter

	fwdSent    prometheus.Counter
	fwdDropped *prometheus.CounterVec
	fwdRetries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_spans_accepted_total",
			Help: "Spans written to the trace store.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_spans_deduplicated_total",
			Help: "Spans received again (same trace and span ID, an SDK retrying) and not stored twice.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_spans_rejected_total",
			Help: "Spans the trace store did not keep, by reason (invalid_id, too_large, overloaded, closed, canceled, write_error).",
		}, []string{"reason"}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "burnrate_collector_trace_store_append_duration_seconds",
			Help:    "Time to encode, write and index one batch of spans.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "burnrate_collector_trace_store_bytes",
			Help: "Size of the trace store's segment files.",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "burnrate_collector_trace_store_segments",
			Help: "Segment files of the trace store.",
		}),
		traces: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "burnrate_collector_trace_store_traces",
			Help: "Traces in the trace store's index.",
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_store_segments_deleted_total",
			Help: "Segment files deleted by retention, by reason (age, size, corrupt: set aside as unreadable and past retention).",
		}, []string{"reason"}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_store_corrupt_records_total",
			Help: "Damaged or torn records found in segment files and skipped.",
		}),
		fsyncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_store_fsync_failures_total",
			Help: "Failed fsyncs of segment files; each is retried at the next sync (every second).",
		}),
		fwdSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_forward_sent_spans_total",
			Help: "Spans forwarded and accepted by the forward endpoint.",
		}),
		fwdDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_forward_dropped_spans_total",
			Help: "Spans not forwarded, by reason (queue_full, queue_bytes, rejected, retries_exhausted, shutdown).",
		}, []string{"reason"}),
		fwdRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "burnrate_collector_trace_forward_retries_total",
			Help: "Forward requests retried after a retryable failure.",
		}),
	}
	for _, r := range []string{"invalid_id", "too_large", "overloaded", "write_error"} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"age", "size"} {
		m.deleted.WithLabelValues(r)
	}
	cs := []prometheus.Collector{
		m.accepted, m.duplicates, m.rejected, m.appendDuration, m.bytes, m.segments, m.traces, m.deleted, m.corrupt, m.fsyncFailures,
	}
	if s.fwd != nil {
		for _, r := range []string{"queue_full", "queue_bytes", "rejected", "retries_exhausted", "shutdown"} {
			m.fwdDropped.WithLabelValues(r)
		}
		fwd := s.fwd
		cs = append(cs, m.fwdSent, m.fwdDropped, m.fwdRetries,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "burnrate_collector_trace_forward_queue_spans",
				Help: "Spans waiting to be forwarded.",
			}, func() float64 { return float64(fwd.queued()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "burnrate_collector_trace_forward_queue_bytes",
				Help: "Encoded bytes of the spans waiting to be forwarded (at most forward.queue_bytes).",
			}, func() float64 { return float64(fwd.queuedBytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "burnrate_collector_trace_forward_queue_capacity_spans",
				Help: "Spans the forward queue holds at most (forward.queue_size).",
			}, func() float64 { return float64(fwd.capacity) }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
