package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the web assets rooted at the static folder, so that
// "sdk/roomd.min.js" and "chat/index.html" are paths in it.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: " + err.Error()) // cannot happen: the folder is embedded
	}
	return sub
}
