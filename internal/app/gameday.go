package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/internal/httpserver"
)

// gamedays runs the shipped game-day scenarios from the API (the UI's
// launcher): one drill at a time, against this process's own listener and
// demo edge, keeping the reports of this process's runs in memory.
type gamedays struct {
	url, edge, token string
	app              *App

	mu     sync.Mutex
	ctx    context.Context // the runner's, so drills stop with the process
	runs   []*gamedayRun
	active *gamedayRun
}

type gamedayRun struct {
	ID         int       `json:"id"`
	Scenario   string    `json:"scenario"`
	Status     string    `json:"status"` // running, done, failed
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	TimeScale  float64   `json:"time_scale"`
	Score      *float64  `json:"score,omitempty"`
	Report     string    `json:"report,omitempty"`
	Error      string    `json:"error,omitempty"`
}

func (g *gamedays) run(ctx context.Context) error {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
	<-ctx.Done()
	return nil
}

func gamedayError(w http.ResponseWriter, code int, msg string) {
	httpserver.WriteError(w, code, "bad_data", msg)
}

// Handler serves GET /api/v1/demo/gamedays (scenarios and runs) and POST
// /api/v1/demo/gamedays/{name} (start a drill; body {"time_scale": N}
// optional, for a smoke run).
func (g *gamedays) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/demo/gamedays", func(w http.ResponseWriter, _ *http.Request) {
		all, err := gameday.Embedded()
		if err != nil {
			gamedayError(w, http.StatusInternalServerError, err.Error())
			return
		}
		type scenario struct {
			Name     string  `json:"name"`
			Title    string  `json:"title"`
			Duration float64 `json:"duration_seconds"`
		}
		out := []scenario{}
		for _, s := range all {
			out = append(out, scenario{s.Name, s.Title, s.Duration.Seconds()})
		}
		g.mu.Lock()
		runs := make([]gamedayRun, 0, len(g.runs))
		for i := len(g.runs) - 1; i >= 0; i-- {
			runs = append(runs, *g.runs[i])
		}
		g.mu.Unlock()
		httpserver.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"scenarios": out, "runs": runs}})
	})
	mux.HandleFunc("POST /api/v1/demo/gamedays/{name}", g.start)
	return mux
}

func (g *gamedays) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	all, err := gameday.Embedded()
	if err != nil {
		gamedayError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var s *gameday.Scenario
	for _, x := range all {
		if x.Name == name {
			s = x
		}
	}
	if s == nil {
		gamedayError(w, http.StatusNotFound, fmt.Sprintf("no shipped scenario %q (GET /api/v1/demo/gamedays lists them)", name))
		return
	}
	var body struct {
		TimeScale float64 `json:"time_scale"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<12))
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			gamedayError(w, http.StatusBadRequest, "body: want {\"time_scale\": N} or nothing: "+err.Error())
			return
		}
	}
	if body.TimeScale == 0 {
		body.TimeScale = 1
	}
	if body.TimeScale < 1 || body.TimeScale > 1000 {
		gamedayError(w, http.StatusBadRequest, "time_scale: "+strconv.FormatFloat(body.TimeScale, 'g', -1, 64)+" is outside 1..1000")
		return
	}
	g.mu.Lock()
	if g.ctx == nil {
		g.mu.Unlock()
		gamedayError(w, http.StatusServiceUnavailable, "the process is starting or stopping")
		return
	}
	if g.active != nil {
		busy := *g.active
		g.mu.Unlock()
		gamedayError(w, http.StatusConflict, fmt.Sprintf("game day %d (%s) is running; one drill at a time", busy.ID, busy.Scenario))
		return
	}
	run := &gamedayRun{ID: len(g.runs) + 1, Scenario: s.Name, Status: "running", StartedAt: time.Now().UTC(), TimeScale: body.TimeScale}
	g.runs = append(g.runs, run)
	g.active = run
	ctx, answer := g.ctx, *run
	g.mu.Unlock()

	go func() {
		rep, err := gameday.Run(ctx, s, gameday.Options{URL: g.url, EdgeURL: g.edge, Token: g.token,
			History: time.Hour, TimeScale: body.TimeScale, Logger: g.app.logger.With("component", "gameday", "run", run.ID)})
		g.mu.Lock()
		defer g.mu.Unlock()
		run.FinishedAt = time.Now().UTC()
		switch {
		case err != nil:
			run.Status, run.Error = "failed", err.Error()
		case rep == nil:
			run.Status, run.Error = "failed", "no report"
		default:
			sc := rep.Score()
			run.Status, run.Score, run.Report = "done", &sc, rep.Markdown()
		}
		g.active = nil
	}()
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]any{"status": "success", "data": answer})
}
