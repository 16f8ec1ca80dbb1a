// Package incidents runs incident response: incidents opened from page
// alerts (one per alert group), their status, people and timeline; on-call
// schedules computed in their IANA zone; escalation policies whose deadlines
// live in SQLite; Slack buttons and the /burnrate slash command; and
// postmortem drafts with detection time, MTTA and MTTR.
//
// Everything is stored in one SQLite database (internal/sqlite). Pure logic
// takes the time as an argument (Schedule.OnCallAt, Policy steps); the
// Service stamps times with an injectable Now.
package incidents

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/burnrate/burnrate/internal/sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Sentinel errors. The API maps them to 404, 409 and 400.
var (
	// ErrNotFound is returned when an incident, user, schedule or policy
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned for a status change the incident's current
	// status does not allow (acknowledging a resolved incident) or one that
	// would break dedup (re-opening while another incident of the same
	// alert group is open).
	ErrConflict = errors.New("conflict")
	// ErrInvalid is returned for bad input; the error names the field.
	ErrInvalid = errors.New("invalid input")
)

// FieldError is bad input in one field. It matches ErrInvalid.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string        { return e.Field + ": " + e.Msg }
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Ticket alert handling (Config.Tickets).
const (
	// TicketsOpen opens a low-urgency incident (Config.TicketSeverity) for a
	// ticket alert, without escalation.
	TicketsOpen = "open"
	// TicketsIgnore opens nothing for ticket alerts.
	TicketsIgnore = "ignore"
)

// What happens to an incident when its alert resolves (Config.OnAlertResolved).
const (
	// AlertResolvedResolve resolves the incident.
	AlertResolvedResolve = "resolve"
	// AlertResolvedWait records "alert resolved" and waits for a human.
	AlertResolvedWait = "wait"
)

// Config configures incidents. Keys live under `incidents.` in the
// configuration file.
type Config struct {
	// Tickets is "open" (low-urgency incidents for ticket alerts) or
	// "ignore". Default "ignore".
	Tickets string `mapstructure:"tickets"`
	// OnAlertResolved is "resolve" or "wait". Default "wait": a person
	// decides the incident is over.
	OnAlertResolved string `mapstructure:"on_alert_resolved"`
	// PageSeverity and TicketSeverity are the severities of incidents opened
	// from page and ticket alerts, unless an alert carries an
	// `incident_severity` label. Defaults SEV2 and SEV4.
	PageSeverity   string `mapstructure:"page_severity"`
	TicketSeverity string `mapstructure:"ticket_severity"`
	// EscalationPolicy is the ID of the policy new page incidents follow
	// (empty: none). An alert label `escalation_policy` overrides it.
	EscalationPolicy string `mapstructure:"escalation_policy"`
	// ExternalURL is Burnrate's URL as people reach it, used in links.
	ExternalURL string `mapstructure:"external_url"`
	// WebhookURLs receive a JSON POST for every incident change, through
	// alerting's durable outbox (docs/incidents.md, "Outgoing webhooks").
	WebhookURLs []string `mapstructure:"webhook_urls"`
	// Slack configures who may act from Slack (docs/incidents.md, "Slack").
	Slack SlackConfig `mapstructure:"slack"`
	// Limits bound what one schedule may hold (incidents.limits.*).
	Limits Limits `mapstructure:"limits"`
}

// SlackConfig is incidents.slack. Only people linked to a Burnrate user
// (by slack_id or email) act from Slack, whatever it says.
type SlackConfig struct {
	// RestrictToResponders, when true, lets only an incident's responders
	// change it from Slack: people named in its escalation policy, on call
	// now in a schedule the policy targets, or already its participants.
	RestrictToResponders bool `mapstructure:"restrict_to_responders"`
}

// Limits bound the size of a schedule, so that computing it ("who is on
// call", a year of the final schedule, every escalation step) stays fast
// whatever is stored. A request past a limit is refused with 400 naming
// the field and the limit. Zero fields take the defaults.
type Limits struct {
	// MaxLayers is the most layers a schedule may have. Default 50.
	MaxLayers int `mapstructure:"max_layers"`
	// MaxUsersPerLayer is the most users one layer's rotation may name.
	// Default 100.
	MaxUsersPerLayer int `mapstructure:"max_users_per_layer"`
	// MaxRestrictionsPerLayer is the most restriction windows a layer may
	// have. Default 14 (two a day).
	MaxRestrictionsPerLayer int `mapstructure:"max_restrictions_per_layer"`
	// MaxOverrides is the most overrides (swaps count two) a schedule may
	// hold, past ones included. Default 1000.
	MaxOverrides int `mapstructure:"max_overrides"`
}

// Default limits (Limits).
const (
	DefaultMaxLayers               = 50
	DefaultMaxUsersPerLayer        = 100
	DefaultMaxRestrictionsPerLayer = 14
	DefaultMaxOverrides            = 1000
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxLayers, DefaultMaxLayers)
	def(&l.MaxUsersPerLayer, DefaultMaxUsersPerLayer)
	def(&l.MaxRestrictionsPerLayer, DefaultMaxRestrictionsPerLayer)
	def(&l.MaxOverrides, DefaultMaxOverrides)
	return l
}

func (l Limits) validate() error {
	for key, v := range map[string]int{"max_layers": l.MaxLayers, "max_users_per_layer": l.MaxUsersPerLayer,
		"max_restrictions_per_layer": l.MaxRestrictionsPerLayer, "max_overrides": l.MaxOverrides} {
		if v < 0 {
			return fmt.Errorf("incidents.limits.%s: %d is negative (0 takes the default)", key, v)
		}
	}
	return nil
}

// checkSchedule refuses a schedule past the layer, user and restriction
// limits, naming the field and the limit.
func (l Limits) checkSchedule(sc *Schedule) error {
	if len(sc.Layers) > l.MaxLayers {
		return invalid("layers", "%d layers exceed the limit incidents.limits.max_layers (%d)", len(sc.Layers), l.MaxLayers)
	}
	for i, ly := range sc.Layers {
		if len(ly.Users) > l.MaxUsersPerLayer {
			return invalid(fmt.Sprintf("layers[%d].users", i), "%d users exceed the limit incidents.limits.max_users_per_layer (%d)",
				len(ly.Users), l.MaxUsersPerLayer)
		}
		if len(ly.Restrictions) > l.MaxRestrictionsPerLayer {
			return invalid(fmt.Sprintf("layers[%d].restrictions", i), "%d restrictions exceed the limit incidents.limits.max_restrictions_per_layer (%d)",
				len(ly.Restrictions), l.MaxRestrictionsPerLayer)
		}
	}
	return nil
}

// WithDefaults fills the zero fields of c.
func (c Config) WithDefaults() Config {
	if c.Tickets == "" {
		c.Tickets = TicketsIgnore
	}
	if c.OnAlertResolved == "" {
		c.OnAlertResolved = AlertResolvedWait
	}
	if c.PageSeverity == "" {
		c.PageSeverity = "SEV2"
	}
	if c.TicketSeverity == "" {
		c.TicketSeverity = "SEV4"
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Validate reports the first invalid field by its configuration key.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.Tickets != TicketsOpen && c.Tickets != TicketsIgnore {
		return fmt.Errorf("incidents.tickets: %q is neither %q nor %q", c.Tickets, TicketsOpen, TicketsIgnore)
	}
	if c.OnAlertResolved != AlertResolvedResolve && c.OnAlertResolved != AlertResolvedWait {
		return fmt.Errorf("incidents.on_alert_resolved: %q is neither %q nor %q", c.OnAlertResolved, AlertResolvedResolve, AlertResolvedWait)
	}
	if _, err := ParseSeverity(c.PageSeverity); err != nil {
		return fmt.Errorf("incidents.page_severity: %w", err)
	}
	if _, err := ParseSeverity(c.TicketSeverity); err != nil {
		return fmt.Errorf("incidents.ticket_severity: %w", err)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	return validateWebhookURLs(c.WebhookURLs)
}

// SlackOptions connect the Service to Slack. Without a token, escalation
// notifications go to the log; without a signing secret, the Slack
// endpoints answer 401 to everything.
type SlackOptions struct {
	Token         string
	SigningSecret string
	// APIURL overrides https://slack.com/api/ (tests).
	APIURL string
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Options build a Service.
type Options struct {
	Config Config
	// Path is the SQLite database file.
	Path  string
	Slack SlackOptions
	// Budget, when set, gives postmortems and the API the error budget an
	// incident consumed (TSDBBudget reads the SLO engine's history).
	Budget     BudgetSource
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now stamps times; tests pin it. Default time.Now.
	Now func() time.Time
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Path == "" {
		return errors.New("incidents: a database path is required")
	}
	return o.Config.Validate()
}

// Service is the incidents component: store, alert receiver, escalation
// engine, HTTP API and Slack endpoints.
type Service struct {
	cfg     Config
	db      *sqlite.DB
	logger  *slog.Logger
	now     func() time.Time
	slack   *slackClient
	secret  string
	budget  BudgetSource
	metrics *metrics
	// wake nudges the escalation loop when a deadline is written.
	wake chan struct{}
	// httpClient posts Slack follow-ups to response_url.
	httpClient *http.Client
	// bg tracks Slack follow-ups still running; Close waits for them.
	bg sync.WaitGroup
	// queue delivers pages and handoff notices (DeliverThrough).
	queueMu sync.Mutex
	queue   EventQueue
	// running makes Run run once.
	running atomic.Bool
	// onChange is called after every change (OnChange).
	onChange atomic.Pointer[func()]
	// events, when set (SendEvents), receives every timeline event for
	// the receiver eventsTo; eventsMu serialises forwarding.
	eventsMu sync.Mutex
	events   EventQueue
	eventsTo string
}

// Open opens (creating and migrating) the database and builds the Service.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// One connection: every change is a read-check-write transaction, and
	// serialising them makes concurrent acknowledgements trivially safe.
	db, err := sqlite.Open(ctx, opts.Path, sqlite.Options{Migrations: migrationFiles, MigrationsDir: "migrations", OneConnection: true, Now: opts.Now})
	if err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	s := &Service{
		cfg:    opts.Config.WithDefaults(),
		db:     db,
		logger: opts.Logger,
		now:    opts.Now,
		secret: opts.Slack.SigningSecret,
		budget: opts.Budget,
		wake:   make(chan struct{}, 1),

		httpClient: opts.Slack.HTTPClient,
	}
	if s.httpClient == nil {
		s.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	s.cfg.ExternalURL = strings.TrimSuffix(s.cfg.ExternalURL, "/")
	if opts.Slack.Token != "" {
		s.slack = newSlackClient(opts.Slack)
	}
	s.metrics = newMetrics(s)
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			db.Close()
			return nil, fmt.Errorf("incidents: register metrics: %w", err)
		}
	}
	return s, nil
}

// Close waits for Slack follow-ups in flight, then closes the database.
func (s *Service) Close() error {
	s.bg.Wait()
	return s.db.Close()
}

// nudge tells the escalation loop, and whoever asked with OnChange, that
// an incident changed.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if fn := s.onChange.Load(); fn != nil {
		(*fn)()
	}
}

// OnChange makes fn be called after every committed change of an
// incident (opened, acknowledged, resolved, re-opened, escalated, noted).
// fn must not block: the deploy gate uses it to rebuild its index at once,
// so that a pipeline asking right after an incident opened sees it.
func (s *Service) OnChange(fn func()) { s.onChange.Store(&fn) }
