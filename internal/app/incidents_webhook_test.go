package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
)

func TestIncidentChangesArePostedToIncidentsWebhookURLs(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Event struct {
				Kind string `json:"kind"`
			} `json:"event"`
			Incident struct {
				Title  string `json:"title"`
				Status string `json:"status"`
			} `json:"incident"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ev); err != nil || ev.Incident.Title != "db slow" {
			http.Error(w, "unexpected body: "+string(body), http.StatusBadRequest)
			return
		}
		mu.Lock()
		kinds = append(kinds, ev.Event.Kind)
		mu.Unlock()
	}))
	defer hook.Close()
	opts := app.DefaultOptions()
	opts.Demo.Enabled = false
	opts.APIToken = "t0ken"
	opts.Incidents.WebhookURLs = []string{hook.URL}
	r := apptest.StartApp(t, opts)

	code, body := post(t, r.URL+"/api/v1/incidents", "t0ken", `{"title":"db slow","severity":"SEV3","service":"db"}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = post(t, r.URL+"/api/v1/incidents/1/ack", "t0ken", `{"by":"ann"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = post(t, r.URL+"/api/v1/incidents/1/resolve", "t0ken", `{"by":"ann"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kinds) >= 3
	}, 15*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"triggered", "acknowledged", "resolved"}, kinds)
}

func TestABadIncidentsWebhookURLIsRefusedByItsKey(t *testing.T) {
	o := app.DefaultOptions()
	o.Incidents.WebhookURLs = []string{"hooks.example.com/in"}
	require.ErrorContains(t, o.Validate(), `incidents.webhook_urls[0]: "hooks.example.com/in" is not an http:// or https:// URL`)
}
