package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/burnrate/burnrate/demoapp/faults"
)

// apiClient talks to a running Burnrate's API with the bearer token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base, token string) *apiClient {
	if token == "" {
		token = os.Getenv("BURNRATE_API_TOKEN")
	}
	return &apiClient{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: 10 * time.Second}}
}

// do sends a request and decodes the {"status","data"} envelope into out.
func (c *apiClient) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return usageError{fmt.Errorf("--url: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("is burnrate running at %s? %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if resp.StatusCode >= 300 || env.Status != "success" {
		err := fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, env.Error)
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
			return usageError{err}
		}
		return err
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

func newFaultCmd(stdout io.Writer) *cobra.Command {
	var base, token string
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject, clear and list faults in the running demo platform",
		Long: `Inject, clear and list fault flags of a running demo platform (burnrate up or
burnrate demo) through its API. Every change is recorded as an event.

  burnrate fault list
  burnrate fault set store.shard_down 1
  burnrate fault set api.latency 300ms
  burnrate fault clear store.shard_down
  burnrate fault clear            # every flag
  burnrate fault events`,
	}
	cmd.PersistentFlags().StringVar(&base, "url", "http://127.0.0.1:8080", "Burnrate API base URL")
	cmd.PersistentFlags().StringVar(&token, "token", "", "API bearer token (default $BURNRATE_API_TOKEN)")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List active flags and every flag there is",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var lr faults.ListResponse
			if err := newAPIClient(base, token).do(http.MethodGet, "/api/v1/demo/faults", nil, &lr); err != nil {
				return err
			}
			active := map[string]faults.Value{}
			for _, v := range lr.Active {
				active[v.Name] = v
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FLAG\tVALUE\tSINCE\tEXAMPLE\tDESCRIPTION")
			for _, s := range lr.Catalog {
				val, since := "-", "-"
				if v, ok := active[s.Name]; ok {
					val, since = v.Value, v.SetAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, val, since, s.Example, s.Description)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "set FLAG VALUE",
		Short: "Set a flag (see fault list for flags and example values)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			var v faults.Value
			body := map[string]string{"value": args[1], "source": "cli"}
			if err := newAPIClient(base, token).do(http.MethodPut, "/api/v1/demo/faults/"+url.PathEscape(args[0]), body, &v); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s = %s\n", v.Name, v.Value)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "clear [FLAG]",
		Short: "Clear a flag, or every flag",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := "/api/v1/demo/faults"
			if len(args) == 1 {
				path += "/" + url.PathEscape(args[0])
			}
			var out struct {
				Cleared []string `json:"cleared"`
			}
			if err := newAPIClient(base, token).do(http.MethodDelete, path+"?source=cli", nil, &out); err != nil {
				return err
			}
			if len(out.Cleared) == 0 {
				fmt.Fprintln(stdout, "nothing to clear")
				return nil
			}
			fmt.Fprintf(stdout, "cleared %s\n", strings.Join(out.Cleared, ", "))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "events",
		Short: "List recorded fault changes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var evs []faults.Event
			if err := newAPIClient(base, token).do(http.MethodGet, "/api/v1/demo/events", nil, &evs); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tKIND\tFLAG\tVALUE\tSOURCE")
			for _, e := range evs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Kind, e.Flag, e.Value, e.Source)
			}
			return tw.Flush()
		},
	})
	return cmd
}
