package tracestore

import (
	"encoding/hex"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/burnrate/burnrate/internal/testutil"
)

// t0 is the fixed start of every test trace.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// span describes one test span.
type span struct {
	service string
	name    string
	trace   string // hex, 32 digits
	id      string // hex, 16 digits
	parent  string // hex, empty for a root
	start   time.Duration
	dur     time.Duration
	status  ptrace.StatusCode
}

func traceID(s string) pcommon.TraceID {
	var id pcommon.TraceID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		panic("bad test trace ID " + s)
	}
	copy(id[:], b)
	return id
}

func spanID(s string) pcommon.SpanID {
	var id pcommon.SpanID
	if s == "" {
		return id
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		panic("bad test span ID " + s)
	}
	copy(id[:], b)
	return id
}

// batch builds one OTLP batch, one ResourceSpans per service in order of
// first appearance, as an SDK exporter of each service would send.
func batch(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		ss, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			rs.Resource().Attributes().PutStr("host.name", "test-host")
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("burnrate/test")
			ss = sc.Spans()
			bySvc[s.service] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetName(s.name)
		sp.SetTraceID(traceID(s.trace))
		sp.SetSpanID(spanID(s.id))
		sp.SetParentSpanID(spanID(s.parent))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.start + s.dur)))
		sp.Status().SetCode(s.status)
		sp.Attributes().PutStr("http.route", "/items/{id}")
		sp.Attributes().PutInt("http.response.status_code", 200)
	}
	return td
}

// spanNames lists "service/name" of every span in td, sorted.
func spanNames(td ptrace.Traces) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc, _ := rss.At(i).Resource().Attributes().Get("service.name")
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				out = append(out, svc.Str()+"/"+spans.At(k).Name())
			}
		}
	}
	sort.Strings(out)
	return out
}

// clock is a settable Now for retention tests.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

type testStore struct {
	*Store
	reg *prometheus.Registry
}

func openTest(t testing.TB, dir string, cfg Config, opts Options) *testStore {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Dir, opts.Config, opts.Logger, opts.Registerer = dir, cfg, testutil.Logger(t), reg
	s, err := Open(opts)
	require.NoError(t, err)
	return &testStore{Store: s, reg: reg}
}

func counter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return promtest.ToFloat64(c)
}
