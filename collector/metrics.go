package collector

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons, the values of the reason label of
// burnrate_collector_samples_rejected_total.
const (
	reasonOutOfOrder        = "out_of_order"
	reasonDuplicate         = "duplicate"
	reasonTooOld            = "too_old"
	reasonOutOfBounds       = "out_of_bounds"
	reasonSeriesLimit       = "series_limit"
	reasonMetricSeriesLimit = "metric_series_limit"
	reasonInvalidLabels     = "invalid_labels"
	reasonInvalidSample     = "invalid_sample"
	reasonTargetInfoLimit   = "target_info_limit"
	reasonRolledBack        = "request_failed"
	reasonOther             = "other"
)

var reasons = []string{
	reasonOutOfOrder, reasonDuplicate, reasonTooOld, reasonOutOfBounds,
	reasonSeriesLimit, reasonMetricSeriesLimit, reasonInvalidLabels,
	reasonInvalidSample, reasonTargetInfoLimit, reasonDeltaOutOfOrder,
	reasonDeltaOlderStart, reasonDeltaStreamLimit, reasonRolledBack, reasonOther,
}

// Protocols, the values of the protocol label.
const (
	protoOTLP        = "otlp"
	protoRemoteWrite = "remote_write"
	protoScrape      = "scrape"
	protoTraces      = "otlp_traces"
)

// metrics are the collector's own metrics. Counters are added once per
// request (or scrape), never per sample, so that accounting stays off the
// hot path.
type metrics struct {
	samplesAccepted *prometheus.CounterVec
	samplesRejected *prometheus.CounterVec
	spansRefused    *prometheus.CounterVec
	requests        *prometheus.CounterVec
	ingestDuration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		samplesAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_samples_accepted_total",
			Help: "Samples written to the TSDB, by protocol (otlp, remote_write, scrape).",
		}, []string{"protocol"}),
		samplesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_samples_rejected_total",
			Help: "Samples not written to the TSDB, by protocol and reason.",
		}, []string{"protocol", "reason"}),
		// Spans the store kept or rejected are counted by the trace store
		// (burnrate_collector_spans_accepted_total and _rejected_total).
		spansRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_spans_refused_total",
			Help: "Spans refused before the trace store kept them (overloaded, store error), by reason.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_collector_requests_total",
			Help: "Ingest requests, by protocol and HTTP status code.",
		}, []string{"protocol", "code"}),
		ingestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "burnrate_collector_ingest_duration_seconds",
			Help:                            "Time from receiving an ingest request to answering it, by protocol.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, []string{"protocol"}),
	}
	for _, c := range []prometheus.Collector{m.samplesAccepted, m.samplesRejected, m.spansRefused, m.requests, m.ingestDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Initialise the series users alert on, so that rate() sees them from 0.
	for _, p := range []string{protoOTLP, protoRemoteWrite, protoScrape} {
		m.samplesAccepted.WithLabelValues(p)
		for _, r := range reasons {
			m.samplesRejected.WithLabelValues(p, r)
		}
	}
	return m, nil
}
