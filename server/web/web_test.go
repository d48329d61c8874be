package web

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFSHasAssets(t *testing.T) {
	for _, name := range []string{
		"index.html",
		"sdk/roomd.min.js",
		"chat/index.html",
		"whiteboard/index.html",
		"dashboard/index.html",
	} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", name)
		}
	}
	js, _ := fs.ReadFile(FS(), "sdk/roomd.min.js")
	if !strings.Contains(string(js), "export{") {
		t.Fatal("sdk/roomd.min.js is not an ES module")
	}
}
