package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/dashboards"
)

func newDashboardsCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var (
		out, url, folder, path string
		demo                   bool
	)
	cmd := &cobra.Command{
		Use:   "dashboards --out DIR [FILE...]",
		Short: "Write Grafana dashboards and provisioning files generated from the SLOs",
		Long: `Write Grafana provisioning (a Prometheus data source pointing at Burnrate's
query API, and a dashboard provider) and dashboards with stable UIDs: the SLO
overview, one detail dashboard per SLO, Burnrate itself and, with --demo, the
demo platform. SLO files come from the arguments, or from the configuration
key slos when there are none; --demo adds the demo platform's SLOs.

  DIR/provisioning/datasources/burnrate.yml
  DIR/provisioning/dashboards/burnrate.yml
  DIR/dashboards/<uid>.json

Mount DIR/provisioning as Grafana's provisioning directory and DIR/dashboards
at --path.`,
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			slos, err := commandSLOs(g, args, demo, stderr)
			if err != nil {
				return err
			}
			files, err := dashboards.Generate(slos, dashboards.Options{URL: url, Folder: folder, Path: path, Demo: demo})
			if err != nil {
				return err
			}
			for _, f := range files {
				p := filepath.Join(out, filepath.FromSlash(f.Path))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					return err
				}
				fmt.Fprintln(stdout, p)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write provisioning/ and dashboards/ into")
	f.StringVar(&url, "url", "http://127.0.0.1:8080", "Burnrate's URL as Grafana reaches it (the data source)")
	f.StringVar(&folder, "folder", "Burnrate", "Grafana folder for the dashboards")
	f.StringVar(&path, "path", "/var/lib/grafana/dashboards/burnrate", "where Grafana finds DIR/dashboards (the provider's path)")
	f.BoolVar(&demo, "demo", false, "include the demo platform's SLOs and dashboard")
	return cmd
}
