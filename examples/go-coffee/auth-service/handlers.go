package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"gocoffee.example/go-coffee/internal/platform"
)

// Token lifetime bounds (AUTH_TOKEN_TTL).
const (
	DefaultTokenTTL = time.Hour
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 24 * time.Hour
)

// realm names this service in WWW-Authenticate challenges.
const realm = "go-coffee"

// routes registers the auth endpoints. It reads AUTH_USERS (comma-separated
// name:password pairs; unset means nobody can log in), AUTH_SIGNING_KEY (at
// least 32 bytes; unset means a random key per process, so tokens do not
// survive a restart) and AUTH_TOKEN_TTL (a Go duration from 1m to 24h).
// Error messages never repeat a password or a key.
func routes(mux *http.ServeMux, getenv func(string) string) error {
	accounts, err := parseUsers(getenv("AUTH_USERS"))
	if err != nil {
		return err
	}

	key := []byte(getenv("AUTH_SIGNING_KEY"))
	randomKey := len(key) == 0
	if randomKey {
		key = make([]byte, MinKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("AUTH_SIGNING_KEY is unset and no random key could be made: %w", err)
		}
	} else if len(key) < MinKeyBytes {
		return fmt.Errorf("AUTH_SIGNING_KEY is not allowed: it has %d bytes, want at least %d random bytes",
			len(key), MinKeyBytes)
	}

	ttl := DefaultTokenTTL
	if raw := strings.TrimSpace(getenv("AUTH_TOKEN_TTL")); raw != "" {
		ttl, err = time.ParseDuration(raw)
		if err != nil || ttl < MinTokenTTL || ttl > MaxTokenTTL {
			return fmt.Errorf("AUTH_TOKEN_TTL=%q is not allowed: want a duration from %s to %s, like 30m",
				raw, MinTokenTTL, MaxTokenTTL)
		}
	}

	signer, err := NewSigner(key, ttl, time.Now)
	if err != nil {
		return err
	}

	// Warnings only once every setting is valid, so a bad one stays the
	// single line the service prints before it exits.
	if len(accounts) == 0 {
		slog.Warn("AUTH_USERS is unset: nobody can log in until it lists name:password pairs")
	}
	if randomKey {
		slog.Warn("AUTH_SIGNING_KEY is unset: using a random key, tokens will not survive a restart")
	}
	h := &handlers{users: accounts, signer: signer}
	mux.Handle("/login", platform.Methods{http.MethodPost: h.login})
	mux.Handle("/verify", platform.Methods{http.MethodGet: h.verify})
	return nil
}

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// users maps a user name to the SHA-256 of its password. Comparing digests
// takes the same time whatever the password's length.
type users map[string][sha256.Size]byte

// parseUsers reads "name:password,name:password".
func parseUsers(raw string) (users, error) {
	out := users{}
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	for i, entry := range strings.Split(raw, ",") {
		name, password, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || !userNamePattern.MatchString(name) || password == "" {
			return nil, fmt.Errorf("AUTH_USERS entry %d is not allowed: want name:password with a name of "+
				"1 to 64 letters, digits, dots, dashes or underscores and a non-empty password", i+1)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("AUTH_USERS lists user %q twice: keep one entry per user", name)
		}
		out[name] = sha256.Sum256([]byte(password))
	}
	return out, nil
}

// check reports whether password belongs to name. Unknown names still cost
// one comparison so timing does not reveal which names exist.
func (u users) check(name, password string) bool {
	want, known := u[name]
	got := sha256.Sum256([]byte(password))
	match := subtle.ConstantTimeCompare(want[:], got[:]) == 1
	return known && match
}

type handlers struct {
	users  users
	signer *Signer
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loginResponse follows the OAuth 2.0 token response field names (RFC 6749).
type loginResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type verifyResponse struct {
	Valid     bool      `json:"valid"`
	Subject   string    `json:"subject"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := platform.DecodeJSON(w, r, &req); err != nil {
		platform.WriteRequestError(w, err)
		return
	}
	var problems []string
	if req.Username == "" {
		problems = append(problems, "username is required")
	}
	if req.Password == "" {
		problems = append(problems, "password is required")
	}
	if len(problems) > 0 {
		platform.WriteJSON(w, http.StatusBadRequest, platform.ErrorBody{Error: "login is not valid", Problems: problems})
		return
	}
	if !h.users.check(req.Username, req.Password) {
		// One message for both cases, so it does not reveal which names exist.
		platform.WriteError(w, http.StatusUnauthorized, "unknown user or wrong password")
		return
	}
	token, claims, err := h.signer.Issue(req.Username)
	if err != nil {
		platform.WriteError(w, http.StatusInternalServerError, "could not sign a token: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	platform.WriteJSON(w, http.StatusOK, loginResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   claims.ExpiresAt - claims.IssuedAt,
		ExpiresAt:   time.Unix(claims.ExpiresAt, 0).UTC(),
	})
}

func (h *handlers) verify(w http.ResponseWriter, r *http.Request) {
	token, err := bearerToken(r.Header.Get("Authorization"))
	if err != nil {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", realm))
		platform.WriteError(w, http.StatusUnauthorized, err.Error())
		return
	}
	claims, err := h.signer.Verify(token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\"", realm))
		platform.WriteError(w, http.StatusUnauthorized, err.Error())
		return
	}
	platform.WriteJSON(w, http.StatusOK, verifyResponse{
		Valid:     true,
		Subject:   claims.Subject,
		IssuedAt:  time.Unix(claims.IssuedAt, 0).UTC(),
		ExpiresAt: time.Unix(claims.ExpiresAt, 0).UTC(),
	})
}

// bearerToken extracts the token from an Authorization header value.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", errors.New("Authorization header is missing: send \"Authorization: Bearer <token>\" from POST /login")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(header), " ")
	// The scheme is case-insensitive (RFC 9110, section 11.1).
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("authorization scheme %q is not supported: send \"Authorization: Bearer <token>\"", scheme)
	}
	if token = strings.TrimSpace(token); token == "" {
		return "", errors.New("Authorization header has no token after Bearer: send the access_token from POST /login")
	}
	return token, nil
}
