package vipay_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vipay "github.com/vipay/vipay/sdk/go"
	legacyv1 "github.com/vipay/vipay/sdk/go/gen/legacy/v1"
	openapiv1 "github.com/vipay/vipay/sdk/go/gen/openapi/v1"
	rechargev1 "github.com/vipay/vipay/sdk/go/gen/recharge/v1"
)

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through make sdk-test", name)
	}
	return v
}

func merchant(t *testing.T, base string) *vipay.MerchantClient {
	pemText, err := os.ReadFile(env(t, "VIPAY_MERCHANT_KEY_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := vipay.ParseRSAPrivateKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	id := env(t, "VIPAY_MERCHANT_ID")
	return &vipay.MerchantClient{BaseURL: base, MerchantID: id, BusinessID: id, PrivateKey: key,
		Retry: vipay.Retry{BaseDelay: 10 * time.Millisecond}}
}

type seen struct {
	header http.Header
	body   string
	at     time.Time
}

// flaky answers status/body to the first `failures` requests, then forwards to target.
func flaky(t *testing.T, target string, failures int, status int, header map[string]string, body string) (*httptest.Server, *[]seen) {
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Clone(), string(raw), time.Now()})
		n := len(got)
		mu.Unlock()
		if n <= failures || target == "" {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		req, _ := http.NewRequest(r.Method, target+r.URL.RequestURI(), strings.NewReader(string(raw)))
		for k, v := range r.Header {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer res.Body.Close()
		w.Header().Set("x-request-id", res.Header.Get("x-request-id"))
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestUnknownResponseFieldsAreIgnored(t *testing.T) {
	srv, _ := flaky(t, "", 0, 200, nil,
		`{"status":200,"message":"success","data":{"merchantId":"m","balance":1.5,"currency":"CNY"},"extra":[1]}`)
	got, err := merchant(t, srv.URL).Balance(ctx(t))
	if err != nil || got.GetData().GetBalance() != 1.5 {
		t.Fatalf("balance with an extra field: %v %v", got, err)
	}
}

func TestTypedErrorsWithRequestID(t *testing.T) {
	m := merchant(t, env(t, "VIPAY_HTTP"))
	_, err := m.QueryOrder(ctx(t), "no-such-order", "")
	var me *vipay.MerchantError
	if !errors.As(err, &me) || me.Status != legacyv1.OpenApiStatus_OPEN_API_STATUS_ORDER_NOT_FOUND ||
		me.StatusName() != "ORDER_NOT_FOUND" || len(me.RequestID) < 16 {
		t.Fatalf("want MerchantError ORDER_NOT_FOUND with a request id, got %#v", err)
	}
	wrong := &vipay.MerchantClient{BaseURL: env(t, "VIPAY_HTTP"), MerchantID: m.MerchantID, BusinessID: m.BusinessID,
		MD5Secret: "not-the-secret"}
	if _, err := wrong.Balance(ctx(t)); !errors.As(err, &me) || me.Status != legacyv1.OpenApiStatus_OPEN_API_STATUS_SIGN_INVALID {
		t.Fatalf("want SIGN_INVALID, got %v", err)
	}
	wallet := rechargev1.NewWalletServiceClient(dial(t, 0, "service"))
	_, err = wallet.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 305, AmountFen: 1, Reference: "o:go-t",
		RequestId: "go-typed-1"})
	e := vipay.AsError(err)
	if e == nil || e.Reason != legacyv1.ErrorReason_ERROR_REASON_INSUFFICIENT_BALANCE || len(e.RequestID) != 32 ||
		status.Code(err) != codes.FailedPrecondition || vipay.ReasonOf(err) != e.Reason {
		t.Fatalf("want typed INSUFFICIENT_BALANCE with request id, got %#v", e)
	}
}

func TestMerchantRetryFreshNonceSameBodyChargedOnce(t *testing.T) {
	direct := merchant(t, env(t, "VIPAY_HTTP"))
	before, err := direct.Balance(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, got := flaky(t, env(t, "VIPAY_HTTP"), 2, 503, nil, "upstream unavailable")
	biz := fmt.Sprintf("go-retry-%d", time.Now().UnixNano())
	reply, err := merchant(t, srv.URL).VipCharge(ctx(t), vipay.ChargeArgs{ProductCode: env(t, "VIPAY_MERCHANT_PRODUCT"),
		Account: env(t, "VIPAY_MERCHANT_ACCOUNT"), BizCode: biz})
	if err != nil || reply.GetData().GetBizCode() != biz || len(*got) != 3 {
		t.Fatalf("charge through a flaky proxy: %v %v (%d attempts)", reply, err, len(*got))
	}
	nonces := map[string]bool{}
	for _, s := range *got {
		nonces[s.header.Get("nonce")] = true
		if s.body != (*got)[0].body {
			t.Fatal("the body changed between attempts")
		}
	}
	if len(nonces) != 3 {
		t.Fatalf("want a fresh nonce per attempt, got %v", nonces)
	}
	after, _ := direct.Balance(ctx(t))
	if charged := math.Round((before.GetData().GetBalance() - after.GetData().GetBalance()) * 100); charged != 451 {
		t.Fatalf("charged %v fen, want 451 once", charged)
	}
}

func TestMerchantRetryAfterAndMaximum(t *testing.T) {
	srv, got := flaky(t, env(t, "VIPAY_HTTP"), 1, 429, map[string]string{"Retry-After": "1"}, "slow down")
	if _, err := merchant(t, srv.URL).Balance(ctx(t)); err != nil || len(*got) != 2 {
		t.Fatalf("429 then success: %v (%d)", err, len(*got))
	}
	if gap := (*got)[1].at.Sub((*got)[0].at); gap < 950*time.Millisecond {
		t.Fatalf("Retry-After not honoured: %v", gap)
	}
	down, calls := flaky(t, "", 0, 500, nil, `{"status":5000,"message":"internal error","data":null}`)
	m := merchant(t, down.URL)
	m.Retry.MaxRetries = 3
	var me *vipay.MerchantError
	if _, err := m.Balance(ctx(t)); !errors.As(err, &me) || me.Status != legacyv1.OpenApiStatus_OPEN_API_STATUS_INTERNAL ||
		len(*calls) != 4 {
		t.Fatalf("5000 retried up to the maximum: %v (%d)", err, len(*calls))
	}
	r := vipay.Retry{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	spread := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		d0, d3 := r.Backoff(0, 0), r.Backoff(3, 0)
		if d0 < 50*time.Millisecond || d0 > 100*time.Millisecond || d3 < 400*time.Millisecond || d3 > 800*time.Millisecond ||
			r.Backoff(20, 0) > time.Second || r.Backoff(0, 900*time.Millisecond) < 900*time.Millisecond {
			t.Fatalf("backoff %v %v", d0, d3)
		}
		spread[r.Backoff(2, 0)] = true
	}
	if len(spread) < 10 {
		t.Fatal("no jitter")
	}
}

// A wallet server that fails the first attempts with UNAVAILABLE.
type failingWallet struct {
	rechargev1.UnimplementedWalletServiceServer
	mu    sync.Mutex
	calls int
}

func (f *failingWallet) GetWallet(context.Context, *rechargev1.GetWalletRequest) (*rechargev1.GetWalletResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= 2 {
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	return &rechargev1.GetWalletResponse{BalanceFen: 7}, nil
}

func (f *failingWallet) DebitWallet(context.Context, *rechargev1.DebitWalletRequest) (*rechargev1.DebitWalletResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return nil, status.Error(codes.Unavailable, "down")
}

func TestGrpcRetryAgainstAServerFailingFirst(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := &failingWallet{}
	rechargev1.RegisterWalletServiceServer(srv, fake)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := vipay.Dial(lis.Addr().String(), "t", vipay.WithCalls(vipay.CallOptions{Retry: vipay.Retry{BaseDelay: time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := rechargev1.NewWalletServiceClient(conn)
	if got, err := w.GetWallet(ctx(t), &rechargev1.GetWalletRequest{UserId: 1}); err != nil || got.BalanceFen != 7 || fake.calls != 3 {
		t.Fatalf("read retried until it succeeded: %v %v (%d calls)", got, err, fake.calls)
	}
	fake.calls = 0
	if _, err := w.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 1, AmountFen: 1, Reference: "r"}); err == nil ||
		fake.calls != 1 {
		t.Fatalf("a debit without request_id is not retried (%d calls)", fake.calls)
	}
	fake.calls = 0
	_, err = w.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 1, AmountFen: 1, Reference: "r", RequestId: "q"})
	if e := vipay.AsError(err); e == nil || !e.Retryable() || fake.calls != 3 {
		t.Fatalf("with request_id: retried to the maximum (%d calls) %v", fake.calls, err)
	}
}

func TestEachWalletEntryFollowsPageTokens(t *testing.T) {
	w := rechargev1.NewWalletServiceClient(dial(t, 0, "service"))
	for i := 0; i < 5; i++ {
		if _, err := w.CreditWallet(ctx(t), &rechargev1.CreditWalletRequest{UserId: 306, AmountFen: 10,
			Reference: fmt.Sprintf("p:%d", i), RequestId: fmt.Sprintf("go-page-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[int64]bool{}
	err := vipay.EachWalletEntry(ctx(t), w, &rechargev1.GetWalletRequest{UserId: 306, PageSize: 2},
		func(e *rechargev1.WalletEntry) error { ids[e.Id] = true; return nil })
	if err != nil || len(ids) != 5 {
		t.Fatalf("walked %d entries: %v", len(ids), err)
	}
}

func TestCredentialSourceRefreshesBeforeExpiry(t *testing.T) {
	fetched := 0
	now := time.Now()
	source := &vipay.CredentialSource{RefreshBefore: time.Minute, Now: func() time.Time { return now },
		Fetch: func(context.Context) (string, error) {
			fetched++
			return server(t, "token", "--user-id", "0", "--role", "service", "--ttl", "300"), nil
		}}
	conn, err := vipay.DialWithSource(env(t, "VIPAY_GRPC"), source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := rechargev1.NewWalletServiceClient(conn)
	for i := 0; i < 3; i++ {
		if _, err := w.GetWallet(ctx(t), &rechargev1.GetWalletRequest{UserId: 307}); err != nil {
			t.Fatal(err)
		}
	}
	if fetched != 1 {
		t.Fatalf("fetched %d times for three calls, want 1", fetched)
	}
	now = now.Add(4*time.Minute + 5*time.Second) // within a minute of the 5-minute expiry
	if _, err := w.GetWallet(ctx(t), &rechargev1.GetWalletRequest{UserId: 307}); err != nil || fetched != 2 {
		t.Fatalf("want a refresh before expiry: fetched %d, %v", fetched, err)
	}
}

func TestCallbackHandler(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, err := vipay.ParseRSAPublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"merchantId":"m1","businessId":"b1","orderCode":"VC1","state":"success","status":200,"settlementPrice":4.51,"addedLater":1}`)
	signed := func(merchantID string, ts int64, nonce string) http.Header {
		tsText := strconv.FormatInt(ts, 10)
		digest := sha256.Sum256(vipay.CallbackSigningString(merchantID, "b1", tsText, nonce, body))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		return http.Header{"Businessid": {"b1"}, "Timestamp": {tsText}, "Nonce": {nonce},
			"Sign": {base64.StdEncoding.EncodeToString(sig)}}
	}
	var reports []*openapiv1.StatusCallback
	h := &vipay.CallbackHandler{PlatformKey: pub, MerchantID: "m1"}
	srv := httptest.NewServer(h.Handler(func(r *openapiv1.StatusCallback) error { reports = append(reports, r); return nil }))
	defer srv.Close()
	post := func(header http.Header) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(string(body)))
		req.Header = header
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		text, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(text))
	}
	fresh := signed("m1", time.Now().UnixMilli(), "nonce-0001")
	if code, text := post(fresh); code != 200 || text != "SUCCESS" || len(reports) != 1 || reports[0].GetOrderCode() != "VC1" {
		t.Fatalf("first delivery: %d %q %v", code, text, reports)
	}
	for name, c := range map[string]struct {
		header http.Header
		want   string
	}{
		"replayed":        {fresh, "replayed"},
		"other merchant":  {signed("m2", time.Now().UnixMilli(), "nonce-0002"), "bad_signature"},
		"stale timestamp": {signed("m1", time.Now().Add(-time.Hour).UnixMilli(), "nonce-0003"), "stale"},
	} {
		if code, text := post(c.header); code != 400 || text != c.want {
			t.Fatalf("%s: %d %q, want 400 %q", name, code, text, c.want)
		}
	}
	if len(reports) != 1 {
		t.Fatal("a refused report reached the application")
	}
}
