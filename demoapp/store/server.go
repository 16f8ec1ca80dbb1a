package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// Server serves the shards of one store process over HTTP:
//
//	GET /shards/{n}/kv/{key}   200 value, 404, 503 when the shard is down
//	PUT /shards/{n}/kv/{key}   204
//	POST /shards/{n}/batch     204; body [{"k": key, "v": value}, ...], all or nothing
//	GET /healthz
type Server struct {
	shards []*Shard
	ring   *Ring
	faults *faults.Set
	tel    *telemetry.Providers

	ops      metric.Int64Counter
	duration metric.Float64Histogram
}

// Open opens n shards under dir (the demo's data directory).
func Open(dir string, n int, set *faults.Set, tel *telemetry.Providers) (*Server, error) {
	s := &Server{faults: set, tel: tel}
	for i := range n {
		sh, err := OpenShard(dir, i)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.shards = append(s.shards, sh)
	}
	s.ring = NewRing(n)
	meter := tel.Meter.Meter("github.com/burnrate/burnrate/demoapp/store")
	var err error
	if s.ops, err = meter.Int64Counter("demo.store.operations",
		metric.WithDescription("Shard operations by shard, operation and result (ok, not_found, down, error).")); err != nil {
		return nil, err
	}
	if s.duration, err = meter.Float64Histogram("demo.store.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a shard took to serve an operation, injected delays included."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge("demo.store.shard.up",
		metric.WithDescription("1 while a shard serves, 0 while it is down (store.shard_down)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			st := s.faults.State()
			for _, sh := range s.shards {
				v := int64(1)
				if st.ShardDown[sh.ID] {
					v = 0
				}
				o.Observe(v, metric.WithAttributes(attribute.Int("shard", sh.ID)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge("demo.store.shard.keys",
		metric.WithDescription("Keys held by a shard."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for _, sh := range s.shards {
				o.Observe(int64(sh.Len()), metric.WithAttributes(attribute.Int("shard", sh.ID)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	return s, nil
}

// Shards is the number of shards.
func (s *Server) Shards() int { return len(s.shards) }

// Seed writes key directly into the shard that owns it when the key is
// missing; the platform fills its catalogue this way on first start.
func (s *Server) Seed(ring *Ring, key string, value []byte) error {
	sh := s.shards[ring.Shard(key)]
	if _, err := sh.Get(key); err == nil {
		return nil
	}
	return sh.Put(key, value)
}

// Close closes every shard.
func (s *Server) Close() error {
	var errs []error
	for _, sh := range s.shards {
		errs = append(errs, sh.Close())
	}
	return errors.Join(errs...)
}

// Handler is the store's HTTP API, instrumented as service demo-store.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /shards/{n}/kv/{key}", s.serveGet)
	mux.HandleFunc("PUT /shards/{n}/kv/{key}", s.servePut)
	mux.HandleFunc("POST /shards/{n}/batch", s.serveBatch)
	return web.Server(web.Faulty(s.faults, faults.Store, mux), s.tel)
}

// shard resolves {n} and applies the shard's own faults (down, slow). It
// writes the answer and returns nil when the request must stop.
func (s *Server) shard(w http.ResponseWriter, r *http.Request, op string) *Shard {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(s.shards) {
		web.Error(w, http.StatusNotFound, fmt.Sprintf("no shard %q: this store has shards 0..%d", r.PathValue("n"), len(s.shards)-1))
		return nil
	}
	st := s.faults.State()
	if st.ShardDown[n] {
		s.record(r.Context(), n, op, "down", 0)
		w.Header().Set("Retry-After", "1")
		web.Error(w, http.StatusServiceUnavailable, fmt.Sprintf("shard %d is down", n))
		return nil
	}
	if d, slow := st.ShardSlow[n]; slow && !web.Sleep(r.Context(), d) {
		web.Error(w, http.StatusServiceUnavailable, "request cancelled")
		return nil
	}
	return s.shards[n]
}

func (s *Server) record(ctx context.Context, shard int, op, result string, d time.Duration) {
	attrs := metric.WithAttributes(attribute.Int("shard", shard), attribute.String("op", op), attribute.String("result", result))
	s.ops.Add(ctx, 1, attrs)
	if d > 0 {
		s.duration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.Int("shard", shard), attribute.String("op", op)))
	}
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sh := s.shard(w, r, "get")
	if sh == nil {
		return
	}
	v, err := sh.Get(r.PathValue("key"))
	if errors.Is(err, ErrNotFound) {
		s.record(r.Context(), sh.ID, "get", "not_found", time.Since(start))
		web.Error(w, http.StatusNotFound, "not found")
		return
	}
	s.record(r.Context(), sh.ID, "get", "ok", time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v)
}

func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sh := s.shard(w, r, "put")
	if sh == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		web.Error(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if err := sh.Put(r.PathValue("key"), body); err != nil {
		s.record(r.Context(), sh.ID, "put", "error", time.Since(start))
		web.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	s.record(r.Context(), sh.ID, "put", "ok", time.Since(start))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sh := s.shard(w, r, "batch")
	if sh == nil {
		return
	}
	var kvs []KV
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&kvs); err != nil {
		web.Error(w, http.StatusBadRequest, `body: want [{"k": key, "v": value}, ...]: `+err.Error())
		return
	}
	for _, kv := range kvs {
		if n := s.ring.Shard(kv.K); n != sh.ID {
			web.Error(w, http.StatusBadRequest, fmt.Sprintf("key %q lives on shard %d, not %d", kv.K, n, sh.ID))
			return
		}
	}
	if err := sh.PutBatch(kvs); err != nil {
		s.record(r.Context(), sh.ID, "batch", "error", time.Since(start))
		web.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	s.record(r.Context(), sh.ID, "batch", "ok", time.Since(start))
	w.WriteHeader(http.StatusNoContent)
}
