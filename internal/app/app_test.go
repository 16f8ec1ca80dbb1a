package app_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

func TestAppStartsAndServesItsOwnMetrics(t *testing.T) {
	r := apptest.StartApp(t, app.DefaultOptions())

	code, body := testutil.HTTPGet(t, r.URL+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "burnrate_build_info")
	require.Contains(t, body, "go_goroutines")

	code, _ = testutil.HTTPGet(t, r.URL+"/debug/pprof/")
	require.Equal(t, 200, code)
	require.NoError(t, r.Ready())
	require.DirExists(t, r.DataDir)
}

func TestOptionsValidate(t *testing.T) {
	ok := app.DefaultOptions()
	require.NoError(t, ok.Validate())

	cases := []struct {
		name string
		mut  func(*app.Options)
		want string
	}{
		{"an empty data dir is refused", func(o *app.Options) { o.DataDir = "" }, "data_dir: must not be empty"},
		{"a listen address without a port is refused", func(o *app.Options) { o.Listen = "localhost" }, "listen:"},
		{"a drain longer than the 5s stop budget is refused", func(o *app.Options) { o.ShutdownTimeout = 10e9 }, "shutdown_timeout:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := app.DefaultOptions()
			tc.mut(&o)
			require.ErrorContains(t, o.Validate(), tc.want)
		})
	}
}

func TestNewFailsWhenTheAddressIsTaken(t *testing.T) {
	r := apptest.StartApp(t, app.DefaultOptions())
	o := app.DefaultOptions()
	o.Listen = r.App.URL()[len("http://"):]
	o.DataDir = t.TempDir()
	_, err := app.New(o)
	require.ErrorContains(t, err, "address already in use")
}
