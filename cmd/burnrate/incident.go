package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/incidents"
)

// incidentID reads an incident ID argument.
func incidentID(arg string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError{fmt.Errorf("ID: %q is not an incident ID (a positive number)", arg)}
	}
	return id, nil
}

// incidentPageSize is how many incidents `incident list` asks for at a
// time (the API's most).
var incidentPageSize = 1000

type incidentView struct {
	incidents.Incident
	Timeline []incidents.Event `json:"timeline"`
}

func newIncidentCmd(stdout io.Writer) *cobra.Command {
	c := &client{}
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "List, show, acknowledge, resolve and annotate incidents; write postmortem drafts",
	}
	addClientFlags(cmd, c)
	var by string
	cmd.PersistentFlags().StringVar(&by, "by", "", "who acts, recorded only when the server has no API tokens (default the current user); with a token the server records the token's name")
	who := func() string {
		if by != "" {
			return by
		}
		return currentUser()
	}

	var status, severity, service string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first (open ones by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if status != "all" {
				q.Set("status", status)
			}
			if severity != "" {
				q.Set("severity", severity)
			}
			if service != "" {
				q.Set("service", service)
			}
			// The API serves a page at a time; follow next to the end.
			var res struct {
				Incidents []incidents.Incident `json:"incidents"`
			}
			q.Set("limit", strconv.Itoa(incidentPageSize))
			for {
				var page struct {
					Incidents []incidents.Incident `json:"incidents"`
					Next      string               `json:"next"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/incidents?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				res.Incidents = append(res.Incidents, page.Incidents...)
				if page.Next == "" {
					break
				}
				q.Set("cursor", page.Next)
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(res.Incidents)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSEVERITY\tSTATUS\tSERVICE\tTRIGGERED\tTITLE")
			for _, inc := range res.Incidents {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Severity, inc.Status, inc.Service,
					inc.TriggeredAt.UTC().Format(time.RFC3339), inc.Title)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&status, "status", "open", "open, triggered, acknowledged, resolved or all")
	list.Flags().StringVar(&severity, "severity", "", "only this severity (SEV1..SEV4)")
	list.Flags().StringVar(&service, "service", "", "only this service")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an incident with its timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := incidentID(args[0])
			if err != nil {
				return err
			}
			var inc incidentView
			if err := c.do(cmd.Context(), http.MethodGet, fmt.Sprintf("/api/v1/incidents/%d", id), nil, &inc); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(inc)
			}
			printIncident(stdout, &inc)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	// action builds ack, resolve, reopen: POST /api/v1/incidents/ID/<path>.
	action := func(use, path, short string, withText bool) *cobra.Command {
		var text string
		a := &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := incidentID(args[0])
				if err != nil {
					return err
				}
				var inc incidents.Incident
				body := map[string]string{"by": who(), "source": "cli", "text": text}
				if err := c.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/v1/incidents/%d/%s", id, path), body, &inc); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "incident %d is %s\n", inc.ID, inc.Status)
				return nil
			},
		}
		if withText {
			a.Flags().StringVarP(&text, "message", "m", "", "what was done")
		}
		return a
	}

	note := &cobra.Command{
		Use:   "note ID TEXT...",
		Short: "Add a note to an incident's timeline",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := incidentID(args[0])
			if err != nil {
				return err
			}
			body := map[string]string{"by": who(), "source": "cli", "text": strings.Join(args[1:], " ")}
			if err := c.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/v1/incidents/%d/note", id), body, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "note added to incident %d\n", id)
			return nil
		},
	}

	var role string
	assign := &cobra.Command{
		Use:   "assign ID USER",
		Short: "Give a person a role in an incident (commander, scribe, liaison, responder)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := incidentID(args[0])
			if err != nil {
				return err
			}
			body := map[string]string{"by": who(), "source": "cli", "user": args[1], "role": role}
			if err := c.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/v1/incidents/%d/assign", id), body, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is %s of incident %d\n", args[1], role, id)
			return nil
		},
	}
	assign.Flags().StringVar(&role, "role", incidents.RoleResponder, "commander, scribe, liaison or responder")

	var output string
	postmortem := &cobra.Command{
		Use:   "postmortem ID",
		Short: "Write a Markdown postmortem draft (timeline, impact, detection time, MTTA, MTTR)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := incidentID(args[0])
			if err != nil {
				return err
			}
			if output == "" {
				output = fmt.Sprintf("postmortem-%d.md", id)
			}
			var md strings.Builder
			if err := c.do(cmd.Context(), http.MethodGet, fmt.Sprintf("/api/v1/incidents/%d/postmortem", id), nil, &md); err != nil {
				return err
			}
			if output == "-" {
				_, err := io.WriteString(stdout, md.String())
				return err
			}
			if _, err := os.Stat(output); err == nil {
				return usageError{fmt.Errorf("--output: %s exists; not overwriting a postmortem someone may have edited", output)}
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := os.WriteFile(output, []byte(md.String()), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\n", output)
			return nil
		},
	}
	postmortem.Flags().StringVarP(&output, "output", "o", "", "file to write (default postmortem-ID.md; - for stdout)")

	cmd.AddCommand(list, show,
		action("ack", "ack", "Acknowledge an incident (stops its escalation)", false),
		action("resolve", "resolve", "Resolve an incident", true),
		action("reopen", "reopen", "Re-open a resolved incident (restarts its escalation)", true),
		note, assign, postmortem)
	return cmd
}

func printIncident(w io.Writer, inc *incidentView) {
	fmt.Fprintf(w, "#%d %s\n", inc.ID, inc.Title)
	fmt.Fprintf(w, "  severity %s · status %s", inc.Severity, inc.Status)
	if inc.Service != "" {
		fmt.Fprintf(w, " · service %s", inc.Service)
	}
	if inc.SLO != "" {
		fmt.Fprintf(w, " · SLO %s", inc.SLO)
	}
	fmt.Fprintln(w)
	if inc.Commander != "" {
		fmt.Fprintf(w, "  commander %s\n", inc.Commander)
	}
	fmt.Fprintf(w, "  triggered %s", inc.TriggeredAt.UTC().Format(time.RFC3339))
	if inc.MTTASeconds != nil {
		fmt.Fprintf(w, " · acknowledged after %s", (time.Duration(*inc.MTTASeconds) * time.Second).String())
	}
	if inc.MTTRSeconds != nil {
		fmt.Fprintf(w, " · resolved after %s", (time.Duration(*inc.MTTRSeconds) * time.Second).String())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range inc.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Source, e.Text)
	}
	_ = tw.Flush()
}
