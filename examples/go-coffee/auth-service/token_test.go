package main

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testKey   = []byte(strings.Repeat("k", MinKeyBytes))
	otherKey  = []byte(strings.Repeat("o", MinKeyBytes))
	testEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTestSigner(t *testing.T, key []byte, c *clock) *Signer {
	t.Helper()
	s, err := NewSigner(key, time.Hour, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueVerify(t *testing.T) {
	c := &clock{now: testEpoch}
	s := newTestSigner(t, testKey, c)
	token, issued, err := s.Issue("ada")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(token, ".") != 2 {
		t.Fatalf("token %q is not a compact JWT", token)
	}
	want := Claims{Issuer: Issuer, Subject: "ada", IssuedAt: testEpoch.Unix(), ExpiresAt: testEpoch.Add(time.Hour).Unix()}
	if issued != want {
		t.Errorf("claims = %+v, want %+v", issued, want)
	}
	c.now = testEpoch.Add(59 * time.Minute)
	got, err := s.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got != want {
		t.Errorf("verified claims = %+v, want %+v", got, want)
	}
}

// forge builds a token from raw header and claims JSON, signed with key.
func forge(t *testing.T, key []byte, header, claims string) string {
	t.Helper()
	s := newTestSigner(t, key, &clock{now: testEpoch})
	unsigned := encoding.EncodeToString([]byte(header)) + "." + encoding.EncodeToString([]byte(claims))
	return unsigned + "." + encoding.EncodeToString(s.sign(unsigned))
}

func TestVerifyRejects(t *testing.T) {
	c := &clock{now: testEpoch}
	s := newTestSigner(t, testKey, c)
	good, _, err := s.Issue("ada")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	const hs256 = `{"alg":"HS256","typ":"JWT"}`
	claims := `{"iss":"go-coffee-auth","sub":"root","iat":1893553445,"exp":1893557045}`
	tamperedClaims := encoding.EncodeToString([]byte(claims))

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"empty", "", testEpoch, ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], testEpoch, ErrMalformed},
		{"header not base64", "%%%." + parts[1] + "." + parts[2], testEpoch, ErrMalformed},
		{"header not JSON", encoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], testEpoch, ErrMalformed},
		{"alg none", encoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", testEpoch, ErrAlgorithm},
		{"alg HS512", forge(t, testKey, `{"alg":"HS512","typ":"JWT"}`, claims), testEpoch, ErrAlgorithm},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!!", testEpoch, ErrMalformed},
		{"claims swapped", parts[0] + "." + tamperedClaims + "." + parts[2], testEpoch, ErrSignature},
		{"signed with another key", forge(t, otherKey, hs256, claims), testEpoch, ErrSignature},
		{"claims not JSON", forge(t, testKey, hs256, "[1,2"), testEpoch, ErrMalformed},
		{"other issuer", forge(t, testKey, hs256, `{"iss":"evil","sub":"ada","exp":1893557045}`), testEpoch, ErrIssuer},
		{"expired", good, testEpoch.Add(time.Hour), ErrExpired},
		{"long expired", good, testEpoch.Add(48 * time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = tt.now
			_, err := s.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignatureIsStandardHS256(t *testing.T) {
	// RFC 7515 appendix A.1: HS256 over a known header and payload with a known key.
	key, err := base64.RawURLEncoding.DecodeString(
		"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{key: key}
	const unsigned = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	const want = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if got := encoding.EncodeToString(s.sign(unsigned)); got != want {
		t.Errorf("signature = %s, want %s (RFC 7515 A.1)", got, want)
	}
}

func TestNewSignerRejectsShortKey(t *testing.T) {
	if _, err := NewSigner([]byte("short"), time.Hour, time.Now); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("NewSigner = %v, want a key length error", err)
	}
}
