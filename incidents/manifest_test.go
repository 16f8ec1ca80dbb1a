package incidents_test

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestTheSlackAppManifestPointsAtTheSlackEndpoints(t *testing.T) {
	raw, err := os.ReadFile("../docs/slack-app-manifest.yml")
	require.NoError(t, err)
	var m struct {
		Features struct {
			SlashCommands []struct {
				Command string `yaml:"command"`
				URL     string `yaml:"url"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Interactivity struct {
				Enabled bool   `yaml:"is_enabled"`
				URL     string `yaml:"request_url"`
			} `yaml:"interactivity"`
		} `yaml:"settings"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &m))
	require.Len(t, m.Features.SlashCommands, 1)
	require.Equal(t, "/burnrate", m.Features.SlashCommands[0].Command)
	require.True(t, m.Settings.Interactivity.Enabled)
	for _, scope := range []string{"chat:write", "users:read.email", "commands", "im:write"} {
		require.Contains(t, m.OAuth.Scopes.Bot, scope)
	}
	// Both URLs reach Burnrate's Slack handlers (401: unsigned).
	e := newEnv(t, nil)
	for _, raw := range []string{m.Features.SlashCommands[0].URL, m.Settings.Interactivity.URL} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		resp, err := http.Post(e.srv.URL+u.Path, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, u.Path)
	}
}
