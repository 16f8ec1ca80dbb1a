package demoapp

import (
	"crypto/subtle"
	"net/http"

	"github.com/burnrate/burnrate/demoapp/resilience"
)

// TierSecretHeader carries the platform's internal secret on the calls one
// tier makes to another. The cache and the store answer writes only with
// it: they are internal tiers, and a write that skips the API (a PUT on the
// cache's /kv/) would change what the edge serves with no check at all.
const TierSecretHeader = "X-Burnrate-Tier-Secret"

// requireTierSecret refuses every request but GET, HEAD and OPTIONS without
// secret in TierSecretHeader (401). An empty secret guards nothing: a
// single-tier process run without api_token, as before.
func requireTierSecret(secret string, next http.Handler) http.Handler {
	if secret == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			got := r.Header.Get(TierSecretHeader)
			if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
				http.Error(w, "writes to this tier need the platform's internal secret ("+TierSecretHeader+")", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tierSecretTransport sends secret on every call through base (a fresh
// network transport when base is nil).
func tierSecretTransport(secret string, base http.RoundTripper) http.RoundTripper {
	if secret == "" {
		return base
	}
	if base == nil {
		base = resilience.NewTransport()
	}
	return secretRoundTripper{secret: secret, base: base}
}

type secretRoundTripper struct {
	secret string
	base   http.RoundTripper
}

func (s secretRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(TierSecretHeader, s.secret)
	return s.base.RoundTrip(r)
}
