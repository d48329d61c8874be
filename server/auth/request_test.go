package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		cookie     string
		query      string
		allowQuery bool
		want       string
	}{
		{name: "none", want: ""},
		{name: "bearer", header: "Bearer h.t.x", want: "h.t.x"},
		{name: "bearer any case", header: "bEaReR   h.t.x ", want: "h.t.x"},
		{name: "bearer beats cookie and query", header: "Bearer h", cookie: "c", query: "q", allowQuery: true, want: "h"},
		{name: "cookie", cookie: "c.t.x", want: "c.t.x"},
		{name: "cookie beats query", cookie: "c", query: "q", allowQuery: true, want: "c"},
		{name: "basic falls through to cookie", header: "Basic dXNlcjpwYXNz", cookie: "c", want: "c"},
		{name: "empty bearer falls through", header: "Bearer ", cookie: "c", want: "c"},
		{name: "query allowed", query: "q.t.x", allowQuery: true, want: "q.t.x"},
		{name: "query not allowed", query: "q.t.x", allowQuery: false, want: ""},
		{name: "bare header is not bearer", header: "h.t.x", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := "/v1/rooms/chat:lobby/events"
			if tc.query != "" {
				target += "?token=" + tc.query
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tc.cookie})
			}
			if got := TokenFromRequest(r, tc.allowQuery); got != tc.want {
				t.Fatalf("TokenFromRequest = %q, want %q", got, tc.want)
			}
		})
	}
}
