package vipay

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openapiv1 "github.com/vipay/vipay/sdk/go/gen/openapi/v1"
)

// CallbackSigningString: CALLBACK, YOUR merchantId, businessId, timestamp, nonce, body, each + "\n".
func CallbackSigningString(merchantID, businessID, timestamp, nonce string, body []byte) []byte {
	head := strings.Join([]string{"CALLBACK", merchantID, businessID, timestamp, nonce}, "\n") + "\n"
	return append(append([]byte(head), body...), '\n')
}

// NonceStore remembers accepted nonces: Claim is true the first time key is seen within ttl.
// Share one (e.g. Redis SET NX PX) between processes to refuse replays across them.
type NonceStore interface {
	Claim(key string, ttl time.Duration) (bool, error)
}

// MemoryNonceStore is the default store (one process).
type MemoryNonceStore struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *MemoryNonceStore) Claim(key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	for k, until := range m.seen {
		if !until.After(now) {
			delete(m.seen, k)
		}
	}
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	m.seen[key] = now.Add(ttl)
	return true, nil
}

// CallbackError says why a status callback was refused.
type CallbackError struct{ Reason string } // missing_header | stale | bad_signature | bad_body | wrong_merchant | replayed

func (e *CallbackError) Error() string { return "vipay callback refused: " + e.Reason }

// CallbackHandler verifies status callbacks: the platform's signature over a text with YOUR
// merchantId, the timestamp window, and the nonce (replays refused through Store).
type CallbackHandler struct {
	PlatformKey *rsa.PublicKey
	MerchantID  string
	Store       NonceStore    // default: a MemoryNonceStore
	MaxSkew     time.Duration // default 5 minutes
	once        sync.Once
}

// ParseRSAPublicKey reads a PEM (SubjectPublicKeyInfo) public key.
func ParseRSAPublicKey(pemText []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemText)
	if block == nil {
		return nil, errors.New("vipay: no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	if rk, ok := k.(*rsa.PublicKey); ok {
		return rk, nil
	}
	return nil, errors.New("vipay: not an RSA key")
}

// Verify returns the typed report or a *CallbackError.
func (h *CallbackHandler) Verify(header http.Header, body []byte) (*openapiv1.StatusCallback, error) {
	h.once.Do(func() {
		if h.Store == nil {
			h.Store = &MemoryNonceStore{}
		}
		if h.MaxSkew == 0 {
			h.MaxSkew = 5 * time.Minute
		}
	})
	get := func(name string) string { // any case
		for k, v := range header {
			if strings.EqualFold(k, name) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	ts, nonce, business, sign := get("timestamp"), get("nonce"), get("businessId"), get("sign")
	if ts == "" || nonce == "" || business == "" || sign == "" {
		return nil, &CallbackError{"missing_header"}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > h.MaxSkew {
		return nil, &CallbackError{"stale"}
	}
	sig, err := base64.StdEncoding.DecodeString(sign)
	digest := sha256.Sum256(CallbackSigningString(h.MerchantID, business, ts, nonce, body))
	if err != nil || rsa.VerifyPKCS1v15(h.PlatformKey, crypto.SHA256, digest[:], sig) != nil {
		return nil, &CallbackError{"bad_signature"}
	}
	report := &openapiv1.StatusCallback{}
	if err := parse.Unmarshal(body, report); err != nil {
		return nil, &CallbackError{"bad_body"}
	}
	if report.GetMerchantId() != h.MerchantID {
		return nil, &CallbackError{"wrong_merchant"}
	}
	fresh, err := h.Store.Claim(business+"\n"+nonce, 2*h.MaxSkew)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, &CallbackError{"replayed"}
	}
	return report, nil
}

// Handler answers SUCCESS after onReport succeeds (process idempotently by orderCode: a
// report may come twice); 400 for a refused report, 500 when onReport fails (sent again later).
func (h *CallbackHandler) Handler(onReport func(*openapiv1.StatusCallback) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		report, err := h.Verify(r.Header, body)
		if err != nil {
			var ce *CallbackError
			if errors.As(err, &ce) {
				http.Error(w, ce.Reason, http.StatusBadRequest)
			} else {
				http.Error(w, "error", http.StatusInternalServerError)
			}
			return
		}
		if err := onReport(report); err != nil {
			http.Error(w, "error", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "SUCCESS")
	})
}
