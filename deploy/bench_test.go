package deploy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/burnrate/burnrate/deploy"
)

// BenchmarkGateRequest is one GET /api/v1/gate through the handler, for a
// service of 10 SLOs among 1,000: the decision and its JSON, no network.
func BenchmarkGateRequest(b *testing.B) {
	f := newGate(&testing.T{}, "")
	for s := range 100 {
		slos := make([]deploy.SLOState, 10)
		for i := range slos {
			slos[i] = healthy(fmt.Sprintf("svc-%d-%d", s, i))
			slos[i].BurnRates[24*time.Hour] = 0.2
		}
		f.src.set(fmt.Sprintf("svc-%d", s), slos...)
	}
	h := f.srv.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/v1/gate?service=svc-%d&version=v1", i%100), nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
