package incidents

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	s        *Service
	mtta     prometheus.Histogram
	mttr     prometheus.Histogram
	pages    *prometheus.CounterVec
	openDesc *prometheus.Desc
	opens    *prometheus.CounterVec
}

func newMetrics(s *Service) *metrics {
	buckets := []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400}
	return &metrics{
		s: s,
		mtta: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "burnrate_incidents_time_to_acknowledge_seconds", Buckets: buckets,
			Help: "Time from trigger to first acknowledgement of incidents (MTTA is its mean).",
		}),
		mttr: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "burnrate_incidents_time_to_resolve_seconds", Buckets: buckets,
			Help: "Time from trigger to resolution of incidents (MTTR is its mean).",
		}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_incidents_pages_total",
			Help: "Escalation pages sent, by person.",
		}, []string{"user"}),
		opens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_incidents_opened_total",
			Help: "Incidents opened or re-opened, by severity.",
		}, []string{"severity"}),
		openDesc: prometheus.NewDesc("burnrate_incidents_open",
			"Incidents not resolved, by severity (read from the store at scrape time).", []string{"severity"}, nil),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.mtta, m.mttr, m.pages, m.opens, m} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Describe and Collect make the open-incident gauge read the store, so it
// is right after a restart too.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.openDesc }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts := map[Severity]float64{}
	rows, err := m.s.db.QueryContext(ctx, `SELECT severity, COUNT(*) FROM incidents WHERE status != 'resolved' GROUP BY severity`)
	if err == nil {
		for rows.Next() {
			var sev Severity
			var n float64
			if rows.Scan(&sev, &n) == nil {
				counts[sev] = n
			}
		}
		rows.Close()
	}
	for _, sev := range Severities {
		ch <- prometheus.MustNewConstMetric(m.openDesc, prometheus.GaugeValue, counts[sev], string(sev))
	}
}

func (m *metrics) opened(sev Severity) { m.opens.WithLabelValues(string(sev)).Inc() }

func (m *metrics) paged(user string) { m.pages.WithLabelValues(user).Inc() }

func (m *metrics) acknowledged(inc *Incident) {
	if d, ok := inc.TTA(); ok {
		m.mtta.Observe(d.Seconds())
	}
}

func (m *metrics) resolved(inc *Incident) {
	if d, ok := inc.TTR(); ok {
		m.mttr.Observe(d.Seconds())
	}
}
