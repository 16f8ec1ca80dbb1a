package collector

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/prometheus/config"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Media types of OTLP/HTTP.
const (
	mediaProtobuf = "application/x-protobuf"
	mediaJSON     = "application/json"
)

// errStorage marks a failure of the TSDB itself (a WAL write failed at
// commit): nothing of the request was kept and the sender should retry.
var errStorage = errors.New("storage failure")

// errBodyTooLarge is returned by readBody when the (decompressed) body is
// over collector.max_request_bytes.
var errBodyTooLarge = errors.New("request body too large")

// httpError is an ingest failure with the status the sender gets.
type httpError struct {
	code       int
	msg        string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

// readBody reads an ingest request body within the size limit, undoing gzip
// when decode is set (remote write's snappy is undone by its handler).
func readBody(r *http.Request, w http.ResponseWriter, limit int64, decode bool) ([]byte, *httpError) {
	body := http.MaxBytesReader(w, r.Body, limit)
	var rd io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); {
	case !decode || enc == "" || enc == "identity":
	case enc == "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(limit)
			}
			return nil, &httpError{code: http.StatusBadRequest, msg: "malformed gzip body: " + err.Error()}
		}
		defer func() { _ = gz.Close() }()
		// Bound the decompressed size too: a small gzip bomb must not
		// become gigabytes in memory.
		rd = io.LimitReader(gz, limit+1)
	default:
		return nil, &httpError{code: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Encoding %q: send gzip or no encoding", enc)}
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.Header().Set("Connection", "close")
			return nil, &httpError{code: http.StatusRequestTimeout, msg: "the body did not arrive within collector.ingest.body_timeout"}
		}
		return nil, &httpError{code: http.StatusBadRequest, msg: "reading body: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

func tooLarge(limit int64) *httpError {
	return &httpError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("%s: the limit is %d bytes after decompression (collector.max_request_bytes)", errBodyTooLarge, limit)}
}

// otlpMediaType returns the OTLP encoding of a request or a 415.
func otlpMediaType(r *http.Request) (string, *httpError) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == mediaProtobuf || mt == mediaJSON) {
		return mt, nil
	}
	return "", &httpError{code: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Type %q: OTLP/HTTP accepts %s or %s", ct, mediaProtobuf, mediaJSON)}
}

// ingest wraps an ingest endpoint with what every protocol shares: the
// in-flight bound (Retry-After with 429 for OTLP, 503 for remote write), the
// status counter and the latency histogram.
func (c *Collector) ingest(protocol string, h func(w http.ResponseWriter, r *http.Request) (int, *httpError)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The body must arrive within the body timeout, whether the request
		// is admitted or not (a rejected body is drained by the server, up
		// to its own limit), so that a trickling sender holds neither a slot
		// nor a connection for longer. Not every ResponseWriter (tests'
		// recorders) supports deadlines; the listener's then apply.
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(c.cfg.Ingest.BodyTimeout))
		code, herr := c.ingestOnce(w, r, protocol, h)
		if herr != nil {
			code = herr.code
			if herr.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(herr.retryAfter.Seconds())))
			}
			writeIngestError(w, r, herr)
			if code >= 500 {
				c.logger.Warn("ingest failed", "protocol", protocol, "code", code, "err", herr.msg)
			} else {
				c.logger.Debug("ingest rejected", "protocol", protocol, "code", code, "err", herr.msg)
			}
		}
		c.metrics.requests.WithLabelValues(protocol, strconv.Itoa(code)).Inc()
		c.metrics.ingestDuration.WithLabelValues(protocol).Observe(time.Since(start).Seconds())
	})
}

// pushBackCode is the status that makes a protocol's senders retry later.
// OTLP exporters retry 429. Prometheus's remote-write senders do not (unless
// retry_on_http_429 is set, and it is off by default): they drop the batch
// for good, so remote write is pushed back with 503, which they retry with
// backoff, honouring Retry-After.
func pushBackCode(protocol string) int {
	if protocol == protoRemoteWrite {
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}

func (c *Collector) ingestOnce(w http.ResponseWriter, r *http.Request, protocol string, h func(w http.ResponseWriter, r *http.Request) (int, *httpError)) (int, *httpError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, &httpError{code: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed: send POST"}
	}
	if c.cfg.RequireToken {
		p := c.auth.Authenticate(httpserver.BearerSecret(r))
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="burnrate"`)
			return 0, &httpError{code: http.StatusUnauthorized, msg: "missing or invalid bearer token: ingest needs a token with the ingest scope (collector.require_token)"}
		}
		if !p.Can(httpserver.ScopeIngest) {
			return 0, &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("token %q lacks the %q scope", p.Name, httpserver.ScopeIngest)}
		}
	}
	client := clientIP(r)
	if !c.clients.acquire(client) {
		return 0, &httpError{code: pushBackCode(protocol), retryAfter: time.Second,
			msg: fmt.Sprintf("too many concurrent ingest requests from %s (collector.ingest.max_inflight_per_client=%d); retry later", client, c.clients.max)}
	}
	defer c.clients.release(client)
	select {
	case c.inflight <- struct{}{}:
		defer func() { <-c.inflight }()
	default:
		return 0, &httpError{code: pushBackCode(protocol), retryAfter: time.Second,
			msg: fmt.Sprintf("too many concurrent ingest requests (collector.max_inflight_requests=%d); retry later", cap(c.inflight))}
	}
	if c.closing.Load() {
		return 0, &httpError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second, msg: "the collector is shutting down; retry later"}
	}
	return h(w, r)
}

// clientIP is the address a request came from, without its port: the key of
// the per-client bound. Forwarding headers are not trusted; behind a proxy
// every request is the proxy's.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientSlots counts the in-flight ingest requests of each client.
type clientSlots struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newClientSlots(max int) *clientSlots {
	return &clientSlots{max: max, n: map[string]int{}}
}

// acquire takes a slot of client, or reports that it holds all of its own.
func (s *clientSlots) acquire(client string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[client] >= s.max {
		return false
	}
	s.n[client]++
	return true
}

func (s *clientSlots) release(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[client]--; s.n[client] <= 0 {
		delete(s.n, client)
	}
}

// writeIngestError answers an OTLP request with a google.rpc.Status in the
// request's encoding, as the OTLP/HTTP specification asks, and anything else
// with plain text.
func writeIngestError(w http.ResponseWriter, r *http.Request, e *httpError) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		st := &spb.Status{Code: int32(grpcCode(e.code)), Message: e.msg}
		switch mt, _ := otlpMediaType(r); mt {
		case mediaProtobuf:
			if b, err := proto.Marshal(st); err == nil {
				w.Header().Set("Content-Type", mediaProtobuf)
				w.WriteHeader(e.code)
				_, _ = w.Write(b)
				return
			}
		case mediaJSON:
			if b, err := protojson.Marshal(st); err == nil {
				w.Header().Set("Content-Type", mediaJSON)
				w.WriteHeader(e.code)
				_, _ = w.Write(b)
				return
			}
		}
	}
	http.Error(w, e.msg, e.code)
}

func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return codes.Unimplemented
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

func writeOTLPResponse(w http.ResponseWriter, mt string, m interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}) (int, *httpError) {
	var (
		b   []byte
		err error
	)
	if mt == mediaJSON {
		b, err = m.MarshalJSON()
	} else {
		b, err = m.MarshalProto()
	}
	if err != nil {
		return 0, &httpError{code: http.StatusInternalServerError, msg: "encoding response: " + err.Error()}
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return http.StatusOK, nil
}

// otlpRequest is what pmetricotlp and ptraceotlp export requests share.
type otlpRequest interface {
	UnmarshalJSON([]byte) error
	UnmarshalProto([]byte) error
}

// unmarshalOTLP decodes body into req by its media type (JSON or protobuf).
func unmarshalOTLP(req otlpRequest, body []byte, mediaType, signal string) error {
	var err error
	if mediaType == mediaJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return fmt.Errorf("malformed OTLP %s request (%s): %w", signal, mediaType, err)
	}
	return nil
}

// readOTLP checks the media type and reads the (decompressed, bounded) body
// of an OTLP/HTTP request.
func (c *Collector) readOTLP(w http.ResponseWriter, r *http.Request) ([]byte, string, *httpError) {
	mt, herr := otlpMediaType(r)
	if herr != nil {
		return nil, "", herr
	}
	body, herr := readBody(r, w, c.cfg.MaxRequestBytes, true)
	return body, mt, herr
}

// DecodeOTLPMetrics decodes an OTLP/HTTP metrics request body.
func DecodeOTLPMetrics(body []byte, mediaType string) (pmetric.Metrics, error) {
	req := pmetricotlp.NewExportRequest()
	if err := unmarshalOTLP(req, body, mediaType, "metrics"); err != nil {
		return pmetric.Metrics{}, err
	}
	return req.Metrics(), nil
}

func (c *Collector) serveOTLPMetrics(w http.ResponseWriter, r *http.Request) (int, *httpError) {
	body, mt, herr := c.readOTLP(w, r)
	if herr != nil {
		return 0, herr
	}
	md, err := DecodeOTLPMetrics(body, mt)
	if err != nil {
		return 0, &httpError{code: http.StatusBadRequest, msg: err.Error()}
	}
	counts, err := c.AppendOTLPMetrics(r.Context(), md)
	if err != nil {
		return 0, &httpError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second, msg: err.Error()}
	}
	resp := pmetricotlp.NewExportResponse()
	if n := counts.rejectedTotal(); n > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(int64(n))
		resp.PartialSuccess().SetErrorMessage(counts.summary())
	}
	return writeOTLPResponse(w, mt, resp)
}

// AppendOTLPMetrics translates OTLP metrics to Prometheus series with
// Prometheus's own translator (naming, target_info, job/instance) and writes
// them through the limits. Rejected samples are counted, not fatal.
func (c *Collector) AppendOTLPMetrics(ctx context.Context, md pmetric.Metrics) (ingestCounts, error) {
	ctx, st := withRequestState(ctx, protoOTLP)
	var err error
	if c.d2c != nil && hasDelta(md) {
		if err = c.admitDelta(ctx, md); err == nil {
			err = c.d2c.ConsumeMetrics(ctx, md)
		}
	} else {
		err = c.convertOTLP(ctx, md)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		if errors.Is(err, errStorage) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return st.counts, err
		}
		// Translation errors (an invalid temporality, an empty metric) drop
		// single metrics; the rest went in. Report them as rejections;
		// append errors were counted by the appender.
		for _, e := range uncounted(err) {
			st.counts.reject(reasonInvalidSample, 1, e)
			c.metrics.samplesRejected.WithLabelValues(protoOTLP, reasonInvalidSample).Inc()
		}
	}
	return st.counts, nil
}

// translatorSettings configures Prometheus's OTLP translator as
// Prometheus's own OTLP receiver does by default.
func (c *Collector) translatorSettings() prw.Settings {
	otlpCfg := config.DefaultConfig.OTLPConfig
	otlpCfg.PromoteResourceAttributes = c.cfg.OTLP.PromoteResourceAttributes
	// otel_scope_name, otel_scope_version (and the scope's schema URL and
	// attributes) on every series, as the OpenTelemetry Prometheus exporter
	// writes them, so that dashboards built on either see the same series.
	otlpCfg.PromoteScopeMetadata = true
	return prw.Settings{
		AddMetricSuffixes:                    otlpCfg.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !otlpCfg.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            prw.NewPromoteResourceAttributes(otlpCfg),
		KeepIdentifyingResourceAttributes:    otlpCfg.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              otlpCfg.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 otlpCfg.PromoteScopeMetadata,
		LookbackDelta:                        c.cfg.Query.LookbackDelta,
		LabelNameUnderscoreSanitization:      otlpCfg.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: otlpCfg.LabelNamePreserveMultipleUnderscores,
	}
}

func (c *Collector) convertOTLP(ctx context.Context, md pmetric.Metrics) error {
	if counts := dropUntranslatable(md); counts.rejectedTotal() > 0 {
		st, p := c.guarded.state(ctx)
		c.guarded.flush(st, p, counts)
	}
	app := c.guarded.AppenderV2(ctx, targetInfoBudget(md))
	conv := prw.NewPrometheusConverter(app)
	_, err := conv.FromMetrics(ctx, md, c.translatorSettings())
	if cerr := app.Commit(); cerr != nil {
		return errors.Join(err, fmt.Errorf("%w: commit: %w", errStorage, cerr))
	}
	return err
}

// dropUntranslatable removes the metrics the OTLP translator would drop
// whole (a temporality other than cumulative, which is what is left after
// the delta-to-cumulative conversion), and counts their points, so that the
// sender learns how many points were lost rather than one per error.
func dropUntranslatable(md pmetric.Metrics) ingestCounts {
	var counts ingestCounts
	forEachMetrics(md, func(ms pmetric.MetricSlice) {
		ms.RemoveIf(func(m pmetric.Metric) bool {
			t, points := temporality(m)
			if t == pmetric.AggregationTemporalityCumulative || points < 0 {
				return false
			}
			counts.reject(reasonInvalidSample, points, fmt.Errorf("metric %q has %s temporality: only cumulative is accepted (delta too with collector.otlp.delta_to_cumulative)", m.Name(), t))
			return true
		})
	})
	return counts
}

// temporality returns a metric's aggregation temporality and its number of
// points; points is -1 for kinds without a temporality (gauges, summaries).
func temporality(m pmetric.Metric) (pmetric.AggregationTemporality, int) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return m.Sum().AggregationTemporality(), m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().AggregationTemporality(), m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().AggregationTemporality(), m.ExponentialHistogram().DataPoints().Len()
	}
	return pmetric.AggregationTemporalityUnspecified, -1
}

// uncounted returns the leaves of a (joined) translator error that the
// appender has not counted already.
func uncounted(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, uncounted(e)...)
		}
		return out
	}
	var ce countedError
	if err == nil || errors.As(err, &ce) {
		return nil
	}
	return []error{err}
}

func hasDelta(md pmetric.Metrics) bool {
	found := false
	forEachMetrics(md, func(ms pmetric.MetricSlice) {
		for k := range ms.Len() {
			if t, _ := temporality(ms.At(k)); t == pmetric.AggregationTemporalityDelta {
				found = true
			}
		}
	})
	return found
}

// forEachMetrics calls fn with the metrics of every scope of md.
func forEachMetrics(md pmetric.Metrics, fn func(pmetric.MetricSlice)) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			fn(sms.At(j).Metrics())
		}
	}
}

// DecodeOTLPTraces decodes an OTLP/HTTP traces request body.
func DecodeOTLPTraces(body []byte, mediaType string) (ptraceotlp.ExportRequest, error) {
	req := ptraceotlp.NewExportRequest()
	return req, unmarshalOTLP(req, body, mediaType, "traces")
}

func (c *Collector) serveOTLPTraces(w http.ResponseWriter, r *http.Request) (int, *httpError) {
	body, mt, herr := c.readOTLP(w, r)
	if herr != nil {
		return 0, herr
	}
	req, err := DecodeOTLPTraces(body, mt)
	if err != nil {
		return 0, &httpError{code: http.StatusBadRequest, msg: err.Error()}
	}
	td := req.Traces()
	n := td.SpanCount()
	if c.spans == nil {
		c.metrics.spansRefused.WithLabelValues("no_store").Add(float64(n))
		return 0, &httpError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second, msg: "no trace store is running"}
	}
	rejected, err := c.spans.Append(r.Context(), td)
	if err != nil {
		if c.isOverloaded(err) {
			c.metrics.spansRefused.WithLabelValues("overloaded").Add(float64(n))
			return 0, &httpError{code: http.StatusTooManyRequests, retryAfter: time.Second, msg: "trace store overloaded: " + err.Error()}
		}
		c.metrics.spansRefused.WithLabelValues("store_error").Add(float64(n))
		return 0, &httpError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second, msg: "trace store: " + err.Error()}
	}
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(fmt.Sprintf("%d of %d spans rejected by the trace store", rejected, n))
	}
	return writeOTLPResponse(w, mt, resp)
}
