package sloengine

import (
	"errors"
	"net/http"

	"github.com/burnrate/burnrate/internal/httpserver"
)

// Handler serves the SLO API:
//
//	GET /api/v1/slos       latest status of every SLO
//	GET /api/v1/slos/{id}  latest status and the kept history of one SLO
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/slos", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]Status, 0, len(e.states))
		for _, st := range e.states {
			st.mu.RLock()
			s := st.last
			st.mu.RUnlock()
			if s.EvaluatedAt.IsZero() {
				s = e.pending(st.slo)
			}
			out = append(out, s)
		}
		httpserver.WriteData(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /api/v1/slos/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, hist, err := e.Get(r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			httpserver.WriteError(w, http.StatusNotFound, "not_found", err.Error())
			return
		}
		if s.EvaluatedAt.IsZero() {
			s = e.pending(e.byID[r.PathValue("id")].slo)
		}
		if hist == nil {
			hist = []Evaluation{}
		}
		httpserver.WriteData(w, http.StatusOK, map[string]any{"slo": s, "history": hist})
	})
	return mux
}

// pending describes an SLO that has not been evaluated yet.
func (e *Engine) pending(s *SLO) Status {
	return Status{ID: s.ID, Service: s.Service, Name: s.Name, Description: s.Description, Objective: s.Objective,
		ErrorBudget: s.ErrorBudget(), Period: periodName(s), PeriodLength: s.Period, Budgeting: string(s.Budgeting), MinEvents: s.MinEvents,
		BudgetConsumed: Value(nan), BudgetRemaining: Value(nan), PeriodCoverage: Value(nan), InsufficientData: true, PeriodSLI: WindowStatus{ErrorRatio: Value(nan), SLI: Value(nan),
			BurnRate: Value(nan), BadEvents: Value(nan), GoodEvents: Value(nan), TotalEvents: Value(nan)},
		Windows: []WindowStatus{}, Forecasts: []Forecast{}, Tiers: []TierState{}, Error: "not evaluated yet"}
}
