package server

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/roomd/roomd/server/web"
)

// webCSP is the Content-Security-Policy of every web asset: scripts, styles
// and connections from this node only, no inline script or style, no
// plugins, no framing. A value a member slips into a demo page can then
// neither run nor send anything elsewhere.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webHandler serves the embedded SDK bundle and demo apps. Browsers
// revalidate them on every load, so a new binary's assets are seen at once.
// A folder without an index.html is not listed: 404.
func webHandler() http.Handler {
	assets := web.FS()
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", webCSP)
		h.Set("Referrer-Policy", "same-origin")
		if isFolder(assets, r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// isFolder reports whether p names a folder of assets that has no
// index.html: what http.FileServer would list.
func isFolder(assets fs.FS, p string) bool {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	st, err := fs.Stat(assets, name)
	if err != nil || !st.IsDir() {
		return false
	}
	_, err = fs.Stat(assets, path.Join(name, "index.html"))
	return err != nil
}
