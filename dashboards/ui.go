package dashboards

import (
	"embed"
	"io/fs"
	"net/http"
)

// The built-in UI is plain HTML, CSS and JavaScript over Burnrate's own
// JSON APIs, with charts drawn as inline SVG by a hundred lines of
// app.js: no framework, no chart library, no build step and no npm, so
// `go run ./cmd/burnrate up` serves it as committed and it works with no
// network. The files in ui/ are the sources; nothing rebuilds them.
//
//go:embed ui
var uiFiles embed.FS

// UIHandler serves the UI: the page at / and its assets under /ui/.
func UIHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
	return mux
}
