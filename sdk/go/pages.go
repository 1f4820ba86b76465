package vipay

import (
	"context"

	rechargev1 "github.com/vipay/vipay/sdk/go/gen/recharge/v1"
)

// EachWalletEntry calls fn for every entry of a wallet, newest first, following
// next_page_token; fn returning an error stops the walk with that error.
func EachWalletEntry(ctx context.Context, c rechargev1.WalletServiceClient, req *rechargev1.GetWalletRequest,
	fn func(*rechargev1.WalletEntry) error) error {
	page := &rechargev1.GetWalletRequest{UserId: req.GetUserId(), StoreId: req.GetStoreId(), PageSize: req.GetPageSize()}
	for {
		res, err := c.GetWallet(ctx, page)
		if err != nil {
			return err
		}
		for _, e := range res.GetEntries() {
			if err := fn(e); err != nil {
				return err
			}
		}
		if res.GetNextPageToken() == "" {
			return nil
		}
		page.PageToken = res.GetNextPageToken()
	}
}
