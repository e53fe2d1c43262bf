package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// MaxBodyBytes caps request bodies; orders and logins are a few hundred bytes.
const MaxBodyBytes = 64 << 10

// ErrorBody is the JSON shape of every error answer. Problems lists each
// thing wrong with a request body when there are several.
type ErrorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error (an unencodable type) gets here.
		slog.Error("encode JSON response", "err", err)
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal error: could not encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteError answers status with {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg})
}

// RequestError is a client mistake in a request body, with the status to answer.
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

// DecodeJSON reads exactly one JSON object from the request body into v.
// Unknown fields, trailing data, a wrong Content-Type and bodies over
// MaxBodyBytes are rejected with a *RequestError that says what to fix.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mediaType, _, err := mime.ParseMediaType(ct)
		if err != nil || mediaType != "application/json" {
			return &RequestError{
				Status: http.StatusUnsupportedMediaType,
				Msg:    fmt.Sprintf("Content-Type %q is not supported: send application/json", ct),
			}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return &RequestError{
			Status: http.StatusBadRequest,
			Msg:    "request body must hold a single JSON object, found more data after it",
		}
	}
	return nil
}

func decodeError(err error) *RequestError {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooBig    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return &RequestError{
			Status: http.StatusRequestEntityTooLarge,
			Msg:    fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit),
		}
	case errors.Is(err, io.EOF):
		return &RequestError{Status: http.StatusBadRequest, Msg: "request body is empty: send a JSON object"}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return &RequestError{Status: http.StatusBadRequest, Msg: "request body is not valid JSON: " + err.Error()}
	case errors.As(err, &typeErr):
		return &RequestError{
			Status: http.StatusBadRequest,
			Msg:    fmt.Sprintf("field %q must be a JSON %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value),
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields.
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &RequestError{Status: http.StatusBadRequest, Msg: "request body has unknown field " + field}
	default:
		return &RequestError{Status: http.StatusBadRequest, Msg: "could not read request body: " + err.Error()}
	}
}

// WriteRequestError answers a DecodeJSON error: its own status for a
// *RequestError, 400 for anything else.
func WriteRequestError(w http.ResponseWriter, err error) {
	var reqErr *RequestError
	if errors.As(err, &reqErr) {
		WriteError(w, reqErr.Status, reqErr.Msg)
		return
	}
	WriteError(w, http.StatusBadRequest, err.Error())
}

// Methods routes one path by request method and answers 405 with an Allow
// header and a JSON error for any other method. HEAD is served by the GET
// handler (net/http drops the body). ServeMux's own method patterns answer
// 405 in plain text, which is why services use this instead.
type Methods map[string]http.HandlerFunc

func (m Methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodHead && m[http.MethodHead] == nil {
		method = http.MethodGet
	}
	if h, ok := m[method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m)+1)
	for name := range m {
		allowed = append(allowed, name)
	}
	if m[http.MethodGet] != nil && m[http.MethodHead] == nil {
		allowed = append(allowed, http.MethodHead)
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, http.StatusMethodNotAllowed,
		fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
}
