package vipay_test

import (
	"errors"
	"net/http"
	"strconv"
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
