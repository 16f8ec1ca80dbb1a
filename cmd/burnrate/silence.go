package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/alerting"
)

func newSilenceCmd(stdout io.Writer) *cobra.Command {
	c := &client{}
	cmd := &cobra.Command{
		Use:   "silence",
		Short: "Add, list and expire silences on a running Burnrate (as amtool does)",
		Long: `Add, list and expire silences through Burnrate's Alertmanager-compatible API.
Matchers use Alertmanager's syntax: alertname=HighErrorRate, severity="page",
slo=~"api-.*", team!=db.`,
	}
	addClientFlags(cmd, c)

	var (
		duration     time.Duration
		start, end   string
		author, note string
	)
	add := &cobra.Command{
		Use:   "add MATCHER...",
		Short: "Add a silence and print its ID",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := alerting.ParseMatchers(args)
			if err != nil {
				return usageError{err}
			}
			if note == "" {
				return usageError{errors.New("--comment is required: say why alerts are silenced")}
			}
			if author == "" {
				author = currentUser()
			}
			startsAt := time.Now().UTC()
			if start != "" {
				if startsAt, err = time.Parse(time.RFC3339, start); err != nil {
					return usageError{fmt.Errorf("--start: want RFC 3339 (2026-03-02T10:00:00Z): %w", err)}
				}
			}
			endsAt := startsAt.Add(duration)
			if end != "" {
				if endsAt, err = time.Parse(time.RFC3339, end); err != nil {
					return usageError{fmt.Errorf("--end: want RFC 3339 (2026-03-02T12:00:00Z): %w", err)}
				}
			}
			ps := postableSilence(ms, startsAt, endsAt, author, note)
			var res struct {
				SilenceID string `json:"silenceID"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v2/silences", ps, &res); err != nil {
				return err
			}
			fmt.Fprintln(stdout, res.SilenceID)
			return nil
		},
	}
	add.Flags().DurationVarP(&duration, "duration", "d", time.Hour, "how long the silence lasts (when --end is not given)")
	add.Flags().StringVar(&start, "start", "", "start time, RFC 3339 (default now)")
	add.Flags().StringVar(&end, "end", "", "end time, RFC 3339 (default start + duration)")
	add.Flags().StringVarP(&author, "author", "a", "", "who silences, recorded only when the server has no API tokens (default the current user); with a token the server records the token's name")
	add.Flags().StringVarP(&note, "comment", "c", "", "why (required)")

	var expired, quiet, asJSON bool
	query := &cobra.Command{
		Use:   "query [MATCHER...]",
		Short: "List active and pending silences (with --expired, expired ones)",
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for _, a := range args {
				if _, err := labels.ParseMatcher(a); err != nil {
					return usageError{fmt.Errorf("bad matcher %q: %w", a, err)}
				}
				q.Add("filter", a)
			}
			var sils models.GettableSilences
			path := "/api/v2/silences"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &sils); err != nil {
				return err
			}
			var shown models.GettableSilences
			for _, s := range sils {
				if (*s.Status.State == alerting.SilenceExpired) == expired {
					shown = append(shown, s)
				}
			}
			switch {
			case asJSON:
				return json.NewEncoder(stdout).Encode(shown)
			case quiet:
				for _, s := range shown {
					fmt.Fprintln(stdout, *s.ID)
				}
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tMATCHERS\tENDS AT\tCREATED BY\tCOMMENT")
			for _, s := range shown {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", *s.ID, matchersString(s.Matchers),
					time.Time(*s.EndsAt).UTC().Format(time.RFC3339), *s.CreatedBy, *s.Comment)
			}
			return tw.Flush()
		},
	}
	query.Flags().BoolVar(&expired, "expired", false, "list expired silences instead")
	query.Flags().BoolVarP(&quiet, "quiet", "q", false, "print IDs only")
	query.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	expire := &cobra.Command{
		Use:   "expire ID...",
		Short: "Expire silences now",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, id := range args {
				if err := c.do(cmd.Context(), http.MethodDelete, "/api/v2/silence/"+url.PathEscape(id), nil, nil); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.AddCommand(add, query, expire)
	return cmd
}

func postableSilence(ms alerting.Matchers, startsAt, endsAt time.Time, author, comment string) map[string]any {
	var matchers []map[string]any
	for _, m := range ms {
		matchers = append(matchers, map[string]any{
			"name": m.Name, "value": m.Value,
			"isRegex": m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp,
			"isEqual": m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp,
		})
	}
	return map[string]any{"matchers": matchers, "startsAt": startsAt, "endsAt": endsAt, "createdBy": author, "comment": comment}
}

func matchersString(ms models.Matchers) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		op := "="
		switch {
		case *m.IsRegex && (m.IsEqual == nil || *m.IsEqual):
			op = "=~"
		case *m.IsRegex:
			op = "!~"
		case m.IsEqual != nil && !*m.IsEqual:
			op = "!="
		}
		parts = append(parts, fmt.Sprintf("%s%s%q", *m.Name, op, *m.Value))
	}
	return strings.Join(parts, " ")
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "burnrate"
}
