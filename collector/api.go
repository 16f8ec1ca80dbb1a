package collector

import (
	"context"
	"github.com/grafana/regexp"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/common/route"
	"github.com/prometheus/common/version"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// APIPaths are the Prometheus HTTP API paths the collector serves, as
// net/http.ServeMux patterns. They are listed one by one (rather than all of
// /api/v1/) because other components own other paths under /api/v1/.
var APIPaths = []string{
	"/api/v1/query",
	"/api/v1/query_range",
	"/api/v1/query_exemplars",
	"/api/v1/format_query",
	"/api/v1/parse_query",
	"/api/v1/labels",
	"/api/v1/label/",
	"/api/v1/series",
	"/api/v1/metadata",
	"/api/v1/rules",
	"/api/v1/targets",
	"/api/v1/scrape_pools",
	"/api/v1/status/buildinfo",
	"/api/v1/status/runtimeinfo",
	"/api/v1/status/flags",
	"/api/v1/status/tsdb",
}

// newAPI builds Prometheus's own API handler (web/api/v1) over the TSDB and
// the engine, so that paths, parameters, JSON and errors are Prometheus's by
// construction. Its write endpoints stay disabled: the collector serves
// /api/v1/write itself, behind its limits.
func (c *Collector) newAPI() http.Handler {
	start := time.Now()
	cwd, _ := os.Getwd()
	api := v1.NewAPI(
		c.engine,
		c.storage,
		nil, nil, // remote-write and OTLP appendables: disabled here
		c.db,
		func(context.Context) v1.ScrapePoolsRetriever { return c.scrapeManager() },
		func(context.Context) v1.TargetRetriever { return c.scrapeManager() },
		func(context.Context) v1.AlertmanagerRetriever { return noAlertmanagers{} },
		func() config.Config { return config.DefaultConfig },
		map[string]string{},
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		adminStats{c.db},
		c.dir,
		false, // admin API
		false, // search API
		0,
		c.logger,
		func(context.Context) v1.RulesRetriever { return noRules{} },
		0, 0, 0, // remote read
		false, // agent mode
		regexp.MustCompile("^(?:.*)$"),
		func() (v1.RuntimeInfo, error) {
			return v1.RuntimeInfo{
				StartTime:        start,
				CWD:              cwd,
				ServerTime:       time.Now(),
				GoroutineCount:   runtime.NumGoroutine(),
				GOMAXPROCS:       runtime.GOMAXPROCS(0),
				GOGC:             os.Getenv("GOGC"),
				StorageRetention: c.cfg.TSDB.Retention.String(),
			}, nil
		},
		&v1.PrometheusVersion{
			Version:   version.Version,
			Revision:  version.Revision,
			Branch:    version.Branch,
			BuildUser: version.BuildUser,
			BuildDate: version.BuildDate,
			GoVersion: version.GoVersion,
		},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		c.gatherer,
		c.reg,
		nil,   // default stats renderer
		false, // remote-write receiver (served by the collector)
		nil,
		false, false, false, // OTLP receiver (served by the collector)
		false,
		c.cfg.Query.LookbackDelta,
		false, false,
		nil, nil,
		v1.OpenAPIOptions{},
		c.parser,
	)
	r := route.New()
	api.Register(r.WithPrefix("/api/v1"))
	return r
}

type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

// noRules answers /api/v1/rules with empty groups: Grafana lists rules there
// and expects data.groups to be present.
type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

// adminStats gives the API's /status/tsdb what it reads from the TSDB.
type adminStats struct{ db *tsdb.DB }

func (a adminStats) CleanTombstones() error { return a.db.CleanTombstones() }
func (a adminStats) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return a.db.Delete(ctx, mint, maxt, ms...)
}
func (a adminStats) Snapshot(dir string, withHead bool) error { return a.db.Snapshot(dir, withHead) }
func (a adminStats) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return a.db.Head().Stats(statsByLabelName, limit), nil
}
func (adminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
func (a adminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return a.db.BlockMetas(), nil }
