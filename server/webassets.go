package server

import (
	"net/http"

	"github.com/roomd/roomd/server/web"
)

// webHandler serves the embedded SDK bundle and demo apps. Browsers
// revalidate them on every load, so a new binary's assets are seen at once.
func webHandler() http.Handler {
	files := http.FileServerFS(web.FS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
