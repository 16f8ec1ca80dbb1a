package tracestore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/burnrate/burnrate/internal/retry"
)

// forwarder sends accepted batches on to another OTLP/HTTP receiver. Its
// queue is bounded in spans and in bytes and lives in memory: ingest never
// waits for it, and what does not fit is dropped and counted. On a clean
// stop it drains for up to Options.ForwardDrainTimeout.
type forwarder struct {
	url      string
	headers  map[string]string
	client   *http.Client
	opts     Options
	logger   *slog.Logger
	m        *metrics
	capacity int
	maxBytes int64

	// queue holds marshalled batches. Its capacity (in batches) is the
	// span capacity, so a send never blocks once nSpans has room.
	queue  chan fwdBatch
	mu     sync.Mutex
	nSpans int
	nBytes int64
	closed bool
}

type fwdBatch struct {
	body  []byte
	spans int
}

func newForwarder(cfg ForwardConfig, opts Options, logger *slog.Logger) (*forwarder, error) {
	u, err := cfg.url()
	if err != nil {
		return nil, fmt.Errorf("forward.endpoint: %w", err)
	}
	return &forwarder{
		url:      u,
		headers:  cfg.Headers,
		client:   &http.Client{Timeout: cfg.Timeout},
		opts:     opts,
		logger:   logger.With("forward", "otlp"),
		capacity: cfg.QueueSize,
		maxBytes: cmp.Or(cfg.QueueBytes, defaultQueueBytes),
		queue:    make(chan fwdBatch, cfg.QueueSize),
	}, nil
}

// enqueue queues a copy of the batch, or drops it (counted by reason) when
// the queue is full in spans or in bytes.
func (f *forwarder) enqueue(td ptrace.Traces) {
	n := td.SpanCount()
	f.mu.Lock()
	reason := ""
	switch {
	case f.closed:
		reason = "shutdown"
	case f.nSpans+n > f.capacity:
		reason = "queue_full"
	default:
		f.nSpans += n // reserved before the unlocked marshal
	}
	f.mu.Unlock()
	if reason != "" {
		f.m.fwdDropped.WithLabelValues(reason).Add(float64(n))
		return
	}
	var m ptrace.ProtoMarshaler
	body, _ := m.MarshalTraces(td) // TracesData and ExportTraceServiceRequest share their encoding
	f.mu.Lock()
	fits := f.nBytes+int64(len(body)) <= f.maxBytes
	if fits {
		f.nBytes += int64(len(body))
	}
	f.mu.Unlock()
	if !fits {
		f.done(n, 0)
		f.m.fwdDropped.WithLabelValues("queue_bytes").Add(float64(n))
		return
	}
	select {
	case f.queue <- fwdBatch{body: body, spans: n}:
	default: // cannot happen while nSpans <= capacity; never block ingest anyway
		f.done(n, len(body))
		f.m.fwdDropped.WithLabelValues("queue_full").Add(float64(n))
	}
}

func (f *forwarder) queued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nSpans
}

func (f *forwarder) queuedBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nBytes
}

func (f *forwarder) done(spans, bytes int) {
	f.mu.Lock()
	f.nSpans -= spans
	f.nBytes -= int64(bytes)
	f.mu.Unlock()
}

// close drops what is still queued.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	for {
		select {
		case b := <-f.queue:
			f.done(b.spans, len(b.body))
			f.m.fwdDropped.WithLabelValues("shutdown").Add(float64(b.spans))
		default:
			return
		}
	}
}

// run sends batches with opts.ForwardWorkers requests in flight until ctx is
// done, then drains the queue for up to opts.ForwardDrainTimeout: requests
// in flight finish and what is queued is sent. What is left is dropped (as
// shutdown) by close.
func (f *forwarder) run(ctx context.Context) {
	sendCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drained := make(chan struct{})
	go func() {
		<-ctx.Done()
		t := time.NewTimer(f.opts.ForwardDrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-drained:
		}
	}()
	var wg sync.WaitGroup
	for range f.opts.ForwardWorkers {
		wg.Go(func() {
			for {
				select {
				case b := <-f.queue:
					f.send(sendCtx, b.body, b.spans)
					f.done(b.spans, len(b.body))
					continue
				case <-ctx.Done():
				}
				// Stopping: send what is queued until it is empty or the
				// drain budget is spent.
				for sendCtx.Err() == nil {
					select {
					case b := <-f.queue:
						f.send(sendCtx, b.body, b.spans)
						f.done(b.spans, len(b.body))
					default:
						return
					}
				}
				return
			}
		})
	}
	wg.Wait()
	close(drained)
}

// send posts one batch, retrying 429, 502, 503, 504 and network errors with
// exponential backoff (honouring Retry-After) for up to ForwardMaxElapsed.
func (f *forwarder) send(ctx context.Context, body []byte, spans int) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		retryAfter, err := f.post(ctx, body, spans)
		if err == nil {
			return
		}
		if retryAfter < 0 { // not retryable
			f.m.fwdDropped.WithLabelValues("rejected").Add(float64(spans))
			f.logger.Warn("trace forward rejected, spans dropped", "spans", spans, "err", err)
			return
		}
		wait := max(retry.Backoff(attempt+1, f.opts.ForwardBackoff, f.opts.ForwardMaxBackoff), retryAfter)
		if time.Since(start)+wait > f.opts.ForwardMaxElapsed {
			f.m.fwdDropped.WithLabelValues("retries_exhausted").Add(float64(spans))
			f.logger.Warn("trace forward failed, giving up", "spans", spans, "attempts", attempt+1, "err", err)
			return
		}
		f.logger.Debug("trace forward failed, retrying", "in", wait, "err", err)
		f.m.fwdRetries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.m.fwdDropped.WithLabelValues("shutdown").Add(float64(spans))
			return
		case <-t.C:
		}
	}
}

// post makes one request. On failure, retryAfter is negative when retrying
// cannot help, else the minimum wait the server asked for (0 if none).
func (f *forwarder) post(ctx context.Context, body []byte, spans int) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range f.headers {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		rejected := partialRejected(resp, respBody)
		f.m.fwdSent.Add(float64(spans - rejected))
		if rejected > 0 {
			f.m.fwdDropped.WithLabelValues("rejected").Add(float64(rejected))
		}
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return parseRetryAfter(resp.Header.Get("Retry-After"), f.opts.ForwardMaxBackoff),
			fmt.Errorf("%s answered %s", f.url, resp.Status)
	default:
		return -1, fmt.Errorf("%s answered %s: %.200s", f.url, resp.Status, respBody)
	}
}

// partialRejected reads the rejected span count of an OTLP partial success.
func partialRejected(resp *http.Response, body []byte) int {
	if len(body) == 0 || resp.Header.Get("Content-Type") != "application/x-protobuf" {
		return 0
	}
	er := ptraceotlp.NewExportResponse()
	if err := er.UnmarshalProto(body); err != nil {
		return 0
	}
	return int(er.PartialSuccess().RejectedSpans())
}

// parseRetryAfter reads delay-seconds (the form OTLP receivers send),
// capped so that a hostile value cannot park a worker for hours.
func parseRetryAfter(v string, limit time.Duration) time.Duration {
	d, _ := retry.After(v, time.Now())
	return min(d, limit)
}
