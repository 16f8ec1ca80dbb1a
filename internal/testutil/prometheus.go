package testutil

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Paths of Debian's binaries (apt-get install prometheus); .ci/run installs
// them.
const (
	PrometheusBin   = "/usr/bin/prometheus"
	PromtoolBin     = "/usr/bin/promtool"
	AlertmanagerBin = "/usr/bin/prometheus-alertmanager"
	AmtoolBin       = "/usr/bin/amtool"
)

// PromConfig describes a Debian prometheus to start.
type PromConfig struct {
	// Config is the body of prometheus.yml; empty means a bare global
	// section. Relative paths in it are relative to the directory of the
	// file, where Files are written.
	Config string
	// Files are written next to prometheus.yml (rule files), by name.
	Files map[string][]byte
	// OpenMetrics, when set, is backfilled into the data directory with
	// `promtool tsdb create-blocks-from openmetrics` before the start.
	OpenMetrics string
	// Args are extra flags (--web.enable-remote-write-receiver, ...).
	Args []string
}

// Server is a running Debian prometheus or Alertmanager on a free loopback
// port.
type Server struct {
	// URL is http://127.0.0.1:PORT.
	URL string
	// Dir holds the configuration, Files and data/.
	Dir  string
	cmd  *exec.Cmd
	logs *lockedBuffer
}

// NeedBinary skips the test when path is not installed.
func NeedBinary(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not installed (apt-get install prometheus prometheus-alertmanager); .ci/run installs it", path)
	}
}

// StartPrometheus starts prometheus in a fresh temporary directory and stops
// it when the test ends, printing its log if the test failed. The test is
// skipped when Debian's prometheus is not installed.
func StartPrometheus(t testing.TB, c PromConfig) *Server {
	t.Helper()
	NeedBinary(t, PrometheusBin)
	if c.OpenMetrics != "" {
		NeedBinary(t, PromtoolBin)
	}
	p, err := LaunchPrometheus(t.TempDir(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.Logs())
		}
	})
	return p
}

// LaunchPrometheus starts prometheus with its files in dir and waits until it
// is ready. The caller stops it; StartPrometheus is the form for one test.
func LaunchPrometheus(dir string, c PromConfig) (*Server, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if c.OpenMetrics != "" {
		in := filepath.Join(dir, "backfill.om")
		if err := os.WriteFile(in, []byte(c.OpenMetrics), 0o644); err != nil {
			return nil, err
		}
		if out, err := exec.Command(PromtoolBin, "tsdb", "create-blocks-from", "openmetrics", in, data).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("promtool backfill: %w: %s", err, out)
		}
	}
	for name, body := range c.Files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return nil, err
		}
	}
	if c.Config == "" {
		c.Config = "global:\n  scrape_interval: 1h\n"
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(c.Config), 0o644); err != nil {
		return nil, err
	}
	return launch(PrometheusBin, dir, func(addr string) []string {
		return append([]string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + data,
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}, c.Args...)
	})
}

// StartAlertmanager starts Debian's Alertmanager with configYAML, clustering
// off, in a fresh temporary directory, and stops it when the test ends. The
// test is skipped when it is not installed.
func StartAlertmanager(t testing.TB, configYAML string) *Server {
	t.Helper()
	NeedBinary(t, AlertmanagerBin)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := launch(AlertmanagerBin, dir, func(addr string) []string {
		return []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", s.Logs())
		}
	})
	return s
}

// launch starts bin with the flags args gives for a free loopback address
// and waits until /-/ready answers 200.
func launch(bin, dir string, args func(addr string) []string) (*Server, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &Server{URL: "http://" + addr, Dir: dir, logs: &lockedBuffer{}}
	p.cmd = exec.Command(bin, args(addr)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(p.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s did not become ready: %s", filepath.Base(bin), p.Logs())
}

// Stop interrupts the server and waits for it, killing it after 10 s.
func (p *Server) Stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Logs returns what the server wrote to stdout and stderr.
func (p *Server) Logs() string { return p.logs.String() }

// FreeAddr returns a loopback address with a port free at the time of the
// call.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
