// Command burnrate is the single binary of the Burnrate SLO operations stack.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/internal/app"
)

// Exit codes: 0 success, 1 a failure while running, 2 bad usage or configuration.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// usageError marks errors that are the caller's to fix (flags, config).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(args []string, stdout, stderr io.Writer) int {
	if version.Version == "" {
		version.Version = "0.1.0-dev"
	}
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	if ee, ok := asExitError(err); ok {
		if ee.err != nil {
			fmt.Fprintln(stderr, "burnrate:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "burnrate:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

type globals struct {
	configFile string
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "burnrate",
		Short: "SLO-driven operations: collect, budget, alert, page, gate",
		Long: `Burnrate collects metrics and traces, turns them into SLO error budgets and
burn rates, pages on-call people through multi-window burn-rate alerts and
answers deploy pipelines from the remaining budget. One binary, embedded storage.

Run everything on embedded defaults:  burnrate up`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "YAML configuration file")
	def := defaultConfig()
	pf.String("log-level", def.Log.Level, "log level: debug, info, warn, error")
	pf.String("log-format", def.Log.Format, "log format: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newVersionCmd(stdout),
		newConfigCmd(g, stdout),
		newUpCmd(g, stdout, stderr),
		newServeCmd(g, stdout, stderr),
		newDemoCmd(g, stdout, stderr),
		newLoadCmd(g, stdout, stderr),
		newFaultCmd(stdout),
		newGamedayCmd(stdout, stderr),
		newSLOCmd(g, stdout, stderr),
		newSilenceCmd(stdout),
		newGateCmd(stdout, stderr),
		newDeployCmd(stdout),
		newDashboardsCmd(g, stdout, stderr),
		newIncidentCmd(stdout),
		newOnCallCmd(stdout),
	)
	return root
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(stdout, version.Print("burnrate"))
			return nil
		},
	}
}

func newConfigCmd(g *globals, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (file, environment, flags), secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.configFile, c.Flags())
			if err != nil {
				return usageError{err}
			}
			out, err := printConfig(cfg)
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	})
	return cmd
}

func addServerFlags(cmd *cobra.Command) {
	def := defaultConfig()
	cmd.Flags().String("listen", def.Listen, "address of the HTTP listener (UI, APIs, /metrics)")
	cmd.Flags().String("data-dir", def.DataDir, "directory holding every store (TSDB, SQLite, traces)")
	cmd.Flags().String("otlp-listen", def.Collector.OTLPListen, "address of the separate OTLP/HTTP listener (/v1/metrics, /v1/traces); empty disables it")
	cmd.Flags().StringSlice("slos", def.Slos, "SLO files or directories (Sloth prometheus/v1, burnrate/v1, OpenSLO v1)")
}

func newUpCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole stack in one process on embedded defaults",
		Long: `Run the whole stack in one process: every component Burnrate has, on embedded
defaults. No configuration is needed; --config, BURNRATE_* variables and flags
override the defaults. Stop with Ctrl-C.

The garbage collector runs at GOGC=400 with a 2GiB GOMEMLIMIT unless those
variables are set (measured on the demo platform's load).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			tuneGCForUp(os.Getenv)
			return serve(c, g, stdout, stderr)
		},
	}
	addServerFlags(cmd)
	cmd.Flags().String("edge-listen", defaultConfig().Demo.EdgeListen, "address of the demo platform's edge, where users and load go")
	return cmd
}

func newServeCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the operations stack for real services (no demo platform)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return serve(c, g, stdout, stderr)
		},
	}
	addServerFlags(cmd)
	return cmd
}

// serve runs the daemon until SIGINT or SIGTERM; SIGHUP reloads the file.
func serve(c *cobra.Command, g *globals, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(g.configFile, c.Flags())
	if err != nil {
		return usageError{err}
	}
	level := new(slog.LevelVar)
	logger := newLogger(cfg.Log, level, stderr)

	opts := cfg.Options
	if c.Name() == "serve" {
		// serve runs the operations stack for real services, never the demo.
		opts.Demo.Enabled = false
	}
	opts.Logger = logger
	opts.Registry = prometheus.NewRegistry()
	a, err := app.New(opts)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "Burnrate %s is starting.\n", version.Version)
	for _, e := range a.Endpoints() {
		fmt.Fprintf(stdout, "  %-10s %s\n", e.Name, e.URL)
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(c, g, a, level, logger)
			}
		}
	}()

	if err := a.Run(ctx); err != nil {
		return err
	}
	logger.Info("burnrate stopped")
	return nil
}

func reload(c *cobra.Command, g *globals, a *app.App, level *slog.LevelVar, logger *slog.Logger) {
	if g.configFile == "" {
		logger.Info("SIGHUP received but no --config file is set; nothing to reload")
		return
	}
	cfg, err := loadConfig(g.configFile, c.Flags())
	if err != nil {
		logger.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	level.Set(parseLevel(cfg.Log.Level))
	if err := a.Reload(cfg.Options); err != nil {
		logger.Error("reload failed", "err", err)
		return
	}
	logger.Info("configuration reloaded", "file", g.configFile, "log_level", cfg.Log.Level)
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s)) // validated by config.validate
	return l
}

func newLogger(cfg logConfig, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(parseLevel(cfg.Level))
	hopts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
