// Package vipay is the Go SDK: the internal gRPC services (generated packages under
// gen/..., committed so `go get` works) with request ids, default timeouts, typed errors
// and safe retries; a refreshing service credential source; and HTTP helpers for the 004
// merchant API (signing, typed refusals, retries, status-callback verification).
package vipay

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// bearer sends a fixed JWT as `authorization: Bearer ...` on every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// WithToken authenticates every call with a JWT (role `service` for WalletService
// and GetMembershipStatus). Over plaintext h2c only on a trusted network. Service
// credentials live at most 10 minutes: use WithCredentialSource to refresh them.
func WithToken(token string, requireTLS bool) grpc.DialOption {
	return grpc.WithPerRPCCredentials(bearer{token: token, secure: requireTLS})
}

// Plaintext is h2c without TLS, for the internal network (what grpc's
// credentials/insecure does in newer grpc-go; the deprecated grpc.WithInsecure is not used).
func Plaintext() credentials.TransportCredentials { return plaintext{} }

type plaintext struct{}

type plaintextInfo struct{ credentials.CommonAuthInfo }

func (plaintextInfo) AuthType() string { return "insecure" }

func (plaintext) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, plaintextInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}
func (plaintext) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, plaintextInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}
func (plaintext) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}
func (plaintext) Clone() credentials.TransportCredentials { return plaintext{} }
func (plaintext) OverrideServerName(string) error         { return nil }

// Dial connects over plaintext h2c (internal network), authenticated with a fixed token,
// with the SDK's call options (CallOptions: request ids, timeout, typed errors, retries).
func Dial(address, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.Dial(address, append([]grpc.DialOption{grpc.WithTransportCredentials(Plaintext()),
		WithToken(token, false), WithCalls(CallOptions{})}, opts...)...)
}

// DialWithSource is Dial with a refreshing credential source (credentials.go).
func DialWithSource(address string, source *CredentialSource, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.Dial(address, append([]grpc.DialOption{grpc.WithTransportCredentials(Plaintext()),
		grpc.WithPerRPCCredentials(source), WithCalls(CallOptions{})}, opts...)...)
}
