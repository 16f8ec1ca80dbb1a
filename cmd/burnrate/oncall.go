package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/incidents"
)

// parseFlagTime reads an RFC 3339 flag value.
func parseFlagTime(flag, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--%s: %q is not RFC 3339 (2026-03-08T09:00:00Z)", flag, v)}
	}
	return t, nil
}

func newOnCallCmd(stdout io.Writer) *cobra.Command {
	c := &client{}
	var schedule, at string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "oncall",
		Short: "Who is on call now and next (overrides and swaps applied); schedules, overrides, swaps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if at != "" {
				if _, err := parseFlagTime("at", at); err != nil {
					return err
				}
				q.Set("at", at)
			}
			path := "/api/v1/oncall"
			if schedule != "" {
				path = "/api/v1/schedules/" + url.PathEscape(schedule) + "/oncall"
			}
			var res struct {
				OnCall []incidents.OnCall `json:"oncall"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, path+"?"+q.Encode(), nil, &res); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(res.OnCall)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCHEDULE\tON CALL\tNEXT\tFROM")
			for _, oc := range res.OnCall {
				var now, next []string
				for _, u := range oc.Users {
					now = append(now, u.ID)
				}
				for _, s := range oc.Next {
					next = append(next, s.User)
				}
				from := ""
				if len(oc.Next) > 0 {
					from = oc.Next[0].Start.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oc.Schedule, orDash(now), orDash(next), from)
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, c)
	cmd.Flags().StringVarP(&schedule, "schedule", "s", "", "one schedule (default all)")
	cmd.Flags().StringVar(&at, "at", "", "instant to ask about, RFC 3339 (default now)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var from, to string
	final := &cobra.Command{
		Use:   "final SCHEDULE",
		Short: "Print the final schedule (layers, restrictions and overrides applied) for a range",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for flag, v := range map[string]string{"from": from, "to": to} {
				if v != "" {
					if _, err := parseFlagTime(flag, v); err != nil {
						return err
					}
					q.Set(flag, v)
				}
			}
			var res struct {
				TimeZone string            `json:"time_zone"`
				Shifts   []incidents.Shift `json:"shifts"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/schedules/"+url.PathEscape(args[0])+"/final?"+q.Encode(), nil, &res); err != nil {
				return err
			}
			loc, err := time.LoadLocation(res.TimeZone)
			if err != nil {
				loc = time.UTC
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "USER\tSTART (%s)\tEND\tLAYER\n", res.TimeZone)
			for _, s := range res.Shifts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.User, s.Start.In(loc).Format("2006-01-02 15:04 MST"),
					s.End.In(loc).Format("2006-01-02 15:04 MST"), s.Layer)
			}
			return tw.Flush()
		},
	}
	final.Flags().StringVar(&from, "from", "", "start, RFC 3339 (default now)")
	final.Flags().StringVar(&to, "to", "", "end, RFC 3339 (default a week after --from)")

	var user, replaces, start, end, note string
	override := &cobra.Command{
		Use:   "override SCHEDULE",
		Short: "Put a person on call for a while (replacing everyone, or --replaces one person)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return usageError{fmt.Errorf("--user is required")}
			}
			s, err := parseFlagTime("start", start)
			if err != nil {
				return err
			}
			e, err := parseFlagTime("end", end)
			if err != nil {
				return err
			}
			var o incidents.Override
			body := map[string]any{"user": user, "replaces": replaces, "start": s, "end": e, "note": note}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/schedules/"+url.PathEscape(args[0])+"/overrides", body, &o); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "override %d: %s on call %s to %s\n", o.ID, o.User, o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339))
			return nil
		},
	}
	override.Flags().StringVar(&user, "user", "", "who takes over (required)")
	override.Flags().StringVar(&replaces, "replaces", "", "replace only this person (default everyone on call)")
	override.Flags().StringVar(&start, "start", "", "start, RFC 3339 (required)")
	override.Flags().StringVar(&end, "end", "", "end, RFC 3339 (required)")
	override.Flags().StringVar(&note, "note", "", "why")

	swap := &cobra.Command{
		Use:   "swap SCHEDULE A A_AT B B_AT",
		Short: "Swap shifts: A's shift holding A_AT goes to B, B's shift holding B_AT goes to A",
		Args:  cobra.ExactArgs(5),
		RunE: func(cmd *cobra.Command, args []string) error {
			aAt, err := parseFlagTime("A_AT", args[2])
			if err != nil {
				return err
			}
			bAt, err := parseFlagTime("B_AT", args[4])
			if err != nil {
				return err
			}
			var res struct {
				Overrides []incidents.Override `json:"overrides"`
			}
			body := incidents.Swap{A: args[1], AAt: aAt, B: args[3], BAt: bAt}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/schedules/"+url.PathEscape(args[0])+"/swaps", body, &res); err != nil {
				return err
			}
			for _, o := range res.Overrides {
				fmt.Fprintf(stdout, "%s covers %s from %s to %s\n", o.User, o.Replaces, o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339))
			}
			return nil
		},
	}

	calendar := &cobra.Command{
		Use:   "calendar SCHEDULE|--user USER",
		Short: "Print the iCal subscription URL of a schedule or a person",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			base := strings.TrimSuffix(c.url, "/")
			switch {
			case user != "":
				fmt.Fprintf(stdout, "%s/api/v1/users/%s/calendar.ics\n", base, url.PathEscape(user))
			case len(args) == 1:
				fmt.Fprintf(stdout, "%s/api/v1/schedules/%s/calendar.ics\n", base, url.PathEscape(args[0]))
			default:
				return usageError{fmt.Errorf("give a SCHEDULE or --user")}
			}
			return nil
		},
	}
	calendar.Flags().StringVar(&user, "user", "", "a person's feed across every schedule")

	del := &cobra.Command{
		Use:   "delete SCHEDULE",
		Short: "Delete a schedule and its overrides (refused while an escalation policy pages it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/schedules/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "schedule %s deleted\n", args[0])
			return nil
		},
	}

	cmd.AddCommand(final, override, swap, calendar, del)
	return cmd
}

func orDash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}
