package vipay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	membershipv1 "github.com/vipay/vipay/sdk/go/gen/membership/v1"
)

// The 001 membership calls of HTTPClient (http.go): answers parsed into the generated types,
// refusals *HTTPError with the HTTP status.

// GetBootstrappers: start-up flags (public), VipSwitch.
func (c *HTTPClient) GetBootstrappers(ctx context.Context) (*membershipv1.GetBootstrappersResponse, error) {
	out := &membershipv1.GetBootstrappersResponse{}
	return out, c.call(ctx, "GET", "/api/v2/bootstrappers", nil, nil, true, membership(200, out))
}

func (c *HTTPClient) GetVipConfigs(ctx context.Context) (*membershipv1.GetVipConfigsResponse, error) {
	out := &membershipv1.GetVipConfigsResponse{}
	return out, c.call(ctx, "GET", "/api/v2/vip/configs", nil, nil, true, membership(200, out))
}

// VipOrderArgs: the body of POST /api/v2/vip/orders (snake_case as api-docs/001 writes it).
type VipOrderArgs struct {
	Timezone  string `json:"timezone"`
	Duration  int32  `json:"duration"`
	Level     string `json:"level"`
	PayMethod string `json:"pay_method"`
	Quantity  int32  `json:"quantity,omitempty"`
	RequestID string `json:"request_id,omitempty"` // the same request_id answers the same order (then retried)
	OpenID    string `json:"openid,omitempty"`
}

// CreateVipOrder: 201 Created.
func (c *HTTPClient) CreateVipOrder(ctx context.Context, a VipOrderArgs) (*membershipv1.CreateVipOrderResponse, error) {
	out := &membershipv1.CreateVipOrderResponse{}
	return out, c.call(ctx, "POST", "/api/v2/vip/orders", a, nil, a.RequestID != "", membership(201, out))
}

// ListVipOrders: one page (offset/limit), newest first; filters: s, d (YYYY-MM-DD), timezone.
func (c *HTTPClient) ListVipOrders(ctx context.Context, offset, limit int, filters url.Values) ([]*membershipv1.VipOrder, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	for k, v := range filters {
		q[k] = v
	}
	var orders []*membershipv1.VipOrder
	err := c.call(ctx, "GET", "/api/v2/vip/orders?"+q.Encode(), nil, nil, true, func(a answer) error {
		if a.status != 200 {
			return httpError(a)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(a.body, &items); err != nil {
			return err
		}
		orders = orders[:0]
		for _, item := range items {
			o := &membershipv1.VipOrder{}
			if err := parse.Unmarshal(item, o); err != nil {
				return err
			}
			orders = append(orders, o)
		}
		return nil
	})
	return orders, err
}

// EachVipOrder calls fn for every order, page after page (limit per page; 0: 15); fn
// returning an error stops the walk with that error.
func (c *HTTPClient) EachVipOrder(ctx context.Context, limit int, filters url.Values, fn func(*membershipv1.VipOrder) error) error {
	if limit <= 0 {
		limit = 15
	}
	for offset := 0; ; offset += limit {
		page, err := c.ListVipOrders(ctx, offset, limit, filters)
		if err != nil {
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(page) < limit {
			return nil
		}
	}
}

func (c *HTTPClient) GetMyMembership(ctx context.Context) (*membershipv1.MembershipStatus, error) {
	out := &membershipv1.MembershipStatus{}
	return out, c.call(ctx, "GET", "/api/v2/vip/membership", nil, nil, true, membership(200, out))
}

func (c *HTTPClient) GetVipOrder(ctx context.Context, id int32) (*membershipv1.VipOrder, error) {
	out := &membershipv1.VipOrder{}
	return out, c.call(ctx, "GET", fmt.Sprintf("/api/v2/vip/orders/%d", id), nil, nil, true, membership(200, out))
}

// DeleteVipOrder: 204 No Content. Attempted once (a second delete answers 404).
func (c *HTTPClient) DeleteVipOrder(ctx context.Context, id int32) error {
	return c.call(ctx, "DELETE", fmt.Sprintf("/api/v2/vip/orders/%d", id), nil, nil, false, func(a answer) error {
		if a.status != http.StatusNoContent {
			return httpError(a)
		}
		return nil
	})
}

// ExchangeVip: 201 Created, or *HTTPError 403 when there is nothing to convert. Attempted once.
func (c *HTTPClient) ExchangeVip(ctx context.Context, level string) (*membershipv1.ExchangeVipResponse, error) {
	out := &membershipv1.ExchangeVipResponse{}
	return out, c.call(ctx, "PATCH", "/api/v2/vip/exchange-vip", map[string]string{"level": level}, nil, false,
		membership(201, out))
}

// CheckIapResult verifies an App Store purchase for an Iap order and answers the order
// (*HTTPError 500 when the App Store did not confirm it). Retried: a paid order answers itself again.
func (c *HTTPClient) CheckIapResult(ctx context.Context, id int32, receipt string) (*membershipv1.VipOrder, error) {
	out := &membershipv1.VipOrder{}
	return out, c.call(ctx, "POST", fmt.Sprintf("/api/v2/vip/check-iap-result/%d", id),
		map[string]string{"receipt": receipt}, nil, true, membership(200, out))
}

// CheckVipOrder: Status is true once the payment was notified and the membership granted.
func (c *HTTPClient) CheckVipOrder(ctx context.Context, id int32) (*membershipv1.CheckVipOrderResponse, error) {
	out := &membershipv1.CheckVipOrderResponse{}
	return out, c.call(ctx, "GET", fmt.Sprintf("/api/v2/vip/check-order/%d", id), nil, nil, true, membership(200, out))
}

// GetVipProtocol: the membership agreement (text/html).
func (c *HTTPClient) GetVipProtocol(ctx context.Context) (string, error) {
	var html string
	return html, c.call(ctx, "GET", "/api/v2/vip/protocol", nil, nil, true, func(a answer) error {
		if a.status != http.StatusOK {
			return httpError(a)
		}
		html = string(a.body)
		return nil
	})
}
