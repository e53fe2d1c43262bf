package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Issuer is the "iss" claim of every token this service signs.
const Issuer = "go-coffee-auth"

// MinKeyBytes is the shortest signing key accepted: HMAC-SHA256 wants a key
// at least as long as its 32-byte output.
const MinKeyBytes = 32

// Why a token was rejected. Verify wraps one of these.
var (
	ErrMalformed = errors.New("token is malformed")
	ErrAlgorithm = errors.New("token algorithm is not HS256")
	ErrSignature = errors.New("token signature does not match")
	ErrExpired   = errors.New("token has expired")
	ErrIssuer    = errors.New("token was issued by someone else")
)

// Claims are the registered JWT claims this service uses (RFC 7519).
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

var encoding = base64.RawURLEncoding

// encodedHeader is the same for every token, so it is encoded once.
var encodedHeader = encoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Signer issues and verifies compact HS256 JSON Web Tokens.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner returns a signer with key (at least MinKeyBytes long) whose tokens
// live for ttl.
func NewSigner(key []byte, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("signing key has %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	return &Signer{key: key, ttl: ttl, now: now}, nil
}

// Issue signs a token for subject.
func (s *Signer) Issue(subject string) (string, Claims, error) {
	now := s.now()
	claims := Claims{
		Issuer:    Issuer,
		Subject:   subject,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(s.ttl).Unix(),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", Claims{}, fmt.Errorf("encode claims: %w", err)
	}
	unsigned := encodedHeader + "." + encoding.EncodeToString(payload)
	return unsigned + "." + encoding.EncodeToString(s.sign(unsigned)), claims, nil
}

// Verify checks the token's algorithm, signature, issuer and expiry, and
// returns its claims. The algorithm comes from the token but only HS256 is
// accepted, so "alg":"none" and key-confusion tricks fail.
func (s *Signer) Verify(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: want three dot-separated parts, got %d", ErrMalformed, len(parts))
	}
	var header jwtHeader
	if err := decodeSegment(parts[0], &header); err != nil {
		return Claims{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if header.Alg != "HS256" {
		return Claims{}, fmt.Errorf("%w: got %q", ErrAlgorithm, header.Alg)
	}
	sig, err := encoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if !hmac.Equal(sig, s.sign(parts[0]+"."+parts[1])) {
		return Claims{}, ErrSignature
	}
	var claims Claims
	if err := decodeSegment(parts[1], &claims); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if claims.Issuer != Issuer {
		return Claims{}, fmt.Errorf("%w: iss is %q, want %q", ErrIssuer, claims.Issuer, Issuer)
	}
	if !s.now().Before(time.Unix(claims.ExpiresAt, 0)) {
		return Claims{}, fmt.Errorf("%w: at %s", ErrExpired, time.Unix(claims.ExpiresAt, 0).UTC().Format(time.RFC3339))
	}
	return claims, nil
}

func (s *Signer) sign(unsigned string) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(unsigned))
	return mac.Sum(nil)
}

func decodeSegment(segment string, v any) error {
	raw, err := encoding.DecodeString(segment)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}
