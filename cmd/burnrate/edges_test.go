package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/internal/testutil"
)

// otlpBody is an OTLP/HTTP protobuf export of one gauge point of metric.
// Each point of a series needs its own millisecond: two values at one
// timestamp are a duplicate the TSDB rejects.
func otlpBody(t testing.TB, metric string, at time.Time, v float64) []byte {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "edges")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(metric)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(v)
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	return b
}

// remoteWriteBody is a snappy remote-write 1.0 request of one sample.
func remoteWriteBody(t testing.TB, metric string, at time.Time, v float64) []byte {
	t.Helper()
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: metric}, {Name: "job", Value: "edges"}},
		Samples: []prompb.Sample{{Value: v, Timestamp: at.UnixMilli()}},
	}}}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

func postOTLP(c *http.Client, url string, body []byte, token string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func postRemoteWrite(c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// slowBody opens a connection from the loopback address from, sends the
// headers of a POST to path with a 1 MB body, then trickles one byte every
// 200ms until the server closes the connection. It returns how long after
// the headers the server closed it, or an error if it kept it open past
// giveUp.
func slowBody(from, addr, path, contentType string, giveUp time.Duration, sent func()) (time.Duration, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		sent()
		return 0, err
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 1000000\r\n\r\n", path, addr, contentType)
	sent()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		// The trickle: one byte at a time, as a slowloris sends.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	defer close(closed)
	_ = conn.SetReadDeadline(start.Add(giveUp))
	_, err = io.Copy(io.Discard, bufio.NewReader(conn))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return 0, fmt.Errorf("%s%s from %s: still open after %s", addr, path, from, giveUp)
	}
	return time.Since(start), nil
}

// TestSlowBodiesDoNotStarveIngest: slow-body connections on every ingest
// path, from three addresses, must not take the slots of senders beside
// them, and are closed once the body timeout has passed.
func TestSlowBodiesDoNotStarveIngest(t *testing.T) {
	const (
		bodyTimeout = 4 * time.Second
		slowPerPath = 100
		pushFor     = 2500 * time.Millisecond
	)
	otlpAddr, err := testutil.FreeAddr()
	require.NoError(t, err)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(
		"listen: 127.0.0.1:0\ncollector:\n  ingest:\n    body_timeout: %s\n", bodyTimeout)), 0o600))
	p := startBinary(t, "serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", otlpAddr)
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)
	mainAddr := base[len("http://"):]

	// The slow senders: 100 connections on each ingest path, from three
	// addresses other than the legitimate senders' 127.0.0.1.
	type target struct{ addr, path, ct string }
	targets := []target{
		{otlpAddr, "/v1/metrics", "application/x-protobuf"},
		{otlpAddr, "/v1/traces", "application/x-protobuf"},
		{mainAddr, "/api/v1/write", "application/x-protobuf"},
	}
	var (
		sentWG   sync.WaitGroup
		slowWG   sync.WaitGroup
		slowMu   sync.Mutex
		slowErrs []error
		slowMax  time.Duration
	)
	giveUp := bodyTimeout + 10*time.Second
	for i := range slowPerPath {
		for j, tg := range targets {
			slowWG.Add(1)
			sentWG.Add(1)
			go func() {
				defer slowWG.Done()
				from := fmt.Sprintf("127.0.0.%d", 2+(i+j)%3)
				took, err := slowBody(from, tg.addr, tg.path, tg.ct, giveUp, sentWG.Done)
				slowMu.Lock()
				defer slowMu.Unlock()
				if err != nil {
					slowErrs = append(slowErrs, err)
				}
				slowMax = max(slowMax, took)
			}()
		}
	}
	// Every slow connection has sent its headers; give the server a moment
	// to admit them, so that they hold what slots they can.
	sentWG.Wait()
	time.Sleep(300 * time.Millisecond)

	// The legitimate senders, beside them: OTLP to the OTLP listener and
	// remote write to the main listener, two each, for pushFor.
	var (
		pushWG    sync.WaitGroup
		total     atomic.Int64
		failed    atomic.Int64
		latMu     sync.Mutex
		latencies []time.Duration
		statuses  sync.Map
	)
	t0 := time.Now()
	stop := t0.Add(pushFor)
	for w := range 4 {
		pushWG.Add(1)
		go func() {
			defer pushWG.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for n := 0; n < 500 && time.Now().Before(stop); n++ {
				var (
					code int
					err  error
				)
				start := time.Now()
				if w%2 == 0 {
					code, err = postOTLP(c, "http://"+otlpAddr+"/v1/metrics", otlpBody(t, fmt.Sprintf("edges_otlp_%d", w), t0.Add(time.Duration(n)*time.Millisecond), float64(n)), "")
				} else {
					code, err = postRemoteWrite(c, base+"/api/v1/write", remoteWriteBody(t, fmt.Sprintf("edges_rw_%d", w), t0.Add(time.Duration(n)*time.Millisecond), float64(n)))
				}
				took := time.Since(start)
				total.Add(1)
				if err != nil || code/100 != 2 {
					failed.Add(1)
					v, _ := statuses.LoadOrStore(fmt.Sprint(code, err), new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
					continue
				}
				latMu.Lock()
				latencies = append(latencies, took)
				latMu.Unlock()
			}
		}()
	}
	pushWG.Wait()
	slowWG.Wait()

	statuses.Range(func(k, v any) bool {
		t.Logf("legitimate push failed with %v: %d times", k, v.(*atomic.Int64).Load())
		return true
	})
	require.Positive(t, total.Load())
	require.NotEmpty(t, latencies, "no legitimate push succeeded")
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("legitimate pushes: %d, failed %d; p99 latency %s; slowest slow connection closed after %s (body timeout %s)",
		total.Load(), failed.Load(), p99, slowMax, bodyTimeout)
	require.Less(t, float64(failed.Load()), 0.01*float64(total.Load()),
		"under 1%% of the legitimate pushes may be pushed back")
	// The bound is 100ms; a loaded 2-core CI machine gets more room.
	require.Less(t, p99, time.Second, "legitimate pushes beside slow ones must stay fast")
	require.Empty(t, slowErrs, "every slow connection must be closed within the body timeout")
	require.LessOrEqual(t, slowMax, bodyTimeout+3*time.Second, "slow connections must be closed within the body timeout")
}

// hangingServer accepts requests and never answers them until the test ends,
// as a remote-write or trace receiver behind a stuck proxy does.
// The channel is closed when the first request arrives.
func hangingServer(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		once.Do(func() { close(arrived) })
		<-release
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(release); _ = srv.Close() })
	return "http://" + ln.Addr().String(), arrived
}

// TestStopsOnTimeWhateverTheSendTargetsDo: SIGTERM with samples queued for
// a remote-write target that hangs and spans queued for a trace forward
// target that hangs: the process still exits within the 5 s stop budget
// (asserted with room for a loaded machine, and printed).
func TestStopsOnTimeWhateverTheSendTargetsDo(t *testing.T) {
	rw, rwStuck := hangingServer(t)
	fwd, fwdStuck := hangingServer(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "burnrate.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
collector:
  remote_write:
    url: %s/api/v1/write
  traces:
    forward:
      endpoint: %s/v1/traces
`, rw, fwd)), 0o600))
	p := startBinary(t, "serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--otlp-listen", "")
	base := p.url(t)
	testutil.WaitReady(t, base, 60*time.Second)

	c := &http.Client{Timeout: 10 * time.Second}
	t0 := time.Now()
	for n := range 20 {
		code, err := postOTLP(c, base+"/v1/metrics", otlpBody(t, "stop_test", t0.Add(time.Duration(n)*time.Millisecond), float64(n)), "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		code, err = postRemoteWrite(c, base+"/api/v1/write", remoteWriteBody(t, "stop_rw", t0.Add(time.Duration(n)*time.Millisecond), float64(n)))
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, code)
	}
	code, err := postOTLP(c, base+"/v1/traces", traceBody(t), "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	// Both senders are stuck on a request (remote write reads the WAL
	// within 15 s).
	for name, stuck := range map[string]<-chan struct{}{"remote write": rwStuck, "trace forward": fwdStuck} {
		select {
		case <-stuck:
		case <-time.After(40 * time.Second):
			t.Fatalf("%s sent nothing within 40s\n%s", name, p.log())
		}
	}

	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		took := time.Since(start)
		t.Logf("stopped %s after SIGTERM", took)
		require.NoError(t, err, "burnrate must exit 0 after SIGTERM\n%s", p.log())
		require.Less(t, took, 6*time.Second, "the stop budget is 5s")
	case <-time.After(30 * time.Second):
		t.Fatalf("burnrate did not exit within 30s of SIGTERM\n%s", p.log())
	}
}

// traceBody is an OTLP/HTTP protobuf export of one span.
func traceBody(t testing.TB) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "edges")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("GET /")
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}
