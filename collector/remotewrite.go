package collector

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	promremote "github.com/prometheus/prometheus/storage/remote"
	"go.yaml.in/yaml/v3"
)

// newRemoteWriteHandler is Prometheus's own remote-write receiver (1.0; 2.0
// too, as Prometheus accepts it), writing through the limits.
func newRemoteWriteHandler(logger *slog.Logger, reg prometheus.Registerer, app storage.Appendable) http.Handler {
	return promremote.NewWriteHandler(logger.With("component", "remote_write"), reg, app,
		remote.MessageTypes{remote.WriteV1MessageType, remote.WriteV2MessageType}, false, false, false)
}

// serveRemoteWrite bounds the body (compressed and decompressed), then lets
// Prometheus's handler decode and append. Samples the limits rejected were
// swallowed so that the rest went in; the sender then gets 400 with the
// counts instead of 204, so it neither retries nor believes all went in.
func (c *Collector) serveRemoteWrite(w http.ResponseWriter, r *http.Request) (int, *httpError) {
	body, herr := readBody(r, w, c.cfg.MaxRequestBytes, false)
	if herr != nil {
		return 0, herr
	}
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "snappy") || r.Header.Get("Content-Encoding") == "" {
		if n, err := snappy.DecodedLen(body); err == nil && int64(n) > c.cfg.MaxRequestBytes {
			return 0, tooLarge(c.cfg.MaxRequestBytes)
		}
	}
	ctx, st := withRequestState(r.Context(), protoRemoteWrite)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	rec := &recorder{header: w.Header(), code: http.StatusOK}
	c.rw.ServeHTTP(rec, r)

	st.mu.Lock()
	counts := st.counts
	st.mu.Unlock()
	correctWrittenHeaders(w.Header(), counts)
	if rec.code/100 == 2 && counts.rejectedTotal() > 0 {
		return 0, &httpError{code: http.StatusBadRequest, msg: counts.summary()}
	}
	w.WriteHeader(rec.code)
	_, _ = w.Write(rec.body.Bytes())
	return rec.code, nil
}

// Remote write 2.0's response headers: what the receiver wrote.
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
)

// correctWrittenHeaders sets remote write 2.0's written counts to what the
// TSDB took: Prometheus's handler counts the samples the limits swallowed
// as written. Remote write 1.0 answers have no such headers.
func correctWrittenHeaders(h http.Header, counts ingestCounts) {
	if h.Get(headerSamplesWritten) == "" {
		return
	}
	h.Set(headerSamplesWritten, strconv.Itoa(counts.accepted-counts.acceptedHistograms))
	h.Set(headerHistogramsWritten, strconv.Itoa(counts.acceptedHistograms))
}

// recorder holds a response back until the collector decides on the status.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// remoteWriteFlushDeadline bounds how long stopping waits for remote write
// to send what it has queued (Prometheus's default is a minute). It is spent
// inside the process's 5 s stop budget, so a receiver that is down or hangs
// cannot hold the stop. What is not sent by then is logged by the queue
// manager as dropped on shutdown; the samples themselves are in the local
// TSDB, but a restarted process does not send them again.
const remoteWriteFlushDeadline = time.Second

// openRemoteWrite starts Prometheus's queue manager, which tails the TSDB's
// WAL and sends every sample to remote_write.url, retrying with backoff. The
// configuration goes through Prometheus's own loader, so its defaults and
// validation apply.
func (c *Collector) openRemoteWrite() error {
	u, err := url.Parse(c.cfg.RemoteWrite.URL)
	if err != nil {
		return fmt.Errorf("collector.remote_write.url: %w", err)
	}
	rw := map[string]any{
		"url":            u.String(),
		"remote_timeout": c.cfg.RemoteWrite.Timeout.String(),
		"metadata_config": map[string]any{
			"send": false,
		},
		"queue_config": map[string]any{
			"batch_send_deadline": "1s",
		},
	}
	if rc := c.cfg.RemoteWrite.WriteRelabelConfigs; len(rc) > 0 {
		rw["write_relabel_configs"] = rc
	}
	if c.cfg.RemoteWrite.BearerToken != "" {
		rw["authorization"] = map[string]any{"type": "Bearer", "credentials": c.cfg.RemoteWrite.BearerToken}
	}
	raw, err := yaml.Marshal(map[string]any{"remote_write": []any{rw}})
	if err != nil {
		return fmt.Errorf("collector.remote_write: %w", err)
	}
	cfg, err := config.Load(string(raw), c.logger)
	if err != nil {
		return fmt.Errorf("collector.remote_write: %w", err)
	}
	rs := promremote.NewStorage(c.logger.With("component", "remote_write"), c.reg, c.db.StartTime, c.dir, remoteWriteFlushDeadline, readyScrape{c}, false)
	if err := rs.ApplyConfig(cfg); err != nil {
		_ = rs.Close()
		return fmt.Errorf("collector.remote_write: %w", err)
	}
	// Each commit wakes the WAL reader, as in Prometheus, rather than it
	// polling every 15 s.
	c.db.SetWriteNotified(rs)
	c.remote = rs
	c.storage = storage.NewFanout(c.logger, c.db, rs)
	return nil
}

type readyScrape struct{ c *Collector }

func (r readyScrape) Get() (*scrape.Manager, error) { return r.c.scrape, nil }
