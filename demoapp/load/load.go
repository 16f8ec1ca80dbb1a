// Package load is the demo platform's load generator, `burnrate load`.
//
// It uses vegeta's library (github.com/tsenart/vegeta/v12) for the attack
// loop: vegeta is an open-model generator (arrivals are scheduled by a Pacer
// and do not wait for earlier responses, so a slow target gets more
// requests in flight instead of fewer arrivals, which avoids coordinated
// omission), it is well kept, and its Pacer interface is exactly where
// traffic shapes plug in. This package adds the shapes (constant, ramp, step,
// sine, spike) as closed-form pacers, Zipf-distributed keys, an endpoint mix,
// hard bounds on time and count, a progress bar and exact latency quantiles
// (every latency is kept and sorted, rather than vegeta's t-digest estimate,
// because the benchmark reads p99 against a threshold).
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/burnrate/burnrate/demoapp/edge"
)

// Shapes are the traffic shapes.
var Shapes = []string{"constant", "ramp", "step", "sine", "spike"}

// DefaultMix is the endpoint mix: mostly product reads, some cart reads and
// writes, few orders, like a shop.
const DefaultMix = "product:80,cart:10,add:8,order:2"

// MaxDuration and MaxRequests bound every run.
const (
	MaxDuration = 24 * time.Hour
	MaxRequests = 100_000_000
)

// ClientRate is the rate each simulated client sends at when the number of
// clients follows the rate: half the edge's default per-client limit
// (demo.rate_limit 50/s, burst 50), so that random arrivals stay inside
// every client's bucket.
const ClientRate = 25

// ClientsFor is the number of simulated clients a run of shape at rate gets
// by default: one per ClientRate of the shape's highest rate, at least 10.
// A spike is sized for its base rate: its burst is meant to go past the
// limit.
func ClientsFor(shape string, rate float64) int {
	peak := rate
	if shape == "sine" {
		peak = 1.5 * rate // the sine's amplitude is half its mean
	}
	return max(10, int(math.Ceil(peak/ClientRate)))
}

// Options configure a run.
type Options struct {
	// Target is the edge's base URL.
	Target string
	// Rate is the arrival rate in requests per second: the constant rate,
	// the ramp's and step's final rate, the sine's mean, the spike's base.
	Rate float64
	// Duration bounds the run in time.
	Duration time.Duration
	// MaxRequests bounds it in count; 0 means twice what the shape expects.
	MaxRequests uint64
	Shape       string
	// Period is the sine's period (default: Duration).
	Period time.Duration
	// Steps is the step shape's number of steps (default 5).
	Steps int
	// SpikeFactor, SpikeAt and SpikeLength shape the spike (default 5x, at a
	// third of the run, for a sixth of it).
	SpikeFactor float64
	SpikeAt     time.Duration
	SpikeLength time.Duration
	// Clients is the number of simulated clients (X-Client-ID), each rate
	// limited separately by the edge when ClientSecret signs them. 0 means
	// the number follows the rate (ClientsFor), so that no simulated client
	// goes past the edge's default limit.
	Clients int
	// Keys is the number of products; ZipfS the Zipf exponent (> 1) of their
	// popularity. Defaults 2000 and 1.1.
	Keys  int
	ZipfS float64
	// Mix weighs the endpoints: product, cart, add, order.
	Mix string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// MaxWorkers bounds concurrent requests (default 10000), so that a
	// target that stops answering cannot make the generator spawn without
	// limit.
	MaxWorkers uint64
	// Seed makes key and endpoint choices reproducible (0: random).
	Seed int64
	// OnResult, when set, is called with every answer as it arrives (from
	// one goroutine), for callers that slice a run by time (game days).
	OnResult func(Result)
	// ClientSecret, the edge's demo.client_id_secret, signs each simulated
	// client's X-Client-ID so that the edge limits them separately; without
	// it every request counts against this machine's address.
	ClientSecret string
	// Transport, when set, replaces the generator's own HTTP/1.1 transport
	// (wire.go), e.g. net/http's for a side-by-side measurement.
	Transport http.RoundTripper
}

func (o Options) withDefaults() Options {
	if o.Shape == "" {
		o.Shape = "constant"
	}
	if o.Period <= 0 {
		o.Period = o.Duration
	}
	if o.Steps <= 0 {
		o.Steps = 5
	}
	if o.SpikeFactor <= 0 {
		o.SpikeFactor = 5
	}
	if o.SpikeAt <= 0 {
		o.SpikeAt = o.Duration / 3
	}
	if o.SpikeLength <= 0 {
		o.SpikeLength = o.Duration / 6
	}
	if o.Clients <= 0 {
		o.Clients = ClientsFor(o.Shape, o.Rate)
	}
	if o.Keys <= 0 {
		o.Keys = 2000
	}
	if o.ZipfS <= 1 {
		o.ZipfS = 1.1
	}
	if o.Mix == "" {
		o.Mix = DefaultMix
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxWorkers == 0 {
		o.MaxWorkers = 10000
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = uint64(math.Min(MaxRequests, math.Ceil(2*o.curve().hits(o.Duration.Seconds()))+1))
	}
	return o
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.Rate <= 0 || o.Rate > 1e6:
		return errors.New("rate: must be above 0 and at most 1000000 per second")
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return fmt.Errorf("duration: must be above 0 and at most %s", MaxDuration)
	case o.MaxRequests > MaxRequests:
		return fmt.Errorf("max requests: at most %d", MaxRequests)
	}
	if o.Shape != "" && !contains(Shapes, o.Shape) {
		return fmt.Errorf("shape: %q is not one of %s", o.Shape, strings.Join(Shapes, ", "))
	}
	if o.Mix != "" {
		if _, err := parseMix(o.Mix); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o Options) curve() curve {
	r := o.Rate
	switch o.Shape {
	case "ramp":
		return ramp{r0: math.Min(1, r), r1: r, d: o.Duration.Seconds()}
	case "step":
		return step{r: r, n: o.Steps, each: o.Duration.Seconds() / float64(o.Steps)}
	case "sine":
		return sine{r: r, a: r / 2, p: o.Period.Seconds()}
	case "spike":
		return spike{r: r, factor: o.SpikeFactor, at: o.SpikeAt.Seconds(), length: o.SpikeLength.Seconds()}
	}
	return constant{r: r}
}

// Expected is the number of arrivals the shape schedules over the run.
func (o Options) Expected() float64 {
	o = o.withDefaults()
	return math.Min(float64(o.MaxRequests), o.curve().hits(o.Duration.Seconds()))
}

type endpoint struct {
	name   string
	weight int
}

func parseMix(s string) ([]endpoint, error) {
	var out []endpoint
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || !contains([]string{"product", "cart", "add", "order"}, name) {
			return nil, fmt.Errorf("mix: %q: want name:weight with names product, cart, add, order", part)
		}
		total += n
		out = append(out, endpoint{name, n})
	}
	if total == 0 {
		return nil, errors.New("mix: weights sum to 0")
	}
	return out, nil
}

// Result is one answer, for Options.OnResult.
type Result struct {
	// At is when the request was sent.
	At      time.Time
	Code    int
	Latency time.Duration
}

// LateThreshold is how far behind its schedule an arrival must be sent to
// count as late.
const LateThreshold = 10 * time.Millisecond

// Report is a run's result. Its JSON form is what --report writes.
type Report struct {
	Requests    uint64         `json:"requests"`
	AchievedRPS float64        `json:"achieved_rps"`
	Latency     Latency        `json:"latency_ms"`
	Status      map[string]int `json:"status"`
	// LatencyByClass splits the latency by status class: 2xx, 3xx, 4xx,
	// 5xx and "no answer". Fast 429s and 503s mixed into one p99 hide how
	// slow the successful answers were.
	LatencyByClass map[string]Latency `json:"latency_ms_by_class"`
	// Late counts arrivals sent more than LateThreshold after they were
	// due, because every worker was busy (MaxWorkers): the generator
	// stopped being an open model there, and latency measured from the
	// send time understates what users would see (coordinated omission).
	// MaxLateMS is the worst delay.
	Late      uint64  `json:"late_arrivals"`
	MaxLateMS float64 `json:"max_late_ms"`
	// RateLimited counts 429 answers; Warnings says when they (or late
	// arrivals) mean the run did not measure what was asked.
	RateLimited int      `json:"rate_limited"`
	Warnings    []string `json:"warnings"`

	Duration time.Duration `json:"-"`
	Errors   []string      `json:"-"`
}

// Latency holds quantiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// JSON is the report as --report writes it.
func (r Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Text is the report for a terminal.
func (r Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests      %d in %s\n", r.Requests, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "achieved rate %.1f/s\n", r.AchievedRPS)
	fmt.Fprintf(&b, "latency ms    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	for _, c := range classes {
		if l, ok := r.LatencyByClass[c]; ok {
			fmt.Fprintf(&b, "  %-11s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", c, l.P50, l.P90, l.P99, l.Max)
		}
	}
	fmt.Fprintf(&b, "late arrivals %d (max %.1f ms behind schedule)\n", r.Late, r.MaxLateMS)
	codes := make([]string, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	b.WriteString("status        ")
	for i, c := range codes {
		if i > 0 {
			b.WriteString("  ")
		}
		label := c
		if c == "0" {
			label = "no answer"
		}
		fmt.Fprintf(&b, "%s: %d", label, r.Status[c])
	}
	b.WriteString("\n")
	for i, e := range r.Errors {
		if i == 5 {
			fmt.Fprintf(&b, "  ... %d more distinct errors\n", len(r.Errors)-5)
			break
		}
		fmt.Fprintf(&b, "error         %s\n", e)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "WARNING       %s\n", w)
	}
	return b.String()
}

// classes are the status classes of LatencyByClass, in display order.
var classes = []string{"2xx", "3xx", "4xx", "5xx", "no answer"}

func class(code uint16) string {
	if code == 0 || code > 599 {
		return "no answer"
	}
	return strconv.Itoa(int(code/100)) + "xx"
}

// due is when arrival seq (0-based) was scheduled, from the run's start.
func (o Options) due(seq uint64) time.Duration {
	c, want := o.curve(), float64(seq+1)
	lo, hi := 0.0, o.Duration.Seconds()
	for range 60 {
		mid := (lo + hi) / 2
		if c.hits(mid) >= want {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Duration(hi * float64(time.Second))
}

// warnings explains why a run may not have measured what was asked.
func (r *Report) warnings(o Options) {
	if r.Requests == 0 {
		return
	}
	if f := float64(r.RateLimited) / float64(r.Requests); f > 0.01 {
		w := fmt.Sprintf("the edge's rate limit capped the load: %d of %d requests (%.0f%%) were answered 429, so the target saw about %.1f/s of the %.1f/s asked",
			r.RateLimited, r.Requests, 100*f, r.AchievedRPS*(1-f), o.Rate)
		if o.ClientSecret == "" {
			w += "; all load counts as one client (this address): pass the data directory of the running platform (--data-dir) or --client-secret to sign the simulated clients, or raise demo.rate_limit"
		} else {
			w += "; raise demo.rate_limit or --clients"
		}
		r.Warnings = append(r.Warnings, w)
	}
	if f := float64(r.Late) / float64(r.Requests); f > 0.01 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the generator saturated: %d arrivals (%.0f%%) were sent up to %.0f ms late because all %d workers were busy; latencies understate what users would see (coordinated omission)",
			r.Late, 100*f, r.MaxLateMS, o.MaxWorkers))
	}
}

// Run sends load until the shape's duration or count is reached or ctx
// ends, and reports. progress, when not nil, gets a progress bar.
func Run(ctx context.Context, o Options, progress io.Writer) (Report, error) {
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	o = o.withDefaults()
	if o.Target == "" {
		return Report{}, errors.New("target: must not be empty")
	}
	tr, err := newTargeter(o)
	if err != nil {
		return Report{}, err
	}
	rt, timeout := o.Transport, o.Timeout
	if rt == nil && strings.HasPrefix(o.Target, "http://") && !viaProxy(o.Target) {
		// The generator's own transport bounds each call itself.
		w := newWire(10000, o.Timeout)
		defer w.CloseIdleConnections()
		rt, timeout = w, 0
	} else if rt == nil {
		rt = &http.Transport{MaxIdleConnsPerHost: 10000, Proxy: http.ProxyFromEnvironment}
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: rt}),
		vegeta.Timeout(timeout),
		vegeta.Workers(min(64, o.MaxWorkers)),
		vegeta.MaxWorkers(o.MaxWorkers),
		vegeta.MaxBody(0),
		vegeta.Redirects(vegeta.NoFollow),
	)
	var bar *progressbar.ProgressBar
	if progress != nil {
		bar = progressbar.NewOptions64(int64(o.Expected()),
			progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription(fmt.Sprintf("%s %.0f/s", o.Shape, o.Rate)),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("req"),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	start := time.Now()
	res := atk.Attack(tr, pacer{c: o.curve(), max: o.MaxRequests}, o.Duration, "burnrate")
	rep := Report{Status: map[string]int{}, LatencyByClass: map[string]Latency{}, Warnings: []string{}}
	lat := make([]time.Duration, 0, int(min(o.Expected()*1.1, 1e7)))
	byClass := map[string][]time.Duration{}
	errs := map[string]bool{}
	var maxLate time.Duration
	for r := range res {
		rep.Requests++
		lat = append(lat, r.Latency)
		c := class(r.Code)
		byClass[c] = append(byClass[c], r.Latency)
		rep.Status[strconv.Itoa(int(r.Code))]++
		if r.Code == http.StatusTooManyRequests {
			rep.RateLimited++
		}
		if o.OnResult != nil {
			o.OnResult(Result{At: r.Timestamp, Code: int(r.Code), Latency: r.Latency})
		}
		if late := r.Timestamp.Sub(start) - o.due(r.Seq); late > LateThreshold {
			rep.Late++
			maxLate = max(maxLate, late)
		}
		if r.Code == 0 && r.Error != "" && len(errs) < 100 {
			errs[r.Error] = true
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	rep.Duration = time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	for e := range errs {
		rep.Errors = append(rep.Errors, e)
	}
	sort.Strings(rep.Errors)
	if rep.Duration > 0 {
		rep.AchievedRPS = math.Round(float64(rep.Requests)/rep.Duration.Seconds()*10) / 10
	}
	rep.Latency = quantiles(lat)
	for c, l := range byClass {
		rep.LatencyByClass[c] = quantiles(l)
	}
	rep.MaxLateMS = ms(maxLate)
	rep.warnings(o)
	return rep, nil
}

// viaProxy reports whether the environment (HTTP_PROXY, NO_PROXY) sends
// requests to target through a proxy, which only net/http's transport does.
func viaProxy(target string) bool {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false
	}
	u, err := http.ProxyFromEnvironment(req)
	return err == nil && u != nil
}

func quantiles(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		i = max(0, min(i, len(lat)-1))
		return ms(lat[i])
	}
	return Latency{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(lat[len(lat)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// targeter picks, per arrival, an endpoint by the mix, a product by Zipf
// popularity and a client.
func newTargeter(o Options) (vegeta.Targeter, error) {
	mix, err := parseMix(o.Mix)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, e := range mix {
		total += e.weight
	}
	seed := o.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewSource(seed))
	zipf := rand.NewZipf(rng, o.ZipfS, 1, uint64(o.Keys-1))
	base := strings.TrimSuffix(o.Target, "/")
	clientIDs := make([]string, o.Clients)
	for i := range clientIDs {
		clientIDs[i] = "client-" + strconv.Itoa(i)
		if o.ClientSecret != "" {
			clientIDs[i] = edge.SignClientID(o.ClientSecret, clientIDs[i])
		}
	}
	var mu sync.Mutex
	return func(t *vegeta.Target) error {
		mu.Lock()
		n := rng.Intn(total)
		key := zipf.Uint64()
		client := rng.Intn(o.Clients)
		user := rng.Intn(o.Clients * 20)
		qty := 1 + rng.Intn(3)
		mu.Unlock()
		var name string
		for _, e := range mix {
			if n < e.weight {
				name = e.name
				break
			}
			n -= e.weight
		}
		t.Header = http.Header{}
		t.Header.Set(edge.ClientIDHeader, clientIDs[client])
		t.Body = nil
		switch name {
		case "product":
			t.Method, t.URL = http.MethodGet, base+"/api/products/"+strconv.FormatUint(key, 10)
		case "cart":
			t.Method, t.URL = http.MethodGet, base+"/api/carts/user-"+strconv.Itoa(user)
		case "add":
			t.Method, t.URL = http.MethodPut, base+"/api/carts/user-"+strconv.Itoa(user)+"/items/"+strconv.FormatUint(key, 10)
			t.Body = []byte(`{"qty":` + strconv.Itoa(qty) + `}`)
			t.Header.Set("Content-Type", "application/json")
		case "order":
			t.Method, t.URL = http.MethodPost, base+"/api/orders"
			t.Body = []byte(`{"user":"user-` + strconv.Itoa(user) + `"}`)
			t.Header.Set("Content-Type", "application/json")
		}
		return nil
	}, nil
}
