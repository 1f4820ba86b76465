package vipay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Retry: exponential backoff with jitter for what is safe to repeat (reads, and writes
// carrying a request_id / the 004 bizCode): network errors, UNAVAILABLE / 503, 429 (at
// least its Retry-After), 004's 5000. Non-idempotent calls are attempted once.
type Retry struct {
	MaxRetries int           // extra attempts; default 2 (negative: none)
	BaseDelay  time.Duration // default 200 ms, doubled each retry
	MaxDelay   time.Duration // default 10 s; also caps Retry-After
}

// DefaultTimeout applies to each call (gRPC) or attempt (HTTP) without a deadline.
const DefaultTimeout = 10 * time.Second

func (r Retry) withDefaults() Retry {
	if r.MaxRetries == 0 {
		r.MaxRetries = 2
	}
	if r.BaseDelay == 0 {
		r.BaseDelay = 200 * time.Millisecond
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = 10 * time.Second
	}
	return r
}

// Backoff before retry number attempt (0-based): half fixed, half random, at least retryAfter.
func (r Retry) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	r = r.withDefaults()
	exp := r.BaseDelay << attempt
	if exp > r.MaxDelay || exp <= 0 {
		exp = r.MaxDelay
	}
	d := exp/2 + time.Duration(mrand.Int63n(int64(exp/2)+1))
	if retryAfter > d {
		d = retryAfter
	}
	if d > r.MaxDelay {
		d = r.MaxDelay
	}
	return d
}

type retryable interface{ Retryable() bool }

func retryAfterOf(err error) time.Duration {
	switch e := err.(type) {
	case *Error:
		return e.RetryAfter
	case *MerchantError:
		return e.RetryAfter
	}
	return 0
}

// do runs attempt until success, a non-retryable error, or the retries run out.
func (r Retry) do(ctx context.Context, idempotent bool, attempt func() error) error {
	r = r.withDefaults()
	max := r.MaxRetries
	if !idempotent || max < 0 {
		max = 0
	}
	for n := 0; ; n++ {
		err := attempt()
		re, ok := err.(retryable)
		if err == nil || n >= max || !ok || !re.Retryable() {
			return err
		}
		select {
		case <-time.After(r.Backoff(n, retryAfterOf(err))):
		case <-ctx.Done():
			return err
		}
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CallOptions of the gRPC interceptor WithCalls.
type CallOptions struct {
	Timeout time.Duration // per call without a deadline; default DefaultTimeout
	Retry   Retry
}

type requestIDCarrier interface{ GetRequestId() string }

// WithCalls: every unary call gets an x-request-id, a default timeout, typed errors
// (*Error) and retries when safe (Get*/List*/Check*/Query* methods, or a request_id set).
func WithCalls(o CallOptions) grpc.DialOption {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		sent := newRequestID()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", sent)
		name := method[strings.LastIndex(method, "/")+1:]
		safe := strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List") ||
			strings.HasPrefix(name, "Check") || strings.HasPrefix(name, "Query")
		if c, ok := req.(requestIDCarrier); ok && c.GetRequestId() != "" {
			safe = true
		}
		return o.Retry.do(ctx, safe, func() error {
			var header metadata.MD
			err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&header))...)
			if err == nil {
				return nil
			}
			id := sent
			if v := header.Get("x-request-id"); len(v) > 0 {
				id = v[0]
			}
			return newError(status.Convert(err), id)
		})
	})
}
