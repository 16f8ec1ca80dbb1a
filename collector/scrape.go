package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/scrape"
	"go.yaml.in/yaml/v3"
)

// openScrape builds Prometheus's scrape manager over the limits. It always
// exists (the API lists its targets), and scrapes only when targets are
// configured. The configuration goes through Prometheus's own loader.
func (c *Collector) openScrape() error {
	sc := c.cfg.Scrape
	var jobs []any
	if len(sc.Targets) > 0 {
		jobs = append(jobs, map[string]any{
			"job_name":        sc.JobName,
			"metrics_path":    sc.MetricsPath,
			"scrape_interval": sc.Interval.String(),
			"scrape_timeout":  sc.Timeout.String(),
		})
	}
	if sc.Self != "" {
		jobs = append(jobs, map[string]any{
			"job_name":        selfJob,
			"metrics_path":    "/metrics",
			"scrape_interval": sc.Interval.String(),
			"scrape_timeout":  sc.Timeout.String(),
		})
	}
	raw, err := yaml.Marshal(map[string]any{"scrape_configs": jobs})
	if err != nil {
		return fmt.Errorf("collector.scrape: %w", err)
	}
	cfg, err := config.Load(string(raw), c.logger)
	if err != nil {
		return fmt.Errorf("collector.scrape: %w", err)
	}
	m, err := scrape.NewManager(&scrape.Options{}, c.logger.With("component", "scrape"), nil,
		c.guarded.withProtocol(protoScrape), nil, c.reg)
	if err != nil {
		return fmt.Errorf("collector.scrape: %w", err)
	}
	if err := m.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("collector.scrape: %w", err)
	}
	c.scrape = m
	return nil
}

func (c *Collector) scrapeManager() *scrape.Manager { return c.scrape }

// selfJob is the job name of Burnrate's scrape of its own /metrics.
const selfJob = "burnrate"

// runScrape feeds the static targets and Burnrate's own listener to the
// scrape manager (in place of Prometheus's discovery manager) and runs it
// until Stop.
func (c *Collector) runScrape(ctx context.Context) error {
	groups := map[string][]*targetgroup.Group{}
	if ts := c.cfg.Scrape.Targets; len(ts) > 0 {
		g := &targetgroup.Group{Source: "static"}
		for _, t := range ts {
			g.Targets = append(g.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(t)})
		}
		groups[c.cfg.Scrape.JobName] = []*targetgroup.Group{g}
	}
	if self := c.cfg.Scrape.Self; self != "" {
		groups[selfJob] = []*targetgroup.Group{{Source: "self", Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(self)}}}}
	}
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	if len(groups) > 0 {
		tsets <- groups
	}
	_ = ctx
	if err := c.scrape.Run(tsets); err != nil {
		return fmt.Errorf("scrape: %w", err)
	}
	return nil
}
