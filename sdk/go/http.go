package vipay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	legacyv1 "github.com/vipay/vipay/sdk/go/gen/legacy/v1"
	rechargev1 "github.com/vipay/vipay/sdk/go/gen/recharge/v1"
)

// HTTPClient calls the user-facing HTTP APIs through the gateway: membership (001), charge
// (000), recharge (002) and the mall's recharge center (003), as the signed-in user (Token:
// Authorization: Bearer; or AccessToken: the Access-Token header). Answers are parsed into the
// generated types (unknown fields ignored); refusals are *HTTPError (001: the HTTP status) or
// *EnvelopeError (000/002/003: HTTP 200 and the family's code). Reads are retried; calls that
// create something are attempted once (CreateVipOrder is retried when it carries a request_id).
type HTTPClient struct {
	BaseURL     string
	Token       string
	AccessToken string
	HTTP        *http.Client // default: a client with DefaultTimeout
	Retry       Retry
}

// HTTPError is a 001 refusal: the HTTP status (legacyv1.MembershipHttpStatus) and
// {"message", "errors": {field: [..]}}.
type HTTPError struct {
	Status     int
	Message    string
	Errors     map[string][]string
	RequestID  string
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s (request %s)", e.Status, e.StatusName(), e.Message, e.RequestID)
}

// StatusName is the declared name without its prefix, e.g. "UNPROCESSABLE" ("" when undeclared).
func (e *HTTPError) StatusName() string {
	name, ok := legacyv1.MembershipHttpStatus_name[int32(e.Status)]
	if !ok {
		return ""
	}
	return strings.TrimPrefix(name, "MEMBERSHIP_HTTP_STATUS_")
}

// Retryable: 429 and 502/503/504.
func (e *HTTPError) Retryable() bool { return transient(e.Status) }

// EnvelopeError is a 000/002 (`c` / `code`: legacyv1.RechargeCode) or 003 (`status`:
// legacyv1.YoshopStatus) refusal, answered with HTTP 200; Family is "000", "002", "003",
// or "http" when no envelope came back (Code is then the HTTP status).
type EnvelopeError struct {
	Family     string
	Code       int32
	Message    string
	Data       []byte // the envelope's data, raw JSON
	RequestID  string
	RetryAfter time.Duration
}

func (e *EnvelopeError) Error() string {
	return fmt.Sprintf("%s %d %s: %s (request %s)", e.Family, e.Code, e.CodeName(), e.Message, e.RequestID)
}

// CodeName is the declared name without its prefix, e.g. "PRICE_MISMATCH" ("" when undeclared).
func (e *EnvelopeError) CodeName() string {
	if e.Family == "003" {
		return strings.TrimPrefix(legacyv1.YoshopStatus_name[e.Code], "YOSHOP_STATUS_")
	}
	return strings.TrimPrefix(legacyv1.RechargeCode_name[e.Code], "RECHARGE_CODE_")
}

// Retryable: 429 and 502/503/504 (in the status or the 000/002 code).
func (e *EnvelopeError) Retryable() bool { return e.Family != "003" && transient(int(e.Code)) }

func transient(code int) bool { return code == 429 || code == 502 || code == 503 || code == 504 }

// answer is one HTTP exchange.
type answer struct {
	status     int
	body       []byte
	requestID  string
	retryAfter time.Duration
}

func (c *HTTPClient) call(ctx context.Context, method, path string, body any, header map[string]string,
	idempotent bool, handle func(answer) error) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	return c.Retry.do(ctx, idempotent, func() error {
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		sent := newRequestID()
		req.Header.Set("x-request-id", sent)
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		if c.AccessToken != "" {
			req.Header.Set("Access-Token", c.AccessToken)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			return &NetworkError{Err: err, RequestID: sent}
		}
		defer res.Body.Close()
		got, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		if err != nil {
			return &NetworkError{Err: err, RequestID: sent}
		}
		a := answer{status: res.StatusCode, body: got, requestID: res.Header.Get("x-request-id")}
		if a.requestID == "" {
			a.requestID = sent
		}
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
			a.retryAfter = time.Duration(s) * time.Second
		}
		return handle(a)
	})
}

// membership: a 001 answer with status ok parsed into out, else *HTTPError.
func membership(ok int, out proto.Message) func(answer) error {
	return func(a answer) error {
		if a.status != ok {
			return httpError(a)
		}
		return parse.Unmarshal(a.body, out)
	}
}

func httpError(a answer) *HTTPError {
	var b struct {
		Message string              `json:"message"`
		Errors  map[string][]string `json:"errors"`
	}
	if json.Unmarshal(a.body, &b) != nil {
		b.Message = strings.TrimSpace(string(a.body[:min(len(a.body), 200)]))
	}
	return &HTTPError{Status: a.status, Message: b.Message, Errors: b.Errors, RequestID: a.requestID,
		RetryAfter: a.retryAfter}
}

// enveloped: a 000/002/003 success parsed into out, else *EnvelopeError.
func enveloped(family string, out proto.Message) func(answer) error {
	return func(a answer) error {
		var env map[string]json.RawMessage
		if a.status != 200 || json.Unmarshal(a.body, &env) != nil {
			return &EnvelopeError{Family: "http", Code: int32(a.status),
				Message: strings.TrimSpace(string(a.body[:min(len(a.body), 200)])), RequestID: a.requestID,
				RetryAfter: a.retryAfter}
		}
		keys := map[string][3]string{"000": {"c", "m", "d"}, "002": {"code", "message", "data"},
			"003": {"status", "message", "data"}}[family]
		var code int32
		_ = json.Unmarshal(env[keys[0]], &code)
		refused := code != 0
		if family == "002" {
			refused = string(env["success"]) != "true"
		} else if family == "003" {
			refused = code != int32(legacyv1.YoshopStatus_YOSHOP_STATUS_OK)
		}
		if !refused {
			return parse.Unmarshal(a.body, out)
		}
		var message string
		_ = json.Unmarshal(env[keys[1]], &message)
		return &EnvelopeError{Family: family, Code: code, Message: message, Data: env[keys[2]],
			RequestID: a.requestID, RetryAfter: a.retryAfter}
	}
}

// --- 000 ---

func (c *HTTPClient) GetChargeIndex(ctx context.Context) (*rechargev1.GetChargeIndexResponse, error) {
	out := &rechargev1.GetChargeIndexResponse{}
	return out, c.call(ctx, "GET", "/charge/index", nil, nil, true, enveloped("000", out))
}

// CreateChargePayment: attempted once (creates a payment).
func (c *HTTPClient) CreateChargePayment(ctx context.Context, id int32, payType string) (*rechargev1.CreateChargePaymentResponse, error) {
	out := &rechargev1.CreateChargePaymentResponse{}
	body := map[string]any{"id": id, "payType": payType}
	return out, c.call(ctx, "POST", "/charge/pay", body, nil, false, enveloped("000", out))
}

// --- 002 ---

func (c *HTTPClient) GetRecharge(ctx context.Context) (*rechargev1.GetRechargeResponse, error) {
	out := &rechargev1.GetRechargeResponse{}
	return out, c.call(ctx, "GET", "/api/recharge", nil, nil, true, enveloped("002", out))
}

// RechargeOrderArgs: the body of POST /api/recharge/order.
type RechargeOrderArgs struct {
	ID         int32  `json:"id"`
	Price      string `json:"price"`
	PayModeID  int32  `json:"payModeId"`
	GoodsID    int32  `json:"goodsId,omitempty"`
	VerifyCode string `json:"_verifyCode,omitempty"`
	OpenID     string `json:"openid,omitempty"`
}

// CreateRechargeOrder: attempted once (creates an order).
func (c *HTTPClient) CreateRechargeOrder(ctx context.Context, a RechargeOrderArgs) (*rechargev1.CreateRechargeOrderResponse, error) {
	out := &rechargev1.CreateRechargeOrderResponse{}
	return out, c.call(ctx, "POST", "/api/recharge/order", a, nil, false, enveloped("002", out))
}

// GetRechargeHistory: one page (1-based); filters: startDate, endDate, orderState.
func (c *HTTPClient) GetRechargeHistory(ctx context.Context, page, rows int, filters url.Values) (*rechargev1.GetRechargeHistoryResponse, error) {
	q := url.Values{"page": {strconv.Itoa(page)}, "rows": {strconv.Itoa(rows)}}
	for k, v := range filters {
		q[k] = v
	}
	out := &rechargev1.GetRechargeHistoryResponse{}
	return out, c.call(ctx, "GET", "/api/recharge/history?"+q.Encode(), nil, nil, true, enveloped("002", out))
}

// EachRechargeRecord calls fn for every record matching the filters, page after page
// (rows per page; 0: 20).
func (c *HTTPClient) EachRechargeRecord(ctx context.Context, rows int, filters url.Values, fn func(*rechargev1.RechargeRecord) error) error {
	if rows <= 0 {
		rows = 20
	}
	seen := 0
	for page := 1; ; page++ {
		res, err := c.GetRechargeHistory(ctx, page, rows, filters)
		if err != nil {
			return err
		}
		records := res.GetData().GetRows()
		for _, r := range records {
			if err := fn(r); err != nil {
				return err
			}
		}
		seen += len(records)
		if len(records) < rows || seen >= int(res.GetData().GetTotal()) {
			return nil
		}
	}
}

// --- 003 ---

// GetRechargeCenter: the route travels in the query (/index.php?s=...); client defaults to platform.
func (c *HTTPClient) GetRechargeCenter(ctx context.Context, storeID int32, platform, client string) (*rechargev1.GetRechargeCenterResponse, error) {
	if client == "" {
		client = platform
	}
	q := url.Values{"s": {"/api/recharge/center"}, "client": {client}}
	out := &rechargev1.GetRechargeCenterResponse{}
	header := map[string]string{"storeId": strconv.Itoa(int(storeID)), "platform": platform}
	return out, c.call(ctx, "GET", "/index.php?"+q.Encode(), nil, header, true, enveloped("003", out))
}
