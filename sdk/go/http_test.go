package vipay_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	vipay "github.com/vipay/vipay/sdk/go"
	membershipv1 "github.com/vipay/vipay/sdk/go/gen/membership/v1"
	rechargev1 "github.com/vipay/vipay/sdk/go/gen/recharge/v1"
)

func user(t *testing.T, id int) *vipay.HTTPClient {
	return &vipay.HTTPClient{BaseURL: env(t, "VIPAY_HTTP"), Token: server(t, "token", "--user-id", strconv.Itoa(id))}
}

// 001/000/002/003 over HTTP against the live gateway: typed answers, typed refusals with the
// request id, and the 001/002 pagination iterators.
func TestHTTPClientFamiliesTypedAndPaged(t *testing.T) {
	c := user(t, 321)
	ids := map[int32]bool{}
	for i := 0; i < 5; i++ {
		o, err := c.CreateVipOrder(ctx(t), vipay.VipOrderArgs{Timezone: "Asia/Shanghai", Duration: 3, Level: "middle",
			PayMethod: "Alipay_AopApp"})
		if err != nil {
			t.Fatal(err)
		}
		ids[o.GetId()] = true
	}
	walked := map[int32]bool{}
	if err := c.EachVipOrder(ctx(t), 2, nil, func(o *membershipv1.VipOrder) error { walked[o.GetId()] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 5 || len(ids) != 5 {
		t.Fatalf("EachVipOrder walked %v, created %v", walked, ids)
	}
	_, err := c.CreateVipOrder(ctx(t), vipay.VipOrderArgs{Timezone: "Mars/Olympus", Duration: 3, Level: "middle",
		PayMethod: "Alipay_AopApp"})
	var he *vipay.HTTPError
	if !errors.As(err, &he) || he.Status != 422 || he.StatusName() == "" || len(he.Errors["timezone"]) == 0 || he.RequestID == "" {
		t.Fatalf("want HTTPError 422 naming timezone, got %#v", err)
	}
	anonymous := &vipay.HTTPClient{BaseURL: env(t, "VIPAY_HTTP")}
	if _, err := anonymous.GetMyMembership(ctx(t)); !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("want HTTPError 401, got %v", err)
	}

	index, err := c.GetChargeIndex(ctx(t))
	if err != nil || len(index.GetD().GetChargeList()) == 0 || len(index.GetD().GetPayTypes()) == 0 {
		t.Fatalf("charge index %v %v", index, err)
	}
	payType := index.GetD().GetPayTypes()[0].GetTypeName()
	if p, err := c.CreateChargePayment(ctx(t), index.GetD().GetChargeList()[0].GetId(), payType); err != nil ||
		p.GetD().GetCallPayInfo() == "" {
		t.Fatalf("charge payment %v %v", p, err)
	}
	var ee *vipay.EnvelopeError
	if _, err := c.CreateChargePayment(ctx(t), 987654, payType); !errors.As(err, &ee) || ee.Family != "000" ||
		ee.CodeName() != "NOT_FOUND" || ee.RequestID == "" {
		t.Fatalf("want 000 NOT_FOUND, got %#v", err)
	}

	c = user(t, 322) // a history of its own (the 000 payment above is a recharge order too)
	amounts, err := c.GetRecharge(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	plan := amounts.GetData().GetRechargeAmount()[0]
	numbers := map[string]bool{}
	for i := 0; i < 5; i++ {
		o, err := c.CreateRechargeOrder(ctx(t), vipay.RechargeOrderArgs{ID: plan.GetId(), Price: plan.GetPrice(),
			PayModeID: plan.GetPayModes()[0].GetId()})
		if err != nil {
			t.Fatal(err)
		}
		numbers[o.GetData().GetOrderNumber()] = true
	}
	records := map[string]bool{}
	if err := c.EachRechargeRecord(ctx(t), 2, nil, func(r *rechargev1.RechargeRecord) error {
		records[r.GetOrderNumber()] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(records) != len(numbers) || len(numbers) < 2 {
		t.Fatalf("EachRechargeRecord walked %v, created %v", records, numbers)
	}
	if _, err := c.CreateRechargeOrder(ctx(t), vipay.RechargeOrderArgs{ID: plan.GetId(), Price: "0.01",
		PayModeID: plan.GetPayModes()[0].GetId()}); !errors.As(err, &ee) || ee.Family != "002" || ee.CodeName() != "PRICE_MISMATCH" {
		t.Fatalf("want 002 PRICE_MISMATCH, got %#v", err)
	}

	center, err := c.GetRechargeCenter(ctx(t), 1, "APP", "")
	if err != nil || center.GetStatus() != 200 || center.GetData().GetPersonal().GetUserId() != 322 {
		t.Fatalf("recharge center %v %v", center, err)
	}
	if _, err := anonymous.GetRechargeCenter(ctx(t), 1, "APP", ""); !errors.As(err, &ee) || ee.Family != "003" ||
		ee.CodeName() != "UNAUTHENTICATED" || ee.RequestID == "" {
		t.Fatalf("want 003 UNAUTHENTICATED, got %#v", err)
	}
}

// Every 001 call the TypeScript and Python SDKs have: order read, check and delete (then 404),
// the agreement and start-up flags, an in-app purchase confirmed by CheckIapResult and then
// converted by ExchangeVip (403 before, when there was nothing to convert).
func TestHTTPClientMembershipEveryCall(t *testing.T) {
	anonymous := &vipay.HTTPClient{BaseURL: env(t, "VIPAY_HTTP")}
	if flags, err := anonymous.GetBootstrappers(ctx(t)); err != nil || !flags.GetVipSwitch() {
		t.Fatalf("bootstrappers %v %v", flags, err)
	}
	if html, err := anonymous.GetVipProtocol(ctx(t)); err != nil || !strings.Contains(html, "<") {
		t.Fatalf("protocol %q %v", html, err)
	}
	c := user(t, 323)
	o, err := c.CreateVipOrder(ctx(t), vipay.VipOrderArgs{Timezone: "Asia/Shanghai", Duration: 3, Level: "middle",
		PayMethod: "WechatPay_App"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetVipOrder(ctx(t), o.GetId()); err != nil || got.GetTradeNo() != o.GetTradeNo() {
		t.Fatalf("get order %v %v", got, err)
	}
	if check, err := c.CheckVipOrder(ctx(t), o.GetId()); err != nil || check.GetStatus() {
		t.Fatalf("check order %v %v", check, err)
	}
	if err := c.DeleteVipOrder(ctx(t), o.GetId()); err != nil {
		t.Fatal(err)
	}
	var he *vipay.HTTPError
	if _, err := c.GetVipOrder(ctx(t), o.GetId()); !errors.As(err, &he) || he.Status != http.StatusNotFound || he.RequestID == "" {
		t.Fatalf("want HTTPError 404 after delete, got %#v", err)
	}
	if _, err := c.ExchangeVip(ctx(t), "high"); !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Message == "" {
		t.Fatalf("want HTTPError 403 with nothing to convert, got %#v", err)
	}
	iap, err := c.CreateVipOrder(ctx(t), vipay.VipOrderArgs{Timezone: "Asia/Shanghai", Duration: 3, Level: "low",
		PayMethod: "Iap"})
	if err != nil {
		t.Fatal(err)
	}
	paid, err := c.CheckIapResult(ctx(t), iap.GetId(), server(t, "sandbox-receipt", strconv.Itoa(int(iap.GetId()))))
	if err != nil || paid.GetId() != iap.GetId() || paid.GetPayStatus() != 1 {
		t.Fatalf("check-iap-result %v %v", paid, err)
	}
	if check, err := c.CheckVipOrder(ctx(t), iap.GetId()); err != nil || !check.GetStatus() {
		t.Fatalf("check paid order %v %v", check, err)
	}
	if ex, err := c.ExchangeVip(ctx(t), "high"); err != nil || ex.GetConvertedDays() <= 0 {
		t.Fatalf("exchange %v %v", ex, err)
	}
	if mine, err := c.GetMyMembership(ctx(t)); err != nil || mine.GetCurrentLevel() != "high" {
		t.Fatalf("membership %v %v", mine, err)
	}
}
