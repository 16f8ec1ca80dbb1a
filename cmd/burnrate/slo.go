package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/sloengine"
)

func newSLOCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "slo", Short: "Validate SLO files, export Prometheus rules, show budgets"}
	cmd.AddCommand(newSLOValidateCmd(stdout, stderr), newSLORulesCmd(g, stdout, stderr), newSLOStatusCmd(stdout))
	return cmd
}

func newSLOValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check SLO files; every problem is reported with file, line, field and reason",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			slos, err := sloengine.LoadPaths(args)
			if err != nil {
				n := reportSpecErrors(stderr, err)
				return fmt.Errorf("%d problem(s) in SLO files", n)
			}
			fmt.Fprintf(stdout, "%d SLO(s) valid:\n", len(slos))
			for _, s := range slos {
				fmt.Fprintf(stdout, "  %s (%s:%d)\n", s.ID, s.File, s.Line)
			}
			return nil
		},
	}
}

// commandSLOs loads the SLOs a command works on: the files of its arguments,
// or the configuration's slos when there are none, plus the demo
// platform's with demo, with the configuration's tier overrides.
func commandSLOs(g *globals, args []string, demo bool, stderr io.Writer) ([]*sloengine.SLO, error) {
	cfg, err := loadConfig(g.configFile, nil)
	if err != nil {
		return nil, usageError{err}
	}
	paths := args
	if len(paths) == 0 {
		paths = cfg.Slos
	}
	slos, err := sloengine.LoadPaths(paths)
	if err != nil {
		n := reportSpecErrors(stderr, err)
		return nil, fmt.Errorf("%d problem(s) in SLO files", n)
	}
	if demo {
		ex, err := sloengine.Examples()
		if err != nil {
			return nil, err
		}
		slos = append(slos, ex...)
	}
	// The tiers the running engine evaluates: alerting.rules.tiers replace
	// the defaults of SLOs that list none.
	cfg.Alerting.Rules.TierOverrides().Apply(slos)
	return slos, nil
}

// reportSpecErrors prints one problem per line and returns how many.
func reportSpecErrors(w io.Writer, err error) int {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		fmt.Fprintln(w, e)
	}
	return len(list)
}

func newSLORulesCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var out string
	var interval time.Duration
	var demo bool
	cmd := &cobra.Command{
		Use:   "rules --out DIR [FILE...]",
		Short: "Write Prometheus rule files (recording rules and multi-window burn-rate alerts)",
		Long: `Write one Prometheus rule file per service: SLI recording rules for every window
under Sloth's series names, the period SLI and budget, and one alert per burn-rate
tier. The files pass promtool check rules and load into any Prometheus-compatible
ruler (Prometheus, Mimir, Thanos). SLO files come from the arguments, or from the
configuration key slos when there are none; --demo adds the demo platform's SLOs.`,
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			slos, err := commandSLOs(g, args, demo, stderr)
			if err != nil {
				return err
			}
			if len(slos) == 0 {
				return usageError{errors.New("no SLOs: give SLO files as arguments, set slos in the configuration, or use --demo")}
			}
			files, err := sloengine.RuleFiles(slos, interval)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				p := filepath.Join(out, n)
				if err := os.WriteFile(p, files[n], 0o644); err != nil {
					return err
				}
				fmt.Fprintln(stdout, p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write <service>.rules.yml files into")
	cmd.Flags().DurationVar(&interval, "interval", 30*time.Second, "rule group evaluation interval")
	cmd.Flags().BoolVar(&demo, "demo", false, "include the demo platform's SLOs")
	return cmd
}

func newSLOStatusCmd(stdout io.Writer) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every SLO's budget and burn rates from a running Burnrate",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get(strings.TrimSuffix(url, "/") + "/api/v1/slos") //nolint:noctx // CLI, bounded by the client timeout
			if err != nil {
				return fmt.Errorf("is burnrate running at %s? %w", url, err)
			}
			defer resp.Body.Close()
			var body struct {
				Status string             `json:"status"`
				Error  string             `json:"error"`
				Data   []sloengine.Status `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return fmt.Errorf("%s/api/v1/slos: HTTP %d: %w", url, resp.StatusCode, err)
			}
			if body.Status != "success" {
				return fmt.Errorf("%s/api/v1/slos: %s", url, body.Error)
			}
			printStatus(stdout, body.Data)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080", "base URL of the running Burnrate")
	return cmd
}

func printStatus(w io.Writer, list []sloengine.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tOBJECTIVE\tPERIOD\tSLI\tBUDGET LEFT\tCOVERAGE\tBURN 5m\tBURN 1h\tBURN 6h\tEXHAUSTED IN (1h burn)\tALERTS")
	for _, s := range list {
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\terror: %s\n", s.ID, pct(s.Objective), s.Period, s.Error)
			continue
		}
		burn := func(win string) string {
			ws, ok := s.Window(win)
			if !ok {
				return "-"
			}
			return num(float64(ws.BurnRate), 2)
		}
		left := "-"
		if v := float64(s.BudgetRemaining); !math.IsNaN(v) {
			left = pct(v)
		}
		if s.InsufficientData {
			left = "too little data"
		}
		coverage := "-"
		if v := float64(s.PeriodCoverage); !math.IsNaN(v) {
			coverage = pct(v)
		}
		exh := exhaustion(s)
		var alerts []string
		for _, t := range s.Tiers {
			switch {
			case t.Firing:
				alerts = append(alerts, fmt.Sprintf("%s %s/%s", t.Severity, sloengine.FormatWindow(t.LongWindow), sloengine.FormatWindow(t.ShortWindow)))
			case t.Held:
				alerts = append(alerts, fmt.Sprintf("(held: low traffic %s/%s)", sloengine.FormatWindow(t.LongWindow), sloengine.FormatWindow(t.ShortWindow)))
			}
		}
		sli := "-"
		if v := float64(s.PeriodSLI.SLI); !math.IsNaN(v) {
			sli = pct(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, pct(s.Objective), s.Period, sli, left, coverage,
			burn("5m"), burn("1h"), burn("6h"), exh, strings.Join(alerts, ", "))
	}
	_ = tw.Flush()
}

// exhaustion is when the budget runs out at the 1h burn rate; "never"
// only when the budget is known and not being spent, else "-" with the
// reason no forecast exists.
func exhaustion(s sloengine.Status) string {
	for _, f := range s.Forecasts {
		if f.Window != "1h" {
			continue
		}
		if sec := float64(f.Seconds); !math.IsNaN(sec) {
			d := (time.Duration(sec) * time.Second).Round(time.Minute).String()
			if f.OutlastsPeriod {
				d += " (past the period's end)"
			}
			return d
		}
		switch {
		case s.InsufficientData || math.IsNaN(float64(s.BudgetRemaining)):
			return "- (budget not known yet)"
		case math.IsNaN(float64(f.BurnRate)):
			return "- (no traffic)"
		case float64(f.BurnRate) > 0:
			return "- (no forecast)"
		}
		return "never"
	}
	return "- (no 1h window)"
}

func pct(v float64) string { return num(v*100, 3) + "%" }

func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}
