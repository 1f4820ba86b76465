package vipay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// TokenFunc fetches a new service credential (a JWT; they live at most 10 minutes),
// e.g. from your secret broker or `python -m server token --role service`.
type TokenFunc func(ctx context.Context) (string, error)

// CredentialSource is gRPC per-RPC credentials that refresh the token before it
// expires (RefreshBefore ahead of the JWT's exp claim; default 1 minute), fetching at
// most once at a time. Concurrent calls share the current token.
type CredentialSource struct {
	Fetch         TokenFunc
	RefreshBefore time.Duration
	RequireTLS    bool
	Now           func() time.Time // for tests; default time.Now

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Token is the current token, fetched anew when it expires within RefreshBefore.
func (s *CredentialSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	margin := s.RefreshBefore
	if margin == 0 {
		margin = time.Minute
	}
	if s.token != "" && now().Add(margin).Before(s.expires) {
		return s.token, nil
	}
	token, err := s.Fetch(ctx)
	if err != nil {
		return "", err
	}
	exp, err := JWTExpiry(token)
	if err != nil {
		return "", err
	}
	s.token, s.expires = token, exp
	return token, nil
}

func (s *CredentialSource) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	token, err := s.Token(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

func (s *CredentialSource) RequireTransportSecurity() bool { return s.RequireTLS }

// JWTExpiry reads the exp claim of a JWT (not verified: the server does that).
func JWTExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("vipay: not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, err
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, errors.New("vipay: the JWT has no exp claim")
	}
	return time.Unix(claims.Exp, 0), nil
}
