package app

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Annotation series: demo fault events and incident timeline events written
// into the TSDB, one sample (value 1) at each event's time, so Grafana's
// Prometheus data source can show them as annotations beside deploys
// (burnrate_deploy_info). The generated SLO dashboards do.
const (
	faultEventMetric    = "burnrate_demo_fault_event"
	incidentEventMetric = "burnrate_incident_event"
)

// annotationInterval is how often new events are written.
const annotationInterval = 10 * time.Second

// buildAnnotations follows the fault events and the incident timeline and
// writes them as annotation series.
func (a *App) buildAnnotations() error {
	if a.collector == nil || (a.faults == nil && a.incidents == nil) {
		return nil
	}
	{
		// Follows the event stores and appends to the TSDB; it stops with
		// the other engines, before storage closes.
		a.addRunner("annotation series", a.writeAnnotations)
	}
	return nil
}

func (a *App) writeAnnotations(ctx context.Context) error {
	// Events of the last hour are written again after a restart (the same
	// samples, so nothing doubles); older ones are in the TSDB already.
	since := time.Now().Add(-time.Hour)
	var lastFault, lastIncident int64
	t := time.NewTicker(annotationInterval)
	defer t.Stop()
	for {
		lastFault, lastIncident = a.appendAnnotations(ctx, since, lastFault, lastIncident)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// appendAnnotations writes the events after the two cursors and returns the
// new cursors.
func (a *App) appendAnnotations(ctx context.Context, since time.Time, lastFault, lastIncident int64) (int64, int64) {
	app := a.collector.Storage().Appender(ctx)
	n := 0
	add := func(ls labels.Labels, at time.Time) {
		if at.Before(since) {
			return
		}
		if _, err := app.Append(0, ls, at.UnixMilli(), 1); err != nil {
			a.logger.Debug("annotation sample refused", "series", ls.String(), "err", err)
			return
		}
		n++
	}
	if a.faults != nil {
		evs, err := a.faults.Events(ctx, since, 10_000)
		if err != nil {
			a.logger.Warn("fault events unreadable for annotations", "err", err)
		}
		for _, e := range evs {
			if e.ID <= lastFault {
				continue
			}
			add(labels.FromStrings(labels.MetricName, faultEventMetric, "flag", e.Flag, "value", e.Value, "kind", e.Kind, "source", e.Source), e.At)
			lastFault = e.ID
		}
	}
	if a.incidents != nil {
		evs, err := a.incidents.EventsAfter(ctx, lastIncident, 10_000)
		if err != nil {
			a.logger.Warn("incident events unreadable for annotations", "err", err)
		}
		for _, e := range evs {
			lastIncident = e.ID
			inc, err := a.incidents.Get(ctx, e.IncidentID)
			if err != nil {
				continue
			}
			add(labels.FromStrings(labels.MetricName, incidentEventMetric, "incident_id", strconv.FormatInt(e.IncidentID, 10),
				"kind", e.Kind, "service", inc.Service, "slo", inc.SLO, "severity", string(inc.Severity), "title", inc.Title), e.At)
		}
	}
	if err := app.Commit(); err != nil {
		a.logger.Warn("annotation series not written", "err", err)
	} else if n > 0 {
		a.logger.Debug("annotation series written", "samples", n)
	}
	return lastFault, lastIncident
}
