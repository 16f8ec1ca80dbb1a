package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/load"
)

func newLoadCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var o load.Options
	var report string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Send open-model load to the demo edge (shapes, Zipf keys, endpoint mix)",
		Long: `Send load to the demo platform's edge. Arrivals follow the shape whatever the
responses do (open model), so a slow target meets more requests in flight,
not fewer arrivals. Every run is bounded by --duration and --max-requests.

Shapes: constant (--rate), ramp (to --rate), step (--steps up to --rate),
sine (mean --rate, amplitude half of it, --period), spike (--rate, x
--spike-factor for a sixth of the run, starting at a third).

Simulated clients: one per 25/s of the rate (at least 10), so that none
goes past the edge's default per-client limit (demo.rate_limit, 50/s); name
the number with --clients. They are signed with the edge's secret, read
from demo.client_id_secret or from the file a running 'burnrate up' keeps
in its data directory (--data-dir); without it all load is one client,
this machine's address, and the edge limits it as one.

  burnrate load --rate 200 --duration 1m --shape sine --period 30s --report out.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageError{err}
			}
			if o.ClientSecret == "" {
				secret, err := edgeSecret(g, c)
				if err != nil {
					return err
				}
				o.ClientSecret = secret
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progress io.Writer
			if f, ok := stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
				progress = stderr
			}
			rep, err := load.Run(ctx, o, progress)
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, rep.Text())
			if report != "" {
				b, err := rep.JSON()
				if err != nil {
					return err
				}
				if err := os.WriteFile(report, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Target, "target", "http://127.0.0.1:8000", "base URL of the demo edge")
	f.Float64Var(&o.Rate, "rate", 50, "arrival rate, requests per second (the shape's mean, base or final rate)")
	f.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to send load")
	f.Uint64Var(&o.MaxRequests, "max-requests", 0, "stop after this many requests (default: twice what the shape schedules)")
	f.StringVar(&o.Shape, "shape", "constant", "traffic shape: "+strings.Join(load.Shapes, ", "))
	f.DurationVar(&o.Period, "period", 0, "sine period (default: --duration)")
	f.IntVar(&o.Steps, "steps", 5, "number of steps of the step shape")
	f.Float64Var(&o.SpikeFactor, "spike-factor", 5, "rate multiplier during the spike")
	f.IntVar(&o.Clients, "clients", 0, "simulated clients (X-Client-ID), rate limited separately by the edge when signed (default: one per 25/s of --rate, at least 10)")
	f.IntVar(&o.Keys, "keys", 2000, "number of products to pick from")
	f.Float64Var(&o.ZipfS, "zipf", 1.1, "Zipf exponent of product popularity (> 1; higher is more skewed)")
	f.StringVar(&o.Mix, "mix", load.DefaultMix, "endpoint weights: product (read), cart (read), add (write), order (write)")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	f.Int64Var(&o.Seed, "seed", 0, "random seed for keys and endpoints (0: random)")
	f.StringVar(&o.ClientSecret, "client-secret", "", "the edge's demo.client_id_secret: sign each client's X-Client-ID so the edge limits clients separately (default: demo.client_id_secret, else the secret 'burnrate up' keeps in --data-dir)")
	f.String("data-dir", defaultConfig().DataDir, "data directory of the 'burnrate up' under load, where its edge keeps the secret that signs simulated clients")
	f.StringVar(&report, "report", "", "also write the report as JSON to this file")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// edgeSecret is the secret that signs simulated clients when --client-secret
// is not given: demo.client_id_secret from the configuration, else the one a
// platform generated in the data directory, else "" (unsigned: the edge
// limits the load as one client).
func edgeSecret(g *globals, c *cobra.Command) (string, error) {
	cfg, err := loadConfig(g.configFile, c.Flags())
	if err != nil {
		return "", usageError{err}
	}
	if cfg.Demo.ClientIDSecret != "" {
		return cfg.Demo.ClientIDSecret, nil
	}
	return demoapp.ReadClientSecret(cfg.DataDir)
}
