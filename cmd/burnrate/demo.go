package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
)

func newDemoCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var role, listen, cacheURL, storeURL string
	var apiURLs []string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo platform alone, or one of its tiers, sending telemetry to a collector",
		Long: `Run the demo platform (edge, API, cache, sharded store) without the operations
stack, sending traces and metrics over OTLP/HTTP to --otlp-endpoint (another
Burnrate's listener, or any OpenTelemetry collector).

--role all runs every tier in this process. One tier per process:

  burnrate demo --role store --listen 127.0.0.1:9003
  burnrate demo --role cache --listen 127.0.0.1:9002 --store-url http://127.0.0.1:9003
  burnrate demo --role api   --listen 127.0.0.1:9001 --cache-url http://127.0.0.1:9002
  burnrate demo --role edge  --listen 127.0.0.1:8000 --api-url http://127.0.0.1:9001

Each process serves the fault API (/api/v1/demo/faults) on its own listener.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.configFile, c.Flags())
			if err != nil {
				return usageError{err}
			}
			logger := newLogger(cfg.Log, new(slog.LevelVar), stderr)
			d := cfg.Demo
			d.Enabled = true
			if ep, _ := c.Flags().GetString("otlp-endpoint"); ep != "" {
				d.OTLPEndpoint = ep
			}
			if d.OTLPEndpoint == "" {
				d.OTLPEndpoint = "http://" + defaultConfig().Listen
			}
			if role != demoapp.RoleAll && listen == "" && role != demoapp.RoleEdge {
				return usageError{fmt.Errorf("--listen: a single tier needs its own address")}
			}
			if err := d.Validate(); err != nil {
				return usageError{err}
			}
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return fmt.Errorf("data_dir: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			set, err := faults.Open(ctx, filepath.Join(cfg.DataDir, "demo.db"), logger, nil)
			if err != nil {
				return err
			}
			defer set.Close()
			p, err := demoapp.New(ctx, demoapp.Options{
				Config:        d,
				DataDir:       cfg.DataDir,
				Role:          role,
				Listen:        listen,
				APIURLs:       apiURLs,
				CacheURL:      cacheURL,
				StoreURL:      storeURL,
				Faults:        set,
				ServeFaultAPI: true,
				APIToken:      cfg.APIToken,
				OTLPToken:     d.OTLPToken,
				Logger:        logger.With("component", "demo"),
			})
			if err != nil {
				return usageError{err}
			}
			defer p.Close()
			fmt.Fprintf(stdout, "Burnrate demo (%s) is starting; telemetry to %s.\n", role, d.OTLPEndpoint)
			urls := p.URLs()
			names := make([]string, 0, len(urls))
			for n := range urls {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(stdout, "  %-6s %s\n", n, strings.Join(urls[n], " "))
			}
			fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
			return p.Run(ctx)
		},
	}
	def := defaultConfig()
	f := cmd.Flags()
	f.StringVar(&role, "role", demoapp.RoleAll, "tier to run: all, edge, api, cache or store")
	f.StringVar(&listen, "listen", "", "address of the tier, for a single --role (the edge defaults to --edge-listen)")
	f.StringSliceVar(&apiURLs, "api-url", nil, "API replica base URLs, for --role edge (repeatable)")
	f.StringVar(&cacheURL, "cache-url", "", "cache base URL, for --role api")
	f.StringVar(&storeURL, "store-url", "", "store base URL, for --role cache")
	f.String("edge-listen", def.Demo.EdgeListen, "address of the edge (--role all or edge)")
	f.String("otlp-endpoint", "", "collector base URL for OTLP/HTTP (default: http://"+def.Listen+", a local burnrate)")
	f.String("data-dir", def.DataDir, "directory for the shards (demo/shard-N) and fault events (demo.db)")
	return cmd
}
