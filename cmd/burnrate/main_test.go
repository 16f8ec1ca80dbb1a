package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
)

// binary is the burnrate binary built once for the tests that run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "burnrate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "burnrate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running burnrate binary whose output is collected.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	urls   chan string
	done   chan error
}

func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), urls: make(chan string, 1), done: make(chan error, 1)}
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	require.NoError(t, p.cmd.Start())
	go func() {
		health := regexp.MustCompile(`health\s+(http://\S+)/-/ready`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := health.FindStringSubmatch(sc.Text()); m != nil {
				p.urls <- m[1]
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func (p *proc) url(t *testing.T) string {
	t.Helper()
	select {
	case u := <-p.urls:
		return u
	case err := <-p.done:
		t.Fatalf("burnrate exited before printing its URLs: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("burnrate printed no URLs within 60s\n%s", p.log())
	}
	return ""
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestUpServesAndStopsOnInterrupt(t *testing.T) {
	p := startBinary(t, "up", "--listen", "127.0.0.1:0", "--edge-listen", "127.0.0.1:0", "--otlp-listen", "", "--data-dir", t.TempDir())
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)

	code, body := testutil.HTTPGet(t, base+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "burnrate_build_info")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-p.done:
		require.NoError(t, err, "burnrate must exit 0 after SIGINT\n%s", p.log())
	case <-time.After(5 * time.Second):
		t.Fatalf("burnrate did not exit within 5s of SIGINT\n%s", p.log())
	}
	require.Contains(t, p.log(), "burnrate stopped")
}

func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:0\nlog:\n  level: info\n"), 0o600))
	p := startBinary(t, "serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", "")
	testutil.WaitReady(t, p.url(t), 60*time.Second)

	require.NoError(t, os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:0\nlog:\n  level: debug\n"), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(p.log(), "configuration reloaded")
	}, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, p.log(), "cannot reload its configuration; restart to apply changes")

	// A broken file on reload is reported and the running configuration kept.
	require.NoError(t, os.WriteFile(cfgFile, []byte("listen: [\n"), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(p.log(), "reload failed; keeping the running configuration")
	}, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("burnrate did not exit within 5s of SIGTERM")
	}
}

func TestInvalidConfigFailsAtStart(t *testing.T) {
	cases := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "an unknown key is reported with its line and the nearest known key",
			file: "listen: 127.0.0.1:0\nlisten_adress: x\n",
			want: []string{":2: unknown key \"listen_adress\""},
		},
		{
			name: "an unknown key in a section is reported with its full path",
			file: "log:\n  levle: debug\n",
			want: []string{":2: unknown key \"log.levle\" (did you mean \"log.level\"?)"},
		},
		{
			name: "a value of the wrong type names the key and what was expected",
			file: "shutdown_timeout: soon\n",
			want: []string{":1: shutdown_timeout: want a duration such as 30s or 5m, got \"soon\""},
		},
		{
			name: "an invalid value names the key, its line and the allowed values",
			file: "log:\n  level: loud\n",
			want: []string{":2: log.level: \"loud\" is not one of debug, info, warn, error"},
		},
		{
			name: "an address that is not host:port is refused",
			file: "listen: localhost\n",
			want: []string{":1: listen: \"localhost\" is not host:port"},
		},
		{
			name: "a section given as a scalar is refused",
			file: "log: debug\n",
			want: []string{":1: log: want a mapping of keys"},
		},
		{
			name: "YAML that does not parse is reported with its line",
			file: "listen: 127.0.0.1:0\n  bad: [\n",
			want: []string{"yaml: line"},
		},
		{
			name: "a misspelt key inside a list of sections is found, with its path",
			file: "alerting:\n  route:\n    routes:\n      - receiver: x\n        group_wiat: 1s\n",
			want: []string{":5: unknown key \"alerting.route.routes[0].group_wiat\" (did you mean \"alerting.route.routes[0].group_wait\"?)"},
		},
		{
			name: "a bad duration inside a list of sections is found",
			file: "alerting:\n  route:\n    routes:\n      - group_wait: soon\n",
			want: []string{":4: alerting.route.routes[0].group_wait: want a duration"},
		},
		{
			name: "every error in the file is reported, not only the first",
			file: "a: 1\nb: 2\n",
			want: []string{":1: unknown key \"a\"", ":2: unknown key \"b\""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.yml")
			require.NoError(t, os.WriteFile(file, []byte(tc.file), 0o600))
			var stdout, stderr bytes.Buffer
			code := run([]string{"serve", "--config", file, "--data-dir", t.TempDir()}, &stdout, &stderr)
			require.Equal(t, exitUsage, code)
			require.Contains(t, stderr.String(), file)
			for _, w := range tc.want {
				require.Contains(t, stderr.String(), w)
			}
			require.NotContains(t, stdout.String(), "Press Ctrl-C", "nothing may start on a bad config")
		})
	}

	t.Run("a missing config file is an error, not the defaults", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"serve", "--config", filepath.Join(t.TempDir(), "nope.yml")}, &stdout, &stderr)
		require.Equal(t, exitUsage, code)
		require.Contains(t, stderr.String(), "nope.yml")
	})

	t.Run("an unknown flag is a usage error", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitUsage, run([]string{"up", "--lisen", "x"}, &stdout, &stderr))
		require.Contains(t, stderr.String(), "unknown flag: --lisen")
	})
}

func TestConfigPrint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(file, []byte(
		"listen: 127.0.0.1:9000\ndata_dir: /from/file\napi_token: file-secret\nlog:\n  level: warn\n  format: json\n"), 0o600))

	t.Run("flags win over the environment, which wins over the file", func(t *testing.T) {
		t.Setenv("BURNRATE_DATA_DIR", "/from/env")
		t.Setenv("BURNRATE_LOG_LEVEL", "error")
		var stdout, stderr bytes.Buffer
		code := run([]string{"config", "print", "--config", file, "--log-level", "debug"}, &stdout, &stderr)
		require.Equal(t, exitOK, code, stderr.String())
		out := stdout.String()
		require.Contains(t, out, "listen: 127.0.0.1:9000\n")
		require.Contains(t, out, "data_dir: /from/env\n")
		require.Contains(t, out, "  level: debug\n")
		require.Contains(t, out, "  format: json\n")
	})

	t.Run("secrets are redacted, wherever they came from", func(t *testing.T) {
		t.Setenv("BURNRATE_API_TOKEN", "env-secret")
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run([]string{"config", "print", "--config", file}, &stdout, &stderr))
		require.Contains(t, stdout.String(), `api_token: "<redacted>"`)
		require.NotContains(t, stdout.String()+stderr.String(), "env-secret")
		require.NotContains(t, stdout.String()+stderr.String(), "file-secret")
	})

	t.Run("the demo's ingest token comes from the environment and is redacted", func(t *testing.T) {
		t.Setenv("BURNRATE_DEMO_OTLP_TOKEN", "ingest-secret")
		cfg, err := loadConfig(file, nil)
		require.NoError(t, err)
		require.Equal(t, "ingest-secret", cfg.Demo.OTLPToken, "a `burnrate demo --role` process sends it with its exports")
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run([]string{"config", "print", "--config", file}, &stdout, &stderr))
		require.Contains(t, stdout.String(), `otlp_token: "<redacted>"`)
		require.NotContains(t, stdout.String()+stderr.String(), "ingest-secret")
	})

	t.Run("a secret map keeps its keys and hides its values", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "h.yml")
		require.NoError(t, os.WriteFile(f, []byte("collector:\n  traces:\n    forward:\n      headers:\n        Authorization: Bearer hush\n"), 0o600))
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run([]string{"config", "print", "--config", f}, &stdout, &stderr), stderr.String())
		// Keys are case-insensitive in the configuration, as header names are.
		require.Contains(t, stdout.String(), `headers: {authorization: "<redacted>"}`)
		require.NotContains(t, stdout.String(), "hush")
	})

	t.Run("the printed configuration loads back as the same configuration", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run([]string{"config", "print"}, &stdout, &stderr), stderr.String())
		again := filepath.Join(t.TempDir(), "printed.yml")
		require.NoError(t, os.WriteFile(again, stdout.Bytes(), 0o600))
		first, err := loadConfig("", nil)
		require.NoError(t, err)
		second, err := loadConfig(again, nil)
		require.NoError(t, err, "config print output must be a valid file:\n%s", stdout.String())
		require.Equal(t, first, second)
	})

	t.Run("a list in the file replaces the default list instead of merging into it", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "l.yml")
		require.NoError(t, os.WriteFile(f, []byte("alerting:\n  inhibit_rules:\n    - target_matchers: ['severity=\"info\"']\n      source_matchers: ['severity=\"page\"']\n"), 0o600))
		cfg, err := loadConfig(f, nil)
		require.NoError(t, err)
		require.Len(t, cfg.Alerting.InhibitRules, 1)
		require.Equal(t, []string{`severity="info"`}, cfg.Alerting.InhibitRules[0].TargetMatchers)
		require.Empty(t, cfg.Alerting.InhibitRules[0].Equal, "nothing of a default rule leaks into the user's")

		f2 := filepath.Join(t.TempDir(), "g.yml")
		require.NoError(t, os.WriteFile(f2, []byte("alerting:\n  route:\n    group_by: [service]\n"), 0o600))
		cfg, err = loadConfig(f2, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"service"}, cfg.Alerting.Route.GroupBy, "the default [alertname slo severity] is replaced, not merged")
	})

	t.Run("durations take days as SLO periods do", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "d.yml")
		require.NoError(t, os.WriteFile(f, []byte("collector:\n  tsdb:\n    retention: 40d\n"), 0o600))
		cfg, err := loadConfig(f, nil)
		require.NoError(t, err)
		require.Equal(t, 40*24*time.Hour, cfg.Collector.TSDB.Retention)
		t.Setenv("BURNRATE_SLO_INTERVAL", "1m30s")
		cfg, err = loadConfig(f, nil)
		require.NoError(t, err)
		require.Equal(t, 90*time.Second, cfg.SLO.Interval, "Go durations still parse")
	})

	t.Run("the defaults need no file", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run([]string{"config", "print"}, &stdout, &stderr))
		require.Contains(t, stdout.String(), "listen: 127.0.0.1:8080\n")
		require.Contains(t, stdout.String(), `api_token: ""`)
	})
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run([]string{"version"}, &stdout, &stderr))
	require.Regexp(t, `^burnrate, version \S+`, stdout.String())
}
