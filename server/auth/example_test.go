package auth_test

import (
	"fmt"
	"time"

	"github.com/roomd/roomd/server/auth"
)

func Example() {
	secret := []byte("an example secret of 32+ bytes!!")
	v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{secret}})
	if err != nil {
		panic(err)
	}
	g, _ := auth.ParseGrant("chat:*=join,pub,pres")
	tok, _ := auth.Mint(secret, "alice", []auth.Grant{g}, map[string]any{"name": "Alice"}, time.Hour)

	id, err := v.Verify(tok)
	if err != nil {
		fmt.Println(auth.Reason(err))
		return
	}
	fmt.Println(id.User, id.Can("chat:lobby", auth.PermPub), id.Can("board:1", auth.PermJoin))

	_, err = v.Verify(tok[:len(tok)-4] + "AAAA")
	fmt.Println(auth.Reason(err))
	// Output:
	// alice true false
	// signature
}
