package vipay

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	legacyv1 "github.com/vipay/vipay/sdk/go/gen/legacy/v1"
	openapiv1 "github.com/vipay/vipay/sdk/go/gen/openapi/v1"
)

// The 004 merchant API paths (docs/openapi.md).
const (
	ChargePath     = "/v1/openapi/order/VIPCharge"
	QueryOrderPath = "/v1/openapi/order/query"
	BalancePath    = "/v1/openapi/merchant/balance"
)

// parse ignores fields this version does not know (forward compatible).
var parse = protojson.UnmarshalOptions{DiscardUnknown: true}

// SigningString: METHOD, PATH, businessId, timestamp, nonce, body (verbatim), each + "\n".
func SigningString(method, path, businessID, timestamp, nonce string, body []byte) []byte {
	head := strings.Join([]string{method, path, businessID, timestamp, nonce}, "\n") + "\n"
	return append(append([]byte(head), body...), '\n')
}

// MerchantClient calls the 004 API. Refusals are *MerchantError; every call is safe to
// repeat (the charge is idempotent by bizCode), so network errors, 429/503 and 5000 are
// retried with the same body and a fresh nonce and timestamp per attempt.
type MerchantClient struct {
	BaseURL    string
	MerchantID string
	BusinessID string
	PrivateKey *rsa.PrivateKey // SHA256-RSA, or
	MD5Secret  string          // MD5
	HTTP       *http.Client    // default: a client with DefaultTimeout
	Retry      Retry
}

// ParseRSAPrivateKey reads a PKCS#8 or PKCS#1 PEM private key.
func ParseRSAPrivateKey(pemText []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemText)
	if block == nil {
		return nil, errors.New("vipay: no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, errors.New("vipay: not an RSA key")
	}
	return x509.ParsePKCS1PrivateKey(block.Bytes)
}

func (c *MerchantClient) sign(message []byte) (string, string, error) {
	if c.PrivateKey != nil {
		digest := sha256.Sum256(message)
		sig, err := rsa.SignPKCS1v15(rand.Reader, c.PrivateKey, crypto.SHA256, digest[:])
		return base64.StdEncoding.EncodeToString(sig), "SHA256-RSA", err
	}
	mac := hmac.New(md5.New, []byte(c.MD5Secret))
	mac.Write(message)
	return hex.EncodeToString(mac.Sum(nil)), "MD5", nil
}

// Post signs and sends payload (serialised once), parsing a success into out.
func (c *MerchantClient) Post(ctx context.Context, path string, payload map[string]string, out proto.Message) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	return c.Retry.do(ctx, true, func() error {
		nonce, timestamp := newRequestID(), strconv.FormatInt(time.Now().UnixMilli(), 10)
		sign, signType, err := c.sign(SigningString("POST", path, c.BusinessID, timestamp, nonce, body))
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		sent := newRequestID()
		for k, v := range map[string]string{"Content-Type": "application/json; charset=utf-8", "businessId": c.BusinessID,
			"nonce": nonce, "timestamp": timestamp, "sign": sign, "signType": signType, "x-request-id": sent} {
			req.Header[k] = []string{v} // as written: the header names are case-sensitive in api-docs/004
		}
		res, err := client.Do(req)
		if err != nil {
			return &NetworkError{Err: err, RequestID: sent}
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err != nil {
			return &NetworkError{Err: err, RequestID: sent}
		}
		id := res.Header.Get("x-request-id")
		if id == "" {
			id = sent
		}
		var env struct {
			Status  *int32          `json:"status"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(raw, &env)
		if env.Status != nil && *env.Status == int32(legacyv1.OpenApiStatus_OPEN_API_STATUS_SUCCESS) {
			return parse.Unmarshal(raw, out)
		}
		code := int32(res.StatusCode)
		if env.Status != nil {
			code = *env.Status
		} else if res.StatusCode == 500 {
			code = int32(legacyv1.OpenApiStatus_OPEN_API_STATUS_INTERNAL)
		}
		msg := env.Message
		if env.Status == nil {
			msg = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		after := time.Duration(0)
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
			after = time.Duration(s) * time.Second
		}
		return &MerchantError{Status: OpenApiStatus(code), Message: msg, Data: env.Data, RequestID: id, RetryAfter: after}
	})
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ChargeArgs of VipCharge; BizCode is your order number (the charge is idempotent by it).
type ChargeArgs struct {
	ProductCode, Account, BizCode, Mobile, CallbackURL string
}

func (c *MerchantClient) VipCharge(ctx context.Context, a ChargeArgs) (*openapiv1.VipChargeResponse, error) {
	body := map[string]string{"merchantId": c.MerchantID, "businessId": c.BusinessID, "productCode": a.ProductCode,
		"account": a.Account, "bizCode": a.BizCode}
	if a.Mobile != "" {
		body["mobile"] = a.Mobile
	}
	if a.CallbackURL != "" {
		body["callbackUrl"] = a.CallbackURL
	}
	out := &openapiv1.VipChargeResponse{}
	return out, c.Post(ctx, ChargePath, body, out)
}

// QueryOrder by bizCode or orderCode.
func (c *MerchantClient) QueryOrder(ctx context.Context, bizCode, orderCode string) (*openapiv1.QueryOrderResponse, error) {
	body := map[string]string{"merchantId": c.MerchantID, "businessId": c.BusinessID}
	if bizCode != "" {
		body["bizCode"] = bizCode
	}
	if orderCode != "" {
		body["orderCode"] = orderCode
	}
	out := &openapiv1.QueryOrderResponse{}
	return out, c.Post(ctx, QueryOrderPath, body, out)
}

func (c *MerchantClient) Balance(ctx context.Context) (*openapiv1.QueryBalanceResponse, error) {
	out := &openapiv1.QueryBalanceResponse{}
	return out, c.Post(ctx, BalancePath, map[string]string{"merchantId": c.MerchantID, "businessId": c.BusinessID}, out)
}
