package app_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/testutil"
)

// TestCollectorIsWiredIntoTheApp sends OTLP to the separate OTLP listener,
// queries it on the main listener, stops the app and requires the series to
// be there after a restart on the same data directory.
func TestCollectorIsWiredIntoTheApp(t *testing.T) {
	dir := t.TempDir()
	opts := app.DefaultOptions()
	opts.DataDir = dir
	opts.Demo.Enabled = false
	opts.Collector.OTLPListen = "127.0.0.1:0"

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "demo-api")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("wiring.check")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	now := time.Now()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.SetDoubleValue(7)
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)

	query := func(base string) string {
		_, out := testutil.HTTPGet(t, base+"/api/v1/query?query=wiring_check&time="+now.Add(time.Second).Format(time.RFC3339Nano))
		return out
	}

	{
		a, err := app.New(withTestDefaults(t, opts))
		require.NoError(t, err)
		var otlpURL string
		for _, e := range a.Endpoints() {
			if e.Name == "otlp" && !strings.HasPrefix(e.URL, a.URL()) {
				otlpURL = e.URL
			}
		}
		require.NotEmpty(t, otlpURL, "the separate OTLP listener is printed at start-up: %v", a.Endpoints())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.WaitReady(t, a.URL(), 30*time.Second)

		resp, err := http.Post(otlpURL, "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, query(a.URL()), `"job":"demo-api"`)

		code, out := testutil.HTTPGet(t, a.URL()+"/api/v1/traces?limit=5")
		require.Equal(t, http.StatusOK, code, out)
		cancel()
		require.NoError(t, <-done)
	}
	opts.Collector.OTLPListen = ""
	r := testutil.StartApp(t, opts)
	require.Contains(t, query(r.URL), `"value":[`, "the sample survives a restart")
}

func withTestDefaults(t *testing.T, o app.Options) app.Options {
	o.Listen = "127.0.0.1:0"
	o.ShutdownTimeout = 2 * time.Second
	o.Logger = testutil.Logger(t)
	return o
}
