package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// client is the one HTTP client of the commands that talk to a running
// Burnrate (incident, oncall): one place for the URL and token flags, the
// bearer token, timeouts and error messages. Answers 400 are the caller's
// mistake (exit 2) and name the field the server refused.
type client struct {
	url   string
	token string
	http  *http.Client
}

// addClientFlags adds --url and --token to cmd and its subcommands.
func addClientFlags(cmd *cobra.Command, c *client) {
	cmd.PersistentFlags().StringVar(&c.url, "url", "http://127.0.0.1:8080", "Burnrate's URL")
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "API token (default: $BURNRATE_API_TOKEN)")
}

// apiError is Burnrate's JSON error answer.
type apiError struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Field     string `json:"field"`
}

// do sends body (JSON, when not nil) and decodes a JSON answer into out,
// or copies it raw into out when out is an io.Writer.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	base := strings.TrimSuffix(c.url, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return usageError{fmt.Errorf("--url: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	token := c.token
	if token == "" {
		token = os.Getenv("BURNRATE_API_TOKEN")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("is burnrate running at %s? %w", base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(raw))
		var ae apiError
		if json.Unmarshal(raw, &ae) == nil && ae.Error != "" {
			msg = ae.Error
		}
		err := fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
		if resp.StatusCode == http.StatusBadRequest {
			return usageError{err}
		}
		return err
	}
	switch o := out.(type) {
	case nil:
		return nil
	case io.Writer:
		_, err := o.Write(raw)
		return err
	default:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		return nil
	}
}
