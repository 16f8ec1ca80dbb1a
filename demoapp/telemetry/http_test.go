package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// instrumentation is one way of instrumenting the demo's HTTP hops: the
// server wrapper of a public endpoint (the edge) and of an inner tier
// (web.Server), and the client transport.
type instrumentation struct {
	name   string
	edge   func(*telemetry.Providers, http.Handler) http.Handler
	tier   func(*telemetry.Providers, http.Handler) http.Handler
	client func(*telemetry.Providers, http.RoundTripper) http.RoundTripper
}

func edgeSpanName(method, pattern string) string {
	if pattern != "" && pattern != "/" {
		return "edge " + pattern
	}
	return "edge " + method
}

// withOtelhttp is the instrumentation the demo had: otelhttp v0.72 with the
// options the edge and web.Server gave it.
var withOtelhttp = instrumentation{
	name: "otelhttp",
	edge: func(p *telemetry.Providers, h http.Handler) http.Handler {
		return otelhttp.NewHandler(h, "demo-edge",
			otelhttp.WithTracerProvider(p.Tracer), otelhttp.WithMeterProvider(p.Meter), otelhttp.WithPropagators(p.Propagator),
			otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return edgeSpanName(r.Method, r.Pattern) }))
	},
	tier: func(p *telemetry.Providers, h http.Handler) http.Handler {
		// The deadline outside the instrumentation, as web.Server has it
		// (inside, the route never reached the span or the metrics).
		return resilience.WithDeadline(otelhttp.NewHandler(h, "demo-tier",
			otelhttp.WithTracerProvider(p.Tracer), otelhttp.WithMeterProvider(p.Meter), otelhttp.WithPropagators(p.Propagator),
			otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != web.HealthPath }),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if r.Pattern != "" {
					return r.Pattern
				}
				return r.Method
			})))
	},
	client: func(p *telemetry.Providers, base http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(p.Tracer), otelhttp.WithMeterProvider(p.Meter), otelhttp.WithPropagators(p.Propagator))
	},
}

// withBurnrate is the demo's own: the edge's options, web.Server, and
// Providers.ClientTransport.
var withBurnrate = instrumentation{
	name: "burnrate",
	edge: func(p *telemetry.Providers, h http.Handler) http.Handler {
		return p.Handler(h, telemetry.HandlerOptions{PublicEndpoint: true, SpanName: edgeSpanName})
	},
	tier: func(p *telemetry.Providers, h http.Handler) http.Handler { return web.Server(h, p) },
	client: func(p *telemetry.Providers, base http.RoundTripper) http.RoundTripper {
		return p.ClientTransport(base)
	},
}

// hops is a small platform instrumented one way: an edge-like front that
// forwards to a tier over HTTP, both on 127.0.0.1, with the providers'
// telemetry read back in memory.
type hops struct {
	tel    *telemetry.Providers
	reader *sdkmetric.ManualReader
	spans  *tracetest.InMemoryExporter
	front  *httptest.Server
	// ports names the servers' ports, which differ between two
	// platforms, by role.
	ports map[string]string
}

func newHops(t testing.TB, in instrumentation, ratio float64) *hops {
	t.Helper()
	h := &hops{reader: sdkmetric.NewManualReader(), spans: tracetest.NewInMemoryExporter(), ports: map[string]string{}}
	var err error
	h.tel, err = telemetry.New(context.Background(), "demo-test", in.name, telemetry.Options{
		Enabled: true, SampleRatio: ratio, SpanExporter: h.spans, MetricReader: h.reader,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.tel.Shutdown(context.Background()) })

	tierMux := http.NewServeMux()
	tierMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	tierMux.HandleFunc("GET /api/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "err":
			web.Error(w, http.StatusInternalServerError, "injected")
		case "missing":
			web.Error(w, http.StatusNotFound, "no such product")
		default:
			web.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
		}
	})
	tierMux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		web.JSON(w, http.StatusCreated, map[string]string{"order": "1"})
	})
	tier := httptest.NewServer(in.tier(h.tel, tierMux))
	t.Cleanup(tier.Close)

	down, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	downAddr := down.Addr().String()
	require.NoError(t, down.Close()) // nothing listens there: calls to it fail

	client := &http.Client{Transport: in.client(h.tel, &http.Transport{DisableCompression: true})}
	forward := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := tier.URL + r.URL.Path
		if r.URL.Path == "/down" {
			target = "http://" + downAddr + "/down"
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target, r.Body)
		require.NoError(t, err)
		if r.URL.Query().Has("deadline") {
			// As the edge does on every call: the tier serves the request
			// under the deadline, and its telemetry still names the route.
			resilience.SetTimeoutHeader(out.Header, 2e9)
		}
		resp, err := client.Do(out)
		if err != nil {
			web.Error(w, http.StatusBadGateway, err.Error())
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	frontMux := http.NewServeMux()
	frontMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	frontMux.Handle("GET /api/products/{id}", forward)
	frontMux.Handle("POST /api/orders", forward)
	frontMux.Handle("/", forward)
	h.front = httptest.NewServer(in.edge(h.tel, frontMux))
	t.Cleanup(h.front.Close)

	for role, addr := range map[string]string{"front": h.front.Listener.Addr().String(), "tier": tier.Listener.Addr().String(), "down": downAddr} {
		_, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		h.ports[port] = "<" + role + ">"
	}
	// The tier's health check, as the edge polls it: neither traced nor
	// measured.
	resp, err := http.Get(tier.URL + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return h
}

// do sends one request to the front, uninstrumented, and reads the answer.
func (h *hops) do(t testing.TB, method, path string, header ...string) int {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"items":[1,2]}`)
	}
	req, err := http.NewRequest(method, h.front.URL+path, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// traffic is what both platforms serve: successes, the tier's 4xx and
// 5xx, a failed call, an unknown route, a method that is not standard, a
// public traceparent, the tier's deadline header, and the front's health
// check.
func traffic(t testing.TB, h *hops) []int {
	var got []int
	for _, r := range []struct {
		method, path string
		header       []string
	}{
		{http.MethodGet, "/api/products/1", nil},
		{http.MethodGet, "/api/products/2?deadline", nil},
		{http.MethodGet, "/api/products/err", nil},
		{http.MethodGet, "/api/products/missing", nil},
		{http.MethodPost, "/api/orders", nil},
		{http.MethodGet, "/nowhere", nil},
		{http.MethodGet, "/down", nil},
		{http.MethodGet, "/healthz", nil},
		{"PURGE", "/api/products/1", nil},
		{"get", "/api/products/3", nil},
		{http.MethodGet, "/api/products/4", []string{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
	} {
		got = append(got, h.do(t, r.method, r.path, r.header...))
	}
	return got
}

// normal replaces the servers' ports in s by their roles.
func (h *hops) normal(s string) string {
	for port, role := range h.ports {
		s = strings.ReplaceAll(s, port, role)
	}
	return s
}

func (h *hops) attrs(set attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range set.ToSlice() {
		m[string(kv.Key)] = h.normal(kv.Value.Type().String() + ":" + kv.Value.Emit())
	}
	return m
}

// stream is what a metric stream looks like from the collector: name,
// description, unit, kind, bounds, and each point's attributes and count.
type stream struct {
	Name, Description, Unit, Kind string
	Bounds                        []float64
	Points                        []string
}

func (h *hops) streams(t testing.TB) (scopes []string, out []stream) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		scopes = append(scopes, sm.Scope.Name)
		for _, m := range sm.Metrics {
			s := stream{Name: m.Name, Description: m.Description, Unit: m.Unit, Kind: fmt.Sprintf("%T", m.Data)}
			hist, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, "%s is a float histogram", m.Name)
			s.Kind += " " + hist.Temporality.String()
			for _, dp := range hist.DataPoints {
				s.Bounds = dp.Bounds
				b, err := json.Marshal(h.attrs(dp.Attributes))
				require.NoError(t, err)
				s.Points = append(s.Points, string(b)+" count="+strconv.FormatUint(dp.Count, 10))
			}
			sort.Strings(s.Points)
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return scopes, out
}

// span is what matters of a span: name, kind, status, its parent (by name,
// "remote" or none), its links, and its attributes.
type span struct {
	Name, Kind, Status, Parent string
	Links                      []string
	Attrs                      map[string]string
}

// dropped are the span attributes the demo's instrumentation does not set
// (docs/traces.md): nothing reads them, and they cost per request.
var dropped = []string{"user_agent.original", "network.peer.address", "network.peer.port", "http.request.body.size", "http.response.body.size"}

func (h *hops) spanList(t testing.TB) []span {
	t.Helper()
	require.NoError(t, h.tel.ForceFlush(context.Background()))
	stubs := h.spans.GetSpans()
	names := map[string]string{}
	for _, s := range stubs {
		names[s.SpanContext.SpanID().String()] = s.Name
	}
	var out []span
	for _, s := range stubs {
		sp := span{Name: s.Name, Kind: s.SpanKind.String(), Status: s.Status.Code.String() + " " + h.normal(s.Status.Description), Attrs: map[string]string{}}
		if s.Parent.IsValid() {
			// Every parent here is a span of the same platform, local or
			// across a hop (remote).
			sp.Parent = names[s.Parent.SpanID().String()]
			require.NotEmpty(t, sp.Parent, "span %s: its parent is exported", s.Name)
			require.Equal(t, s.Parent.TraceID(), s.SpanContext.TraceID(), "span %s: in its parent's trace", s.Name)
			if s.Parent.IsRemote() {
				sp.Parent += " (remote)"
			}
		}
		for _, l := range s.Links {
			sp.Links = append(sp.Links, l.SpanContext.TraceID().String())
		}
		for _, kv := range s.Attributes {
			sp.Attrs[string(kv.Key)] = h.normal(kv.Value.Type().String() + ":" + kv.Value.Emit())
		}
		for _, k := range dropped {
			delete(sp.Attrs, k)
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := json.Marshal(out[i])
		b, _ := json.Marshal(out[j])
		return string(a) < string(b)
	})
	return out
}

// The demo's own HTTP instrumentation replaced otelhttp to cost less; the
// collector, the SLOs, the dashboards and the trace store must not see the
// difference. Both serve the same requests, and every metric stream (name,
// unit, description, bounds, attribute set, count) and span (name, kind,
// status, parent, links, attributes) must be the same, but for the scope's
// name and for http.route, which the demo's server spans carry as well.
func TestTheDemosHTTPInstrumentationEmitsWhatOtelhttpDid(t *testing.T) {
	want := newHops(t, withOtelhttp, 1)
	got := newHops(t, withBurnrate, 1)
	wantCodes := traffic(t, want)
	require.Equal(t, wantCodes, traffic(t, got), "the same answers")
	require.Contains(t, wantCodes, http.StatusInternalServerError)
	require.Contains(t, wantCodes, http.StatusBadGateway)

	wantScopes, wantStreams := want.streams(t)
	gotScopes, gotStreams := got.streams(t)
	require.Equal(t, []string{otelhttp.ScopeName}, wantScopes)
	require.Equal(t, []string{"github.com/burnrate/burnrate/demoapp/telemetry"}, gotScopes)
	require.Len(t, wantStreams, 2, "server and client durations; body sizes are dropped")
	require.Equal(t, wantStreams, gotStreams)

	wantSpans := want.spanList(t)
	gotSpans := got.spanList(t)
	for i := range gotSpans {
		s := &gotSpans[i]
		if route, ok := s.Attrs["http.route"]; ok {
			require.Equal(t, "SERVER", strings.ToUpper(s.Kind), "%s: http.route is on server spans", s.Name)
			route = strings.TrimPrefix(route, "STRING:")
			require.True(t, route == "/" || strings.HasSuffix(s.Name, route), "%s: the route it is named after, not %s", s.Name, route)
			delete(s.Attrs, "http.route")
		}
	}
	// Per request the front's span, a client span (not for the front's
	// health check) and the tier's span (not for a call that failed).
	require.Len(t, wantSpans, 30)
	require.Equal(t, wantSpans, gotSpans)
}

// Outside the sampled share only failed and slow spans are exported, and an
// exemplar must name one of them: the duration is recorded after the span's
// status is set, on the server and on the client, so a failed request's
// exemplar points at its kept span on either side of the hop.
func TestHTTPExemplarsNameExportedSpansOnBothSidesOfAHop(t *testing.T) {
	h := newHops(t, withBurnrate, 0)
	traffic(t, h)
	require.NoError(t, h.tel.ForceFlush(context.Background()))
	exported := map[string]bool{}
	for _, s := range h.spans.GetSpans() {
		exported[s.SpanContext.TraceID().String()+"/"+s.SpanContext.SpanID().String()] = true
	}
	require.NotEmpty(t, exported, "the failed requests' spans")

	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	failedWithExemplar := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				status, _ := dp.Attributes.Value("http.response.status_code")
				for _, ex := range dp.Exemplars {
					id := hexID(ex.TraceID) + "/" + hexID(ex.SpanID)
					require.True(t, exported[id], "%s %v: exemplar %s names an exported span", m.Name, h.attrs(dp.Attributes), id)
					if status.AsInt64() >= 500 || status.AsInt64() == 0 {
						failedWithExemplar[m.Name] = true
					}
				}
			}
		}
	}
	require.Equal(t, map[string]bool{"http.server.request.duration": true, "http.client.request.duration": true}, failedWithExemplar,
		"a failed answer's measurement carries an exemplar on both sides")
}

func hexID(b []byte) string { return fmt.Sprintf("%x", b) }
