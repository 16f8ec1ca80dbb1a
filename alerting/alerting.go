// Package alerting turns SLO burn rates and alerts sent by Prometheus into
// notifications that reach people: multi-window multi-burn-rate rules, the
// alert lifecycle (inactive, pending, firing, resolved), routing, grouping,
// inhibition, silences, recurring mute windows and a durable outbox.
//
// It speaks Alertmanager's API v2 (POST/GET /api/v2/alerts, /api/v2/silences,
// /api/v2/status) so that Prometheus can send to it and amtool can query it,
// and keeps every piece of state that matters across a restart in SQLite:
// the alerts, what was already notified (so a restart does not page again),
// silences, rule state (so a restart does not forget a firing alert) and the
// outbox (so a Slack outage delays notifications but loses none).
//
// Receivers live in subpackages (alerting/slack, alerting/webhook,
// alerting/alertmanager) and are handed to New by the composition root.
package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/alertmanager/timeinterval"
)

// Names of the receivers Burnrate builds from its configuration. Routes name
// one of them.
const (
	ReceiverSlack        = "slack"
	ReceiverWebhook      = "webhook"
	ReceiverAlertmanager = "alertmanager"
	ReceiverLog          = "log"
)

// Config configures alerting. The defaults are Alertmanager's where
// Alertmanager has one.
type Config struct {
	// ResolveTimeout is the end time given to an alert posted without one:
	// it resolves unless its sender re-sends it (Alertmanager's 5m).
	ResolveTimeout time.Duration `mapstructure:"resolve_timeout"`
	// EvaluationInterval is how often SLO alert rules are evaluated.
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`
	// ExternalURL is Burnrate's own URL as people reach it, used in links.
	ExternalURL string `mapstructure:"external_url"`
	// Route is the root of the routing tree.
	Route RouteConfig `mapstructure:"route"`
	// InhibitRules mute target alerts while a matching source alert fires.
	InhibitRules []InhibitRuleConfig `mapstructure:"inhibit_rules"`
	// TimeIntervals are named recurring windows that routes mute in.
	TimeIntervals []TimeIntervalConfig `mapstructure:"time_intervals"`
	// Rules configures the alerts generated from SLOs.
	Rules RulesConfig `mapstructure:"rules"`
	// Outbox configures delivery retries.
	Outbox OutboxConfig `mapstructure:"outbox"`

	Slack        SlackConfig        `mapstructure:"slack"`
	Webhook      WebhookConfig      `mapstructure:"webhook"`
	Alertmanager AlertmanagerConfig `mapstructure:"alertmanager"`
}

// AlertmanagerConfig lists the Alertmanagers alerts are forwarded to.
type AlertmanagerConfig struct {
	URLs []string `mapstructure:"urls"`
	// ResendDelay is how often firing alerts are sent again, each time
	// with an end time 4 × max(resend_delay, evaluation_interval) ahead, so
	// that Alertmanager keeps them active (Prometheus's resend-delay, 1m).
	ResendDelay time.Duration `mapstructure:"resend_delay"`
}

// SlackConfig configures the Slack receiver.
type SlackConfig struct {
	// Token is a bot token (xoxb-...). Without one, notifications go to the
	// log receiver instead.
	Token string `mapstructure:"token" secret:"true"`
	// SigningSecret verifies requests Slack sends back (button clicks).
	SigningSecret string `mapstructure:"signing_secret" secret:"true"`
	// Channel is the channel ID or name messages are posted to.
	Channel string `mapstructure:"channel"`
	// APIURL overrides https://slack.com/api/ (tests, proxies).
	APIURL string `mapstructure:"api_url"`
}

// WebhookConfig lists URLs notified by a webhook-style receiver.
type WebhookConfig struct {
	URLs []string `mapstructure:"urls"`
}

// OutboxConfig bounds retries of the notification outbox.
type OutboxConfig struct {
	// InitialInterval is the first retry delay; it doubles (with jitter) up
	// to MaxInterval. Retries go on until the notification is delivered.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`
	// PollInterval is how often the outbox looks for due notifications
	// besides being woken when one is written.
	PollInterval time.Duration `mapstructure:"poll_interval"`
}

// RouteConfig is one node of the routing tree, as in Alertmanager. Zero
// durations and a nil GroupBy are inherited from the parent.
type RouteConfig struct {
	Receiver string `mapstructure:"receiver" yaml:"receiver,omitempty"`
	// Matchers select the alerts of this route, Alertmanager syntax:
	// `severity="page"`, `service=~"api|edge"`.
	Matchers       []string      `mapstructure:"matchers" yaml:"matchers,omitempty"`
	GroupBy        []string      `mapstructure:"group_by" yaml:"group_by,omitempty"`
	GroupWait      time.Duration `mapstructure:"group_wait" yaml:"group_wait,omitempty"`
	GroupInterval  time.Duration `mapstructure:"group_interval" yaml:"group_interval,omitempty"`
	RepeatInterval time.Duration `mapstructure:"repeat_interval" yaml:"repeat_interval,omitempty"`
	// Continue lets matching go on with the next sibling after a match.
	Continue bool `mapstructure:"continue" yaml:"continue,omitempty"`
	// MuteTimeIntervals name TimeIntervals during which this route sends
	// nothing; ActiveTimeIntervals name the only ones it sends in.
	MuteTimeIntervals   []string      `mapstructure:"mute_time_intervals" yaml:"mute_time_intervals,omitempty"`
	ActiveTimeIntervals []string      `mapstructure:"active_time_intervals" yaml:"active_time_intervals,omitempty"`
	Routes              []RouteConfig `mapstructure:"routes" yaml:"routes,omitempty"`
}

// InhibitRuleConfig mutes alerts matching TargetMatchers while an alert
// matching SourceMatchers fires with the same values of the Equal labels.
type InhibitRuleConfig struct {
	SourceMatchers []string `mapstructure:"source_matchers" yaml:"source_matchers,omitempty"`
	TargetMatchers []string `mapstructure:"target_matchers" yaml:"target_matchers,omitempty"`
	Equal          []string `mapstructure:"equal" yaml:"equal,omitempty"`
}

// TimeIntervalConfig is a named recurring window in Alertmanager's syntax.
type TimeIntervalConfig struct {
	Name          string               `mapstructure:"name" yaml:"name,omitempty"`
	TimeIntervals []TimeIntervalPeriod `mapstructure:"time_intervals" yaml:"time_intervals,omitempty"`
}

// TimeIntervalPeriod is one recurring period: every field restricts it.
type TimeIntervalPeriod struct {
	// Times are "HH:MM" ranges, start inclusive, end exclusive.
	Times       []TimeRangeConfig `mapstructure:"times" json:"times,omitempty" yaml:"times,omitempty"`
	Weekdays    []string          `mapstructure:"weekdays" json:"weekdays,omitempty" yaml:"weekdays,omitempty"`
	DaysOfMonth []string          `mapstructure:"days_of_month" json:"days_of_month,omitempty" yaml:"days_of_month,omitempty"`
	Months      []string          `mapstructure:"months" json:"months,omitempty" yaml:"months,omitempty"`
	Years       []string          `mapstructure:"years" json:"years,omitempty" yaml:"years,omitempty"`
	// Location is an IANA zone name; the period is computed in it.
	Location string `mapstructure:"location" json:"location,omitempty" yaml:"location,omitempty"`
}

// TimeRangeConfig is a time-of-day range.
type TimeRangeConfig struct {
	StartTime string `mapstructure:"start_time" json:"start_time" yaml:"start_time,omitempty"`
	EndTime   string `mapstructure:"end_time" json:"end_time" yaml:"end_time,omitempty"`
}

// DefaultConfig returns Alertmanager's defaults plus Burnrate's choices.
// Its lists (child routes, inhibit rules, rule tiers) are empty: WithDefaults
// fills empty lists with DefaultRoutes, DefaultInhibitRules and the default
// tiers, so a configuration that gives its own replaces them. Keeping them
// out of the defaults matters to the config loader, which decodes a file
// over the defaults and would otherwise merge a user's first route into
// the default one.
func DefaultConfig() Config {
	return Config{
		ResolveTimeout:     5 * time.Minute,
		EvaluationInterval: 5 * time.Second,
		Route: RouteConfig{
			GroupBy:        []string{"alertname", "slo", "severity"},
			GroupWait:      30 * time.Second,
			GroupInterval:  5 * time.Minute,
			RepeatInterval: 4 * time.Hour,
		},
		Rules: RulesConfig{BudgetExhausted: true, DataAbsentFor: 10 * time.Minute, EvaluationFailingFor: 10 * time.Minute,
			ForGracePeriod: 10 * time.Minute, ForOutageTolerance: time.Hour},
		Alertmanager: AlertmanagerConfig{ResendDelay: time.Minute},
		Outbox: OutboxConfig{
			InitialInterval: 500 * time.Millisecond,
			MaxInterval:     2 * time.Minute,
			PollInterval:    time.Second,
		},
	}
}

// DefaultRoutes are the root route's children when none are configured:
// pages skip most of the group wait, because a page has already waited for
// its burn-rate windows.
func DefaultRoutes() []RouteConfig {
	return []RouteConfig{{Matchers: []string{`severity="page"`}, GroupWait: time.Second}}
}

// DefaultInhibitRules apply when none are configured: a firing page for an
// SLO mutes the tickets of the same SLO.
func DefaultInhibitRules() []InhibitRuleConfig {
	return []InhibitRuleConfig{{
		SourceMatchers: []string{`severity="page"`, `slo=~".+"`},
		TargetMatchers: []string{`severity="ticket"`},
		Equal:          []string{"slo"},
	}}
}

// WithDefaults fills the zero fields and empty lists of c from the
// defaults, so that a partial configuration (or none) behaves as
// documented. (An empty list is a default, not "none": the config loader
// cannot tell a list left out from one printed as []. To route nothing
// specially, give one child route that inherits everything; to inhibit
// nothing, one rule whose source matches nothing.)
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.ResolveTimeout, d.ResolveTimeout)
	orDefault(&c.EvaluationInterval, d.EvaluationInterval)
	orDefault(&c.Route.GroupWait, d.Route.GroupWait)
	orDefault(&c.Route.GroupInterval, d.Route.GroupInterval)
	orDefault(&c.Route.RepeatInterval, d.Route.RepeatInterval)
	if c.Route.GroupBy == nil {
		c.Route.GroupBy = d.Route.GroupBy
	}
	if len(c.Route.Routes) == 0 {
		c.Route.Routes = DefaultRoutes()
	}
	if len(c.InhibitRules) == 0 {
		c.InhibitRules = DefaultInhibitRules()
	}
	orDefault(&c.Outbox.InitialInterval, d.Outbox.InitialInterval)
	orDefault(&c.Outbox.MaxInterval, d.Outbox.MaxInterval)
	orDefault(&c.Outbox.PollInterval, d.Outbox.PollInterval)
	c.Rules = c.Rules.withDefaults()
	orDefault(&c.Alertmanager.ResendDelay, d.Alertmanager.ResendDelay)
	return c
}

// ErrInvalidConfig is matched (errors.Is) by every configuration error.
// The messages themselves start with the configuration key, so that the
// config loader can point at the line of the file.
var ErrInvalidConfig = errors.New("invalid alerting configuration")

type configError string

func (e configError) Error() string        { return string(e) }
func (e configError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reports the first invalid field, named by its configuration key.
// Routes may name only the receivers the configuration enables.
func (c Config) Validate() error { return c.validate(true) }

func (c Config) validate(checkReceivers bool) error {
	c = c.WithDefaults()
	bad := func(format string, args ...any) error {
		return configError(fmt.Sprintf(format, args...))
	}
	if c.ResolveTimeout <= 0 {
		return bad("alerting.resolve_timeout: must be positive")
	}
	if c.EvaluationInterval <= 0 {
		return bad("alerting.evaluation_interval: must be positive")
	}
	if c.ExternalURL != "" {
		if _, err := url.Parse(c.ExternalURL); err != nil {
			return bad("alerting.external_url: %v", err)
		}
	}
	if c.Outbox.InitialInterval <= 0 || c.Outbox.MaxInterval < c.Outbox.InitialInterval || c.Outbox.PollInterval <= 0 {
		return bad("alerting.outbox: intervals must be positive and max_interval >= initial_interval")
	}
	if _, err := c.intervener(); err != nil {
		return bad("alerting.time_intervals: %v", err)
	}
	names := map[string]bool{}
	for _, ti := range c.TimeIntervals {
		names[ti.Name] = true
	}
	rc := c.Route
	if rc.Receiver == "" {
		rc.Receiver = c.DefaultReceiver()
	}
	route, err := newRoute(rc, nil, names)
	if err != nil {
		return bad("alerting.route: %v", err)
	}
	configured := c.configuredReceivers()
	var missing string
	route.Walk(func(r *Route) {
		if !configured[r.Receiver] && missing == "" {
			missing = r.Receiver
		}
	})
	if checkReceivers && missing != "" {
		return bad("alerting.route: receiver %q is not configured (configure alerting.slack, alerting.webhook or alerting.alertmanager, or use %q)", missing, ReceiverLog)
	}
	if _, err := newInhibitor(c.InhibitRules); err != nil {
		return bad("alerting.inhibit_rules: %v", err)
	}
	if err := c.Rules.Validate(); err != nil {
		return bad("alerting.rules: %v", err)
	}
	for _, u := range append(append([]string(nil), c.Webhook.URLs...), c.Alertmanager.URLs...) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return bad("alerting webhook/alertmanager url %q: want an absolute http(s) URL", u)
		}
	}
	if c.Alertmanager.ResendDelay < 0 {
		return bad("alerting.alertmanager.resend_delay: must be positive")
	}
	if c.Slack.Token != "" && c.Slack.Channel == "" {
		return bad("alerting.slack.channel: required when alerting.slack.token is set")
	}
	return nil
}

// configuredReceivers names the receivers the configuration enables.
func (c Config) configuredReceivers() map[string]bool {
	return map[string]bool{
		ReceiverLog:          true,
		ReceiverSlack:        c.Slack.Token != "",
		ReceiverWebhook:      len(c.Webhook.URLs) > 0,
		ReceiverAlertmanager: len(c.Alertmanager.URLs) > 0,
	}
}

// DefaultReceiver is the receiver of routes that name none: Slack when a
// token is configured, the log otherwise.
func (c Config) DefaultReceiver() string {
	if c.Slack.Token != "" {
		return ReceiverSlack
	}
	return ReceiverLog
}

// intervener compiles the time intervals with Alertmanager's own parser, so
// the syntax (ranges such as "monday:friday", "-1" for the last day of the
// month, IANA locations) is exactly Alertmanager's.
func (c Config) intervener() (*timeinterval.Intervener, error) {
	m := map[string][]timeinterval.TimeInterval{}
	for _, ti := range c.TimeIntervals {
		if ti.Name == "" {
			return nil, errors.New("every time interval needs a name")
		}
		if _, dup := m[ti.Name]; dup {
			return nil, fmt.Errorf("time interval %q defined twice", ti.Name)
		}
		raw, err := json.Marshal(ti.TimeIntervals)
		if err != nil {
			return nil, err
		}
		var parsed []timeinterval.TimeInterval
		if err := json.Unmarshal(raw, &parsed); err != nil {
			return nil, fmt.Errorf("time interval %q: %w", ti.Name, err)
		}
		m[ti.Name] = parsed
	}
	return timeinterval.NewIntervener(m), nil
}
