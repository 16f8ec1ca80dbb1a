// Package gameday runs scripted incident drills against a running
// `burnrate up`: it sends load, injects faults on a timeline through the
// fault API, and measures how long each fault takes to show up as an SLO burn
// signal (and, with alerting, as a page) by polling Burnrate's
// Prometheus-compatible query API. The result is a Markdown report scored
// against the detection times the workbook expects.
//
// A scenario is a YAML file:
//
//	name: shard-outage
//	title: Shard outage
//	description: One of four store shards goes down.
//	duration: 6m                  # the whole drill, bounded
//	load: {shape: constant, rate: 40, clients: 10}
//	timeline:
//	  - at: 45s
//	    set: {store.shard_down: "1"}
//	    expect:
//	      - name: availability SLO burns
//	        query: slo:current_burn_rate:ratio{sloth_id="demo-edge-availability"} > 2
//	        within: 2m
//	      - name: on-call is paged
//	        page: demo-edge-availability
//	        within: 5m
//	  - at: 4m
//	    clear: [store.shard_down]
//
// With workbook: {slo: ID, tier: page} (or factor: F, window: W) instead of
// within, the expected time is the SRE workbook's detection time for the
// error ratio measured during the fault, factor × budget / ratio × window,
// and a detection sooner than half of it is flagged as too early (the
// alert windows were not full, or the signal was there before the fault).
// A drill whose queries or pager failed scores 0 and says why.
//
// An expectation is met when its query first returns a non-empty vector (or,
// for page, when the alert fires) after the step's time; never: true turns it
// into "must not happen before the drill ends". acknowledge_within and
// resolve_within are compared with the times to acknowledge and resolve of
// the drill's incident: the first incident of the page's (or workbook's)
// SLO triggered during the drill, read from GET /api/v1/incidents when it
// ends. Without the incident tracker they are reported as not measured.
package gameday

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/demoapp/load"
)

// ErrUnknownScenario is returned by Lookup for a name that is neither an
// embedded scenario nor a readable file.
var ErrUnknownScenario = errors.New("unknown scenario")

//go:embed scenarios/*.yml
var embedded embed.FS

// Scenario is one drill.
type Scenario struct {
	Name        string        `yaml:"name"`
	Title       string        `yaml:"title"`
	Description string        `yaml:"description"`
	Duration    time.Duration `yaml:"duration"`
	Load        Load          `yaml:"load"`
	Timeline    []Step        `yaml:"timeline"`
}

// Load is the traffic sent for the whole drill.
type Load struct {
	Shape       string        `yaml:"shape"`
	Rate        float64       `yaml:"rate"`
	Clients     int           `yaml:"clients"`
	Period      time.Duration `yaml:"period"`
	SpikeFactor float64       `yaml:"spike_factor"`
	SpikeAt     time.Duration `yaml:"spike_at"`
	SpikeLength time.Duration `yaml:"spike_length"`
	Mix         string        `yaml:"mix"`
}

// Step is a point of the timeline: faults to set and clear, and what should
// follow.
type Step struct {
	At     time.Duration     `yaml:"at"`
	Note   string            `yaml:"note"`
	Set    map[string]string `yaml:"set"`
	Clear  []string          `yaml:"clear"`
	Expect []Expectation     `yaml:"expect"`
}

// Expectation is a signal that should (or, with Never, should not) follow a
// step within a time.
type Expectation struct {
	Name string `yaml:"name"`
	// Query is PromQL; the signal is there when it returns a non-empty vector.
	Query string `yaml:"query"`
	// Page names an SLO (or an alert); the signal is a page for it (see Pager).
	Page string `yaml:"page"`
	// Within is the expected time from the step to the signal, set by
	// hand; Workbook computes it from the SLO instead (and wins).
	Within time.Duration `yaml:"within"`
	// Workbook names the SLO alert condition the signal stands for, so the
	// expected time follows from the error ratio measured during the fault.
	Workbook *Workbook `yaml:"workbook"`
	// Never inverts the expectation: the signal must not appear.
	Never bool `yaml:"never"`
	// AcknowledgeWithin and ResolveWithin are the workbook's response
	// times, compared with the drill's incident's (incident tracker).
	AcknowledgeWithin time.Duration `yaml:"acknowledge_within"`
	ResolveWithin     time.Duration `yaml:"resolve_within"`
}

// Validate reports the first problem of a scenario.
func (s *Scenario) Validate() error {
	if s.Name == "" {
		return errors.New("name: must not be empty")
	}
	if s.Duration <= 0 || s.Duration > 2*time.Hour {
		return errors.New("duration: must be above 0 and at most 2h")
	}
	lo := s.loadOptions("http://127.0.0.1")
	if err := lo.Validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if len(s.Timeline) == 0 {
		return errors.New("timeline: must have at least one step")
	}
	for i, st := range s.Timeline {
		if st.At < 0 || st.At >= s.Duration {
			return fmt.Errorf("timeline[%d].at: %s is outside the drill (0 to %s)", i, st.At, s.Duration)
		}
		if i > 0 && st.At < s.Timeline[i-1].At {
			return fmt.Errorf("timeline[%d].at: steps must be in time order", i)
		}
		for j, e := range st.Expect {
			switch {
			case e.Name == "":
				return fmt.Errorf("timeline[%d].expect[%d].name: must not be empty", i, j)
			case (e.Query == "") == (e.Page == ""):
				return fmt.Errorf("timeline[%d].expect[%d]: give exactly one of query or page", i, j)
			case e.Within <= 0 && !e.Never && e.Workbook == nil:
				return fmt.Errorf("timeline[%d].expect[%d].within: must be above 0 (or give workbook)", i, j)
			}
			if e.Workbook != nil {
				if err := e.Workbook.validate(); err != nil {
					return fmt.Errorf("timeline[%d].expect[%d].workbook: %w", i, j, err)
				}
			}
		}
	}
	return nil
}

func (s *Scenario) loadOptions(target string) load.Options {
	return load.Options{
		Target:      target,
		Rate:        s.Load.Rate,
		Duration:    s.Duration,
		Shape:       s.Load.Shape,
		Clients:     s.Load.Clients,
		Period:      s.Load.Period,
		SpikeFactor: s.Load.SpikeFactor,
		SpikeAt:     s.Load.SpikeAt,
		SpikeLength: s.Load.SpikeLength,
		Mix:         s.Load.Mix,
		Timeout:     5 * time.Second,
	}
}

// Parse reads a scenario and validates it. Unknown keys are errors.
func Parse(data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return &s, nil
}

// Embedded lists the scenarios shipped in the binary, by name.
func Embedded() ([]*Scenario, error) {
	entries, err := fs.ReadDir(embedded, "scenarios")
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, e := range entries {
		b, err := embedded.ReadFile(path.Join("scenarios", e.Name()))
		if err != nil {
			return nil, err
		}
		s, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup returns the embedded scenario called name, or reads name as a file.
func Lookup(name string) (*Scenario, error) {
	all, err := Embedded()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name == name {
			return s, nil
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("%w %q: not one of %s, nor a readable file", ErrUnknownScenario, name, strings.Join(slices.Clip(names), ", "))
	}
	return Parse(b)
}
