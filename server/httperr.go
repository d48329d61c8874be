package server

import (
	"net/http"

	"github.com/roomd/roomd/protocol"
)

// apiError is the body of every HTTP error: {"error": {code, name, msg}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code protocol.Code `json:"code"`
	Name string        `json:"name"`
	Msg  string        `json:"msg"`
}

func writeAPIError(w http.ResponseWriter, status int, code protocol.Code, msg string) {
	if status == 0 {
		status = code.HTTPStatus()
	}
	writeJSON(w, status, apiError{apiErrorBody{Code: code, Name: code.String(), Msg: msg}})
}
