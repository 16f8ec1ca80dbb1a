package httpserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scopes a named API token may carry. admin implies every other scope;
// write implies read.
const (
	// ScopeRead reads APIs that are not open to everyone.
	ScopeRead = "read"
	// ScopeWrite makes ordinary changes: acknowledge, resolve, note,
	// override, silence, deploy marks.
	ScopeWrite = "write"
	// ScopeIngest pushes telemetry (OTLP, remote write) when the collector
	// requires a token.
	ScopeIngest = "ingest"
	// ScopeGateGrant grants and revokes deploy-gate exceptions.
	ScopeGateGrant = "gate:grant"
	// ScopeAdmin does everything, including reloads.
	ScopeAdmin = "admin"
)

// Scopes lists the known scopes.
var Scopes = []string{ScopeRead, ScopeWrite, ScopeIngest, ScopeGateGrant, ScopeAdmin}

// LegacyTokenName is the principal of the single api_token: an admin whose
// actions are recorded under this name.
const LegacyTokenName = "api_token"

// Token is one named API token (configuration key api_tokens[]).
type Token struct {
	// Name is recorded as the actor of every change made with the token.
	Name string `mapstructure:"name"`
	// Token is the bearer secret.
	Token string `mapstructure:"token" secret:"true"`
	// Scopes are what the token may do (read, write, ingest, gate:grant,
	// admin).
	Scopes []string `mapstructure:"scopes"`
}

// ValidateTokens checks api_tokens: names and secrets present and unique,
// scopes known.
func ValidateTokens(tokens []Token) error {
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, t := range tokens {
		key := fmt.Sprintf("api_tokens[%d]", i)
		if strings.TrimSpace(t.Name) == "" {
			return fmt.Errorf("%s.name: must not be empty", key)
		}
		if names[t.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, t.Name)
		}
		names[t.Name] = true
		if len(t.Token) < 8 {
			return fmt.Errorf("%s.token: must be at least 8 characters", key)
		}
		if secrets[t.Token] {
			return fmt.Errorf("%s.token: the same secret is given to two tokens", key)
		}
		secrets[t.Token] = true
		if len(t.Scopes) == 0 {
			return fmt.Errorf("%s.scopes: must not be empty (one or more of %s)", key, strings.Join(Scopes, ", "))
		}
		for j, s := range t.Scopes {
			if !slices.Contains(Scopes, s) {
				return fmt.Errorf("%s.scopes[%d]: %q is not one of %s", key, j, s, strings.Join(Scopes, ", "))
			}
		}
	}
	return nil
}

// Principal is who makes a request: the name of the token it carried and
// that token's scopes.
type Principal struct {
	Name   string
	Scopes []string
}

// Can reports whether p holds scope (admin holds every scope, write holds
// read).
func (p *Principal) Can(scope string) bool {
	if p == nil {
		return false
	}
	for _, s := range p.Scopes {
		if s == scope || s == ScopeAdmin || (s == ScopeWrite && scope == ScopeRead) {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of a request, nil when it carried
// no known token (or no tokens are configured).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Actor is the name to record for a change made by the request: the
// principal's name when the request carried a token. Without one (no
// tokens configured, the embedded demo) it is fallback, the name the
// caller gave, which nothing has verified.
func Actor(r *http.Request, fallback string) string {
	if p := PrincipalFrom(r.Context()); p != nil {
		return p.Name
	}
	return fallback
}

// Authenticator maps bearer secrets to principals.
type Authenticator struct {
	tokens []authToken
}

type authToken struct {
	sum [sha256.Size]byte
	p   *Principal
}

// NewAuthenticator builds an Authenticator from the legacy single token
// (an admin named LegacyTokenName, when set) and the named tokens.
func NewAuthenticator(legacy string, tokens []Token) *Authenticator {
	a := &Authenticator{}
	if legacy != "" {
		a.tokens = append(a.tokens, authToken{sum: sha256.Sum256([]byte(legacy)), p: &Principal{Name: LegacyTokenName, Scopes: []string{ScopeAdmin}}})
	}
	for _, t := range tokens {
		a.tokens = append(a.tokens, authToken{sum: sha256.Sum256([]byte(t.Token)), p: &Principal{Name: t.Name, Scopes: slices.Clone(t.Scopes)}})
	}
	return a
}

// Enabled reports whether any token is configured.
func (a *Authenticator) Enabled() bool { return a != nil && len(a.tokens) > 0 }

// CanAny reports whether some configured token holds scope.
func (a *Authenticator) CanAny(scope string) bool {
	if a == nil {
		return false
	}
	for _, t := range a.tokens {
		if t.p.Can(scope) {
			return true
		}
	}
	return false
}

// Authenticate returns the principal of a bearer secret, nil when none
// matches. Every token is compared, in constant time, whatever matched.
func (a *Authenticator) Authenticate(secret string) *Principal {
	if a == nil || secret == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(secret))
	var found *Principal
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = t.p
		}
	}
	return found
}

// BearerSecret is the secret of an "Authorization: Bearer ..." header.
func BearerSecret(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// RequireScope wraps h so that, when tokens are configured, only a
// principal holding scope reaches it: 401 without a known token, 403 with
// one that lacks the scope. With no tokens configured it lets everyone
// through, as the embedded demo does.
func (a *Authenticator) RequireScope(scope string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Enabled() {
			h.ServeHTTP(w, r)
			return
		}
		p := PrincipalFrom(r.Context())
		if p == nil {
			p = a.Authenticate(BearerSecret(r))
			if p != nil {
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
		}
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="burnrate"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
			return
		}
		if !p.Can(scope) {
			WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %q lacks the %q scope", p.Name, scope))
			return
		}
		h.ServeHTTP(w, r)
	})
}
