package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/demoapp/gameday"
)

func newGamedayCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gameday",
		Short: "Run scripted incident drills against burnrate up and score detection",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the shipped scenarios",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			all, err := gameday.Embedded()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDURATION\tTITLE")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Duration, s.Title)
			}
			return tw.Flush()
		},
	})
	var o gameday.Options
	var report string
	run := &cobra.Command{
		Use:   "run NAME|FILE",
		Short: "Run a scenario (a shipped name or a YAML file) and write a Markdown report",
		Long: `Run a drill against a running burnrate up: send the scenario's load to the
edge, set and clear faults on its timeline, and measure the time from each
fault to the first SLO burn signal and page, polling the query API. The
report scores each detection against the scenario's expected time.

  burnrate gameday run shard-outage --report shard-outage.md`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := gameday.Lookup(args[0])
			if err != nil {
				return usageError{err}
			}
			if o.Token == "" {
				o.Token = os.Getenv("BURNRATE_API_TOKEN")
			}
			o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(stderr, "game day %s: %s, %s against %s\n", s.Name, s.Title, s.Duration, o.URL)
			rep, err := gameday.Run(ctx, s, o)
			if err != nil {
				return err
			}
			md := rep.Markdown()
			if report == "" {
				_, err = io.WriteString(stdout, md)
				return err
			}
			if err := os.WriteFile(report, []byte(md), 0o644); err != nil {
				return fmt.Errorf("--report: %w", err)
			}
			fmt.Fprintf(stdout, "score %.0f/100, report in %s\n", rep.Score(), report)
			return nil
		},
	}
	run.Flags().StringVar(&o.URL, "url", "http://127.0.0.1:8080", "Burnrate base URL (query and fault APIs)")
	run.Flags().StringVar(&o.EdgeURL, "edge-url", "http://127.0.0.1:8000", "demo edge base URL, where the load goes")
	run.Flags().StringVar(&o.Token, "token", "", "API bearer token (default $BURNRATE_API_TOKEN)")
	run.Flags().DurationVar(&o.Poll, "poll", 2*time.Second, "how often signals are checked")
	run.Flags().DurationVar(&o.History, "history", time.Hour, "steady state remote-written before the drill: this much good traffic at the scenario's rate (0: none; past 1h needs collector.tsdb.out_of_order_window)")
	run.Flags().Float64Var(&o.TimeScale, "time-scale", 1, "run the timeline this many times faster: a smoke run whose scores are not comparable")
	run.Flags().StringVar(&report, "report", "", "write the Markdown report here instead of stdout")
	cmd.AddCommand(run)
	return cmd
}
