package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gocoffee.example/go-coffee/internal/platform"
	"gocoffee.example/go-coffee/internal/servicetest"
)

// Test credentials only; they exist nowhere else.
const (
	testUsers = "ada:lovelace-1815, grace:hopper-1906"
	testPass  = "lovelace-1815"
)

// newAuth is the whole service as main runs it, minus the listener.
func newAuth(t *testing.T, env map[string]string) http.Handler {
	t.Helper()
	return servicetest.New(t, "auth-service", version, routes, env)
}

func login(t *testing.T, h http.Handler, user, password string) *httptest.ResponseRecorder {
	t.Helper()
	body, err := json.Marshal(loginRequest{Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return servicetest.Do(h, http.MethodPost, "/login", string(body))
}

func TestLoginThenVerify(t *testing.T) {
	h := newAuth(t, map[string]string{"AUTH_USERS": testUsers, "AUTH_TOKEN_TTL": "30m"})
	rec := login(t, h, "ada", testPass)
	if rec.Code != http.StatusOK {
		t.Fatalf("login = %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("token response may be cached")
	}
	tok := servicetest.Decode[loginResponse](t, rec)
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 1800 || tok.AccessToken == "" {
		t.Errorf("login = %+v", tok)
	}
	if until := time.Until(tok.ExpiresAt); until < 29*time.Minute || until > 31*time.Minute {
		t.Errorf("expires_at %v is not about 30 minutes away", tok.ExpiresAt)
	}

	for _, scheme := range []string{"Bearer", "bearer"} {
		rec = servicetest.DoWithHeader(h, http.MethodGet, "/verify", "", map[string]string{"Authorization": scheme + " " + tok.AccessToken})
		if rec.Code != http.StatusOK {
			t.Fatalf("verify with %q = %d %s", scheme, rec.Code, rec.Body)
		}
		v := servicetest.Decode[verifyResponse](t, rec)
		if !v.Valid || v.Subject != "ada" || !v.ExpiresAt.Equal(tok.ExpiresAt) {
			t.Errorf("verify = %+v", v)
		}
	}
}

func TestLoginRejects(t *testing.T) {
	h := newAuth(t, map[string]string{"AUTH_USERS": testUsers})
	tests := []struct {
		name, body string
		wantStatus int
		wantError  string
	}{
		{"wrong password", `{"username":"ada","password":"hopper-1906"}`, 401, "unknown user or wrong password"},
		{"unknown user", `{"username":"alan","password":"lovelace-1815"}`, 401, "unknown user or wrong password"},
		{"missing fields", `{}`, 400, "login is not valid"},
		{"unknown field", `{"user":"ada"}`, 400, `unknown field "user"`},
		{"not JSON", `ada:lovelace`, 400, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := servicetest.Do(h, http.MethodPost, "/login", tt.body)
			servicetest.WantError(t, rec, tt.wantStatus, tt.wantError, "")
		})
	}
	if rec := servicetest.Do(h, http.MethodGet, "/login", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /login = %d, want 405", rec.Code)
	}
}

func TestNobodyLogsInWithoutUsers(t *testing.T) {
	h := newAuth(t, nil)
	if rec := login(t, h, "admin", "admin"); rec.Code != http.StatusUnauthorized {
		t.Errorf("login with no AUTH_USERS = %d, want 401", rec.Code)
	}
}

func TestVerifyRejectsRequests(t *testing.T) {
	h := newAuth(t, map[string]string{"AUTH_USERS": testUsers})
	tests := []struct {
		name, authorization string
		wantChallenge       string
		wantError           string
	}{
		{"no header", "", `Bearer realm="go-coffee"`, "Authorization header is missing"},
		{"basic auth", "Basic YWRhOmxvdmVsYWNl", `Bearer realm="go-coffee"`, `scheme "Basic" is not supported`},
		{"bearer without token", "Bearer ", `Bearer realm="go-coffee"`, "no token after Bearer"},
		{"bearer and spaces", "Bearer    ", `Bearer realm="go-coffee"`, "no token after Bearer"},
		{"garbage token", "Bearer abc", `error="invalid_token"`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{}
			if tt.authorization != "" {
				header["Authorization"] = tt.authorization
			}
			rec := servicetest.DoWithHeader(h, http.MethodGet, "/verify", "", header)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d %s, want 401", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantChallenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantChallenge)
			}
			if got := servicetest.Decode[platform.ErrorBody](t, rec).Error; !strings.Contains(got, tt.wantError) {
				t.Errorf("error = %q, want it to contain %q", got, tt.wantError)
			}
		})
	}
}

func TestSigningKeyFromEnvSurvivesRestart(t *testing.T) {
	env := map[string]string{"AUTH_USERS": testUsers, "AUTH_SIGNING_KEY": strings.Repeat("s", 40)}
	tok := servicetest.Decode[loginResponse](t, login(t, newAuth(t, env), "ada", testPass))

	restarted := newAuth(t, env)
	rec := servicetest.DoWithHeader(restarted, http.MethodGet, "/verify", "", map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if rec.Code != http.StatusOK {
		t.Errorf("a token from before the restart = %d %s, want 200", rec.Code, rec.Body)
	}

	// Without AUTH_SIGNING_KEY each process has its own random key.
	delete(env, "AUTH_SIGNING_KEY")
	tok = servicetest.Decode[loginResponse](t, login(t, newAuth(t, env), "ada", testPass))
	rec = servicetest.DoWithHeader(newAuth(t, env), http.MethodGet, "/verify", "", map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a token from another random key = %d, want 401", rec.Code)
	}
}

func TestRoutesRejectBadSettings(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantError string
		secret    string // must not appear in the message
	}{
		{"entry without password", map[string]string{"AUTH_USERS": "ada:lovelace-1815,grace"}, "AUTH_USERS entry 2", ""},
		{"empty password", map[string]string{"AUTH_USERS": "ada:"}, "AUTH_USERS entry 1", ""},
		{"bad name", map[string]string{"AUTH_USERS": "a b:secret-pw-1"}, "AUTH_USERS entry 1", "secret-pw-1"},
		{"duplicate user", map[string]string{"AUTH_USERS": "ada:pw-one-1,ada:pw-two-2"}, `lists user "ada" twice`, "pw-two-2"},
		{"short key", map[string]string{"AUTH_SIGNING_KEY": "tiny-key-value"}, "AUTH_SIGNING_KEY is not allowed: it has 14 bytes", "tiny-key-value"},
		{"ttl not a duration", map[string]string{"AUTH_TOKEN_TTL": "forever"}, `AUTH_TOKEN_TTL="forever" is not allowed`, ""},
		{"ttl too short", map[string]string{"AUTH_TOKEN_TTL": "10s"}, "from 1m0s to 24h0m0s", ""},
		{"ttl too long", map[string]string{"AUTH_TOKEN_TTL": "48h"}, `AUTH_TOKEN_TTL="48h"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := routes(http.NewServeMux(), servicetest.Env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantError)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

func TestUsersCheck(t *testing.T) {
	u, err := parseUsers(testUsers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, password string
		want           bool
	}{
		{"ada", testPass, true},
		{"grace", "hopper-1906", true},
		{"ada", "hopper-1906", false},
		{"ada", "", false},
		{"nobody", "", false},
		{"nobody", testPass, false},
	}
	for _, tt := range tests {
		if got := u.check(tt.name, tt.password); got != tt.want {
			t.Errorf("check(%q, %q) = %v, want %v", tt.name, tt.password, got, tt.want)
		}
	}
}
