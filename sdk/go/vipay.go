// Package vipay is the Go SDK for the internal gRPC services: generated
// packages under vipay.local/sdk/gen/... (built by `make sdk` from the protos
// with Debian's protoc and plugins, not committed) plus these helpers.
package vipay

import (
	"context"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// bearer sends a JWT as `authorization: Bearer ...` on every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// WithToken authenticates every call with a JWT (role `service` for WalletService
// and GetMembershipStatus). Over plaintext h2c only on a trusted network.
func WithToken(token string, requireTLS bool) grpc.DialOption {
	return grpc.WithPerRPCCredentials(bearer{token: token, secure: requireTLS})
}

// Dial connects over plaintext h2c (internal network), authenticated with token.
func Dial(address, token string) (*grpc.ClientConn, error) {
	return grpc.Dial(address, grpc.WithInsecure(), WithToken(token, false))
}

// ErrorInfo is the google.rpc.ErrorInfo the server attaches to every refusal
// (Reason such as INSUFFICIENT_BALANCE, plus metadata), or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// BadRequest holds the field violations of an INVALID_ARGUMENT, or nil.
func BadRequest(err error) *errdetails.BadRequest {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}
