package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// client is the one HTTP client of the commands that talk to a running
// Burnrate (silence, gate, deploy, incident, oncall): one place for the URL
// and token flags, the bearer token, timeouts and error messages.
type client struct {
	url   string
	token string
	http  *http.Client
}

// addClientFlags adds --url and --token to cmd and its subcommands.
func addClientFlags(cmd *cobra.Command, c *client) {
	cmd.PersistentFlags().StringVar(&c.url, "url", envOr("BURNRATE_URL", "http://127.0.0.1:8080"), "Burnrate's URL (default: $BURNRATE_URL)")
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "API token (default: $BURNRATE_API_TOKEN)")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// apiError is an answer outside 2xx, with Burnrate's message.
type apiError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// do sends body (JSON, when not nil) and decodes a 2xx JSON answer into out,
// or copies it raw into out when out is an io.Writer. A non-2xx answer is an
// *apiError carrying Burnrate's message; a 400 is the caller's mistake
// (usageError, exit 2) and names the field the server refused.
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
	req.Header.Set("User-Agent", "burnrate-cli")
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
		err := &apiError{Method: method, Path: path, Status: resp.StatusCode, Message: apiMessage(raw)}
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

// apiMessage extracts the message of an error body: a JSON string, a
// {"message"} or {"error"} object, or the raw text.
func apiMessage(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		for _, k := range []string{"message", "error"} {
			if v, ok := m[k].(string); ok {
				return v
			}
		}
	}
	return strings.TrimSpace(string(raw))
}

// signalContext is the context of a command that runs until done or until
// SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// exitError ends the process with a command's own exit code (the gate's 0,
// 1, 2, 3), after printing its message if it has one.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

func asExitError(err error) (exitError, bool) {
	var ee exitError
	ok := errors.As(err, &ee)
	return ee, ok
}
