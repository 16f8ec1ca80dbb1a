package httpserver

import (
	"encoding/json"
	"net/http"
)

// Burnrate's JSON APIs answer in Prometheus's envelope:
//
//	{"status":"success","data":...}
//	{"status":"error","errorType":"bad_data","error":"..."}
//
// so that one client (Grafana, curl | jq, burnrate's own CLI) reads them all.
// The error types are Prometheus's, plus "conflict" and "unauthorized".

// ErrorBody is the error answer. Field names the request field at fault,
// when there is one.
type ErrorBody struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Field     string `json:"field,omitempty"`
}

// WriteJSON answers code with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteData answers code with data in the success envelope.
func WriteData(w http.ResponseWriter, code int, data any) {
	WriteJSON(w, code, struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", data})
}

// WriteError answers code with the error envelope.
func WriteError(w http.ResponseWriter, code int, errType, msg string) {
	WriteJSON(w, code, ErrorBody{Status: "error", ErrorType: errType, Error: msg})
}
