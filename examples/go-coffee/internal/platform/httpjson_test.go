package platform

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type sampleBody struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int // 0: accepted
		wantMsg     string
	}{
		{"valid", "application/json", `{"name":"x","count":2}`, 0, ""},
		{"valid with charset", "application/json; charset=utf-8", `{"name":"x"}`, 0, ""},
		{"no content type", "", `{"name":"x"}`, 0, ""},
		{"empty", "application/json", ``, 400, "empty"},
		{"not JSON", "application/json", `{"name":`, 400, "not valid JSON"},
		{"syntax error", "application/json", `{name}`, 400, "not valid JSON"},
		{"wrong type", "application/json", `{"count":"two"}`, 400, `field "count" must be a JSON int`},
		{"unknown field", "application/json", `{"nme":"x"}`, 400, `unknown field "nme"`},
		{"two objects", "application/json", `{"name":"x"}{"name":"y"}`, 400, "single JSON object"},
		{"trailing garbage", "application/json", `{"name":"x"} nonsense`, 400, "single JSON object"},
		{"form post", "application/x-www-form-urlencoded", `name=x`, 415, "send application/json"},
		{"bad content type", ";;", `{}`, 415, "send application/json"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v sampleBody
			err := DecodeJSON(httptest.NewRecorder(), r, &v)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var reqErr *RequestError
			if !errors.As(err, &reqErr) {
				t.Fatalf("error = %v, want a *RequestError", err)
			}
			if reqErr.Status != tt.wantStatus || !strings.Contains(reqErr.Msg, tt.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", reqErr.Status, reqErr.Msg, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a JSON error: %v", rec.Body.String(), err)
	}
	return body
}

func TestWriteRequestError(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantMsg    string
	}{
		{&RequestError{Status: 415, Msg: "send JSON"}, 415, "send JSON"},
		{errors.New("plain"), 400, "plain"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		WriteRequestError(rec, tt.err)
		if rec.Code != tt.wantStatus {
			t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
		}
		if got := errorBody(t, rec).Error; got != tt.wantMsg {
			t.Errorf("error = %q, want %q", got, tt.wantMsg)
		}
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if got := errorBody(t, rec).Error; !strings.Contains(got, "could not encode") {
		t.Errorf("error = %q", got)
	}
}

func TestMethods(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"method": r.Method})
	}
	tests := []struct {
		name       string
		methods    Methods
		method     string
		wantStatus int
		wantAllow  string
	}{
		{"GET", Methods{http.MethodGet: ok}, http.MethodGet, 200, ""},
		{"HEAD served by GET", Methods{http.MethodGet: ok}, http.MethodHead, 200, ""},
		{"POST on GET route", Methods{http.MethodGet: ok}, http.MethodPost, 405, "GET, HEAD"},
		{"GET on POST route", Methods{http.MethodPost: ok}, http.MethodGet, 405, "POST"},
		{"HEAD on POST route", Methods{http.MethodPost: ok}, http.MethodHead, 405, "POST"},
		{"two methods", Methods{http.MethodPost: ok, http.MethodDelete: ok}, http.MethodPut, 405, "DELETE, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.methods.ServeHTTP(rec, httptest.NewRequest(tt.method, "/thing", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusMethodNotAllowed {
				return
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			msg := errorBody(t, rec).Error
			if !strings.Contains(msg, tt.method) || !strings.Contains(msg, "/thing") {
				t.Errorf("error %q does not name the method and the path", msg)
			}
		})
	}
}
