package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/deploy"
)

// The gate's exit codes, for pipelines: pass, fail, warn under --strict,
// and "could not ask" (bad flags, Burnrate unreachable, unknown service).
const (
	gatePass  = 0
	gateFail  = 1
	gateWarn  = 2
	gateError = 3
)

func newGateCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &client{}
	var (
		service, version, exception, reason, author string
		wait, interval                              time.Duration
		asJSON, strict                              bool
	)
	cmd := &cobra.Command{
		Use:   "gate",
		Short: "Ask the deploy gate whether the error budget allows a deploy (exit 0 pass, 1 fail, 2 warn with --strict, 3 error)",
		Long: `Ask a running Burnrate's deploy gate whether the service's error-budget
policy allows a deploy now. It prints why, and exits:
  0  pass (and warn, unless --strict)
  1  fail
  2  warn, with --strict
  3  the gate could not be asked (bad flags, Burnrate unreachable, unknown service)

With --exception KIND --reason TEXT it first records a policy exception
(p0, security, as the policy allows) for --version, then asks.
With --wait it asks again every --interval until the gate passes or the wait
is over. In GitHub Actions the reasons also go to the job summary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" {
				return exitError{gateError, errors.New("--service is required")}
			}
			if (exception == "") != (reason == "") {
				return exitError{gateError, errors.New("--exception and --reason go together: name the kind (p0, security) and say why")}
			}
			if exception != "" && version == "" {
				return exitError{gateError, errors.New("--exception needs --version: an exception lets one version through")}
			}
			ctx, stop := signalContext()
			defer stop()
			if exception != "" {
				if author == "" {
					author = currentUser()
				}
				var e deploy.Exception
				body := map[string]string{"service": service, "version": version, "kind": exception, "reason": reason, "author": author}
				if err := c.do(ctx, http.MethodPost, "/api/v1/gate/exceptions", body, &e); err != nil {
					return exitError{gateError, err}
				}
				fmt.Fprintf(stderr, "recorded %s exception %s for %s %s by %s\n", e.Kind, e.ID, e.Service, e.Version, e.Author)
			}
			q := url.Values{"service": {service}}
			if version != "" {
				q.Set("version", version)
			}
			deadline := time.Now().Add(wait)
			backoff := min(interval, time.Second)
			for {
				var d deploy.Decision
				if err := c.do(ctx, http.MethodGet, "/api/v1/gate?"+q.Encode(), nil, &d); err != nil {
					// Under --wait a transient failure (Burnrate restarting, a
					// 503 from a proxy) is retried with backoff until the
					// deadline; an answer that will not change (401, 404) is not.
					left := time.Until(deadline)
					if wait == 0 || left <= 0 || !transient(ctx, err) {
						return exitError{gateError, err}
					}
					pause := min(backoff, left)
					fmt.Fprintf(stderr, "gate: %v; retrying in %s (%s left)\n", err, pause.Round(time.Millisecond), left.Round(time.Second))
					select {
					case <-ctx.Done():
						return exitError{gateError, errors.New("interrupted while waiting for the gate")}
					case <-time.After(pause):
					}
					backoff = min(2*backoff, max(interval, time.Second), 30*time.Second)
					continue
				}
				backoff = min(interval, time.Second)
				code := gateCode(d.Decision, strict)
				left := time.Until(deadline)
				if code == gatePass || wait == 0 || left <= 0 {
					if err := printDecision(stdout, d, asJSON); err != nil {
						return exitError{gateError, err}
					}
					writeJobSummary(d)
					if code == gatePass {
						return nil
					}
					return exitError{code: code}
				}
				fmt.Fprintf(stderr, "gate: %s: %s; asking again in %s (%s left)\n", d.Decision, strings.Join(d.Reasons, "; "), interval, left.Round(time.Second))
				select {
				case <-ctx.Done():
					return exitError{gateError, errors.New("interrupted while waiting for the gate")}
				case <-time.After(min(interval, left)):
				}
			}
		},
	}
	addClientFlags(cmd, c)
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "the service to deploy (required)")
	f.StringVar(&version, "version", "", "the version to deploy")
	f.StringVar(&exception, "exception", "", "record a policy exception of this kind (p0, security) first")
	f.StringVar(&reason, "reason", "", "why the exception is needed")
	f.StringVar(&author, "author", "", "who grants the exception (default: the current user); with an API token, the token's name is recorded instead")
	f.DurationVar(&wait, "wait", 0, "keep asking until the gate passes or this long has passed")
	f.DurationVar(&interval, "interval", 15*time.Second, "how often --wait asks")
	f.BoolVar(&asJSON, "json", false, "print the gate's JSON answer")
	f.BoolVar(&strict, "strict", false, "exit 2 on warn")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitError{gateError, err} })
	cmd.AddCommand(newGateVerifyCmd(c, stdout, stderr))
	return cmd
}

// transient reports whether asking again may get another answer: no
// answer at all, a 5xx or a 429. Refusals (4xx) and a cancelled wait are
// final.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ue usageError
	if errors.As(err, &ue) {
		return false
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return true
}

func gateCode(o deploy.Outcome, strict bool) int {
	switch o {
	case deploy.Pass:
		return gatePass
	case deploy.Warn:
		if strict {
			return gateWarn
		}
		return gatePass
	}
	return gateFail
}

func printDecision(w io.Writer, d deploy.Decision, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	name := d.Service
	if d.Version != "" {
		name += " " + d.Version
	}
	fmt.Fprintf(w, "%s: %s\n", name, strings.ToUpper(string(d.Decision)))
	fmt.Fprintf(w, "  budget remaining %s, data coverage %s, data %s old, policy %s\n",
		pctOrUnknown(float64(d.BudgetRemaining)), pctOrUnknown(float64(d.Coverage)), (time.Duration(d.DataAge * float64(time.Second))).Round(time.Second), d.Policy)
	if len(d.BurnRates) > 0 {
		fmt.Fprintf(w, "  burn rates %s\n", burnList(d.BurnRates))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range d.Checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Outcome, c.Rule, c.Message)
	}
	if d.Exception != nil {
		fmt.Fprintf(tw, "  pass\texception\t%s exception %s by %s: %s (would have been %s)\n", d.Exception.Kind, d.Exception.ID, d.Exception.Author, d.Exception.Reason, d.Would)
	}
	return tw.Flush()
}

func pctOrUnknown(v float64) string {
	if math.IsNaN(v) {
		return "unknown"
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

func burnList(m map[string]float64) string {
	ws := make([]string, 0, len(m))
	for k := range m {
		ws = append(ws, k)
	}
	dur := func(k string) time.Duration { d, _ := model.ParseDuration(k); return time.Duration(d) }
	sort.Slice(ws, func(i, j int) bool { return dur(ws[i]) < dur(ws[j]) })
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s %.3g", w, m[w])
	}
	return strings.Join(parts, ", ")
}

// writeJobSummary appends the decision to GitHub Actions' job summary when
// the step runs there.
func writeJobSummary(d deploy.Decision) {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "### Deploy gate: %s %s: %s\n\n", d.Service, d.Version, d.Decision)
	fmt.Fprintf(f, "Budget remaining %s, data coverage %s, policy `%s`.\n\n", pctOrUnknown(float64(d.BudgetRemaining)), pctOrUnknown(float64(d.Coverage)), d.Policy)
	fmt.Fprintln(f, "| outcome | rule | detail |\n|---|---|---|")
	for _, c := range d.Checks {
		fmt.Fprintf(f, "| %s | %s | %s |\n", c.Outcome, c.Rule, strings.ReplaceAll(c.Message, "|", "\\|"))
	}
	fmt.Fprintln(f)
}

func newGateVerifyCmd(c *client, stdout, stderr io.Writer) *cobra.Command {
	var (
		id             string
		wait, interval time.Duration
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "verify --since-deploy ID",
		Short: "Decide promote or roll back by comparing the burn rate since a deploy with before it (exit 0 promote, 1 roll back, 3 error or no verdict)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return exitError{gateError, errors.New("--since-deploy is required: the ID `burnrate deploy mark` printed")}
			}
			return verifyDeploy(c, id, wait, interval, asJSON, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "since-deploy", "", "the deploy's ID")
	addVerifyFlags(cmd, &wait, &interval, &asJSON)
	return cmd
}

func addVerifyFlags(cmd *cobra.Command, wait, interval *time.Duration, asJSON *bool) {
	f := cmd.Flags()
	f.DurationVar(wait, "wait", 0, "wait up to this long for the first verdict (a minute after the deploy started)")
	f.DurationVar(interval, "interval", 15*time.Second, "how often --wait asks")
	f.BoolVar(asJSON, "json", false, "print the JSON verdict")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitError{gateError, err} })
}

// verifyDeploy asks for a deploy's verdict and prints what was compared
// with what: exit 0 promote, 1 roll back, 3 no verdict (or an error).
func verifyDeploy(c *client, id string, wait, interval time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	deadline := time.Now().Add(wait)
	for {
		var v deploy.Verdict
		if err := c.do(ctx, http.MethodGet, "/api/v1/deploys/"+url.PathEscape(id)+"/verify", nil, &v); err != nil {
			return exitError{gateError, err}
		}
		left := time.Until(deadline)
		if v.Verdict != deploy.Wait || left <= 0 {
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(v); err != nil {
					return exitError{gateError, err}
				}
			} else {
				fmt.Fprintf(stdout, "%s: %s\n", strings.ToUpper(v.Verdict), v.Message)
				if len(v.SLOs) > 1 {
					for _, s := range v.SLOs {
						fmt.Fprintf(stdout, "  %s\t%s\n", s.Verdict, s.Message)
					}
				}
			}
			switch v.Verdict {
			case deploy.Promote:
				return nil
			case deploy.Rollback:
				return exitError{code: gateFail}
			case deploy.Inconclusive:
				return exitError{gateError, errors.New("no verdict: the watch cannot compare this deploy")}
			}
			return exitError{gateError, errors.New("no verdict yet: wait longer after the deploy")}
		}
		fmt.Fprintf(stderr, "verify: %s; asking again in %s (%s left)\n", v.Message, interval, left.Round(time.Second))
		select {
		case <-ctx.Done():
			return exitError{gateError, errors.New("interrupted")}
		case <-time.After(min(interval, left)):
		}
	}
}

func newDeployCmd(stdout io.Writer) *cobra.Command {
	c := &client{}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Record deploys, so gates, dashboards and incidents see them",
	}
	addClientFlags(cmd, c)
	var (
		service, version, commit, author, started, finished string
	)
	mark := &cobra.Command{
		Use:   "mark",
		Short: "Record a deploy and print its ID (for `burnrate gate verify --since-deploy ID`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" || version == "" {
				return usageError{errors.New("--service and --version are required")}
			}
			body := map[string]any{"service": service, "version": version, "commit": commit, "author": author}
			for flag, v := range map[string]string{"started_at": started, "finished_at": finished} {
				if v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return usageError{fmt.Errorf("--%s: want RFC 3339 (2026-12-01T10:00:00Z): %w", strings.ReplaceAll(flag, "_", "-"), err)}
				}
				body[flag] = t
			}
			if author == "" {
				body["author"] = currentUser()
			}
			var d deploy.Deploy
			if err := c.do(context.Background(), http.MethodPost, "/api/v1/deploys", body, &d); err != nil {
				return err
			}
			fmt.Fprintln(stdout, d.ID)
			return nil
		},
	}
	mf := mark.Flags()
	mf.StringVar(&service, "service", "", "the deployed service (required)")
	mf.StringVar(&version, "version", "", "the deployed version (required)")
	mf.StringVar(&commit, "commit", "", "the commit deployed")
	mf.StringVar(&author, "author", "", "who deployed (default: the current user); with an API token, the token's name is recorded instead")
	mf.StringVar(&started, "started-at", "", "when the deploy started, RFC 3339 (default: now); the watch's baseline is the window before it, so mark after the rollout with the time it began")
	mf.StringVar(&finished, "finished-at", "", "when it finished, RFC 3339")

	var listService string
	list := &cobra.Command{
		Use:   "list",
		Short: "List recorded deploys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/api/v1/deploys"
			if listService != "" {
				path += "?service=" + url.QueryEscape(listService)
			}
			var res struct{ Data []deploy.Deploy }
			if err := c.do(context.Background(), http.MethodGet, path, nil, &res); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSERVICE\tVERSION\tSTARTED\tAUTHOR\tCOMMIT")
			for _, d := range res.Data {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Service, d.Version, d.StartedAt.Format(time.RFC3339), d.Author, d.Commit)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listService, "service", "", "only this service")

	var (
		wait, interval time.Duration
		asJSON         bool
	)
	verify := &cobra.Command{
		Use:   "verify ID",
		Short: "Compare the burn rate after deploy ID with the window before it started (exit 0 promote, 1 roll back, 3 error or no verdict)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verifyDeploy(c, args[0], wait, interval, asJSON, stdout, cmd.ErrOrStderr())
		},
	}
	addVerifyFlags(verify, &wait, &interval, &asJSON)
	cmd.AddCommand(mark, list, verify)
	return cmd
}
