// Command hooks-backend is an application backend for roomd's hooks
// (docs/PROTOCOL.md §7): it verifies each request's signature, refuses the
// joins of banned users, and stores published messages and room
// transitions in SQLite, once each whatever the redeliveries.
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"time"

	_ "modernc.org/sqlite"

	"github.com/roomd/roomd/hooks"
)

const schema = `
CREATE TABLE IF NOT EXISTS messages (room TEXT, epoch TEXT, seq INTEGER, user TEXT, ts INTEGER, data TEXT,
  PRIMARY KEY (room, epoch, seq));
CREATE TABLE IF NOT EXISTS transitions (id TEXT PRIMARY KEY, room TEXT, hook TEXT, ts INTEGER);
CREATE TABLE IF NOT EXISTS bans (user TEXT, room TEXT, PRIMARY KEY (user, room));`

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address")
	secret := flag.String("secret", "", "roomd's hooks.secret")
	path := flag.String("db", "hooks.db", "SQLite file")
	flag.Parse()
	db, err := sql.Open("sqlite", *path)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(schema); err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, newBackend(db, []byte(*secret))))
}

// newBackend answers every hook at one URL.
func newBackend(db *sql.DB, secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := hooks.Verify(r.Header.Get(hooks.SignatureHeader), body, time.Now(), 5*time.Minute, secret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var in struct {
			hooks.PublishedEvent        // room, epoch, seq, user, ts, data
			ID                   string `json:"id"` // occupied, vacated
		}
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var err error
		var answer any
		switch h := hooks.Name(r.Header.Get(hooks.HookHeader)); h {
		case hooks.Join:
			var banned bool
			err = db.QueryRow(`SELECT EXISTS(SELECT 1 FROM bans WHERE user = ? AND room = ?)`, in.User, in.Room).Scan(&banned)
			res := hooks.JoinResult{Allow: !banned}
			if banned {
				res.Reason = "banned from this room"
			}
			answer = res
		case hooks.Published:
			_, err = db.Exec(`INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?)`, in.Room, in.Epoch, in.Seq, in.User, in.TS, string(in.Data))
		case hooks.Occupied, hooks.Vacated:
			_, err = db.Exec(`INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?)`, in.ID, in.Room, string(h), in.TS)
		default:
			answer = map[string]bool{"allow": true}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError) // roomd retries
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
}
