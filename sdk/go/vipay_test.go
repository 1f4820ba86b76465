package vipay_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vipay "github.com/vipay/vipay/sdk/go"
	membershipv1 "github.com/vipay/vipay/sdk/go/gen/membership/v1"
	rechargev1 "github.com/vipay/vipay/sdk/go/gen/recharge/v1"
)

// server runs `python -m server ...`: credentials come from the server's own CLI.
func server(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Getenv("VIPAY_PYTHON"), append([]string{"-m", "server"}, args...)...)
	cmd.Dir = os.Getenv("VIPAY_ROOT")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python -m server %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func dial(t *testing.T, userID int, role string) *grpc.ClientConn {
	t.Helper()
	if os.Getenv("VIPAY_GRPC") == "" {
		t.Fatal("VIPAY_GRPC is not set: run through `make sdk-test` (sdk/stack.py)")
	}
	conn, err := vipay.Dial(os.Getenv("VIPAY_GRPC"), server(t, "token", "--user-id", strconv.Itoa(userID), "--role", role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestMembershipStatus(t *testing.T) {
	user := membershipv1.NewMembershipServiceClient(dial(t, 301, "user"))
	order, err := user.CreateVipOrder(ctx(t), &membershipv1.CreateVipOrderRequest{
		Timezone: "Asia/Shanghai", Duration: 3, Level: "middle", PayMethod: "Alipay_AopApp"})
	if err != nil {
		t.Fatal(err)
	}
	server(t, "sandbox-pay", order.TradeNo)
	svc := membershipv1.NewMembershipServiceClient(dial(t, 0, "service"))
	st, err := svc.GetMembershipStatus(ctx(t), &membershipv1.GetMembershipStatusRequest{UserId: 301})
	if err != nil {
		t.Fatal(err)
	}
	if st.UserId != 301 || !st.IsVip || st.CurrentLevel != "middle" || len(st.Levels) != 1 {
		t.Fatalf("status: %v", st)
	}
	days := time.Until(st.Levels[0].ExpireTime.AsTime()).Hours() / 24
	if days < 85 || days > 93 {
		t.Fatalf("expiry in %.1f days", days)
	}
}

func TestMembershipStatusNeedsServiceRole(t *testing.T) {
	user := membershipv1.NewMembershipServiceClient(dial(t, 302, "user"))
	_, err := user.GetMembershipStatus(ctx(t), &membershipv1.GetMembershipStatusRequest{UserId: 302})
	if status.Code(err) != codes.PermissionDenied || vipay.ErrorInfo(err) == nil {
		t.Fatalf("want PERMISSION_DENIED with ErrorInfo, got %v", err)
	}
}

func TestWalletDebitCreditIdempotency(t *testing.T) {
	wallet := rechargev1.NewWalletServiceClient(dial(t, 0, "service"))
	credit := &rechargev1.CreditWalletRequest{UserId: 303, AmountFen: 1000, Reference: "refund:go-1", RequestId: "go-credit-1"}
	first, err := wallet.CreditWallet(ctx(t), credit)
	if err != nil {
		t.Fatal(err)
	}
	again, err := wallet.CreditWallet(ctx(t), credit)
	if err != nil || again.Entry.Id != first.Entry.Id || again.BalanceFen != 1000 {
		t.Fatalf("retry: %v %v", again, err)
	}
	debit := &rechargev1.DebitWalletRequest{UserId: 303, AmountFen: 400, Reference: "order:go-1", RequestId: "go-debit-1"}
	d1, err := wallet.DebitWallet(ctx(t), debit)
	if err != nil || d1.BalanceFen != 600 || d1.Entry.AmountFen != -400 || d1.Entry.CreateTime.AsTime().IsZero() {
		t.Fatalf("debit: %v %v", d1, err)
	}
	d2, err := wallet.DebitWallet(ctx(t), debit)
	if err != nil || d2.Entry.Id != d1.Entry.Id || d2.BalanceFen != 600 {
		t.Fatalf("debit retry must return the first result: %v %v", d2, err)
	}
	// The same request_id with other parameters is refused.
	_, err = wallet.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 303, AmountFen: 1, Reference: "order:go-1",
		RequestId: "go-debit-1"})
	if status.Code(err) == codes.OK || vipay.ErrorInfo(err) == nil {
		t.Fatalf("reused request_id: %v", err)
	}
	_, err = wallet.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 303, AmountFen: 601, Reference: "order:go-2",
		RequestId: "go-debit-2"})
	if status.Code(err) != codes.FailedPrecondition || vipay.ErrorInfo(err).GetReason() != "INSUFFICIENT_BALANCE" {
		t.Fatalf("overdraft: %v (%v)", err, vipay.ErrorInfo(err))
	}
	got, err := wallet.GetWallet(ctx(t), &rechargev1.GetWalletRequest{UserId: 303})
	if err != nil || got.BalanceFen != 600 || len(got.Entries) != 2 {
		t.Fatalf("wallet: %v %v", got, err)
	}
}

func TestFieldViolations(t *testing.T) {
	wallet := rechargev1.NewWalletServiceClient(dial(t, 0, "service"))
	_, err := wallet.DebitWallet(ctx(t), &rechargev1.DebitWalletRequest{UserId: 304})
	br := vipay.BadRequest(err)
	if status.Code(err) != codes.InvalidArgument || br == nil || len(br.FieldViolations) == 0 {
		t.Fatalf("want INVALID_ARGUMENT with BadRequest, got %v", err)
	}
}
