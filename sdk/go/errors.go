package vipay

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	legacyv1 "github.com/vipay/vipay/sdk/go/gen/legacy/v1"
)

// The error codes, generated from the one declaration protos/vipay/legacy/v1/errors.proto
// (the server reads it too): legacyv1.OpenApiStatus (004), legacyv1.MembershipHttpStatus
// (001), legacyv1.RechargeCode (000/002), legacyv1.YoshopStatus (003), legacyv1.ErrorReason
// (gRPC ErrorInfo reasons).
type (
	OpenApiStatus = legacyv1.OpenApiStatus
	ErrorReason   = legacyv1.ErrorReason
)

// Error is a gRPC refusal with its ErrorInfo reason, the request id and retry_after.
// It keeps the gRPC status (status.Convert and status.Code work on it).
type Error struct {
	Status     *status.Status
	Reason     ErrorReason // ERROR_REASON_UNSPECIFIED when this SDK does not know the reason yet
	ReasonName string      // as sent, e.g. "INSUFFICIENT_BALANCE"
	Metadata   map[string]string
	RequestID  string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s (request %s)", e.Status.Code(), e.ReasonName, e.Status.Message(), e.RequestID)
}

// GRPCStatus lets status.FromError / status.Code see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// Retryable: UNAVAILABLE, or RESOURCE_EXHAUSTED with RATE_LIMITED.
func (e *Error) Retryable() bool {
	return e.Status.Code() == codes.Unavailable ||
		(e.Status.Code() == codes.ResourceExhausted && e.Reason == legacyv1.ErrorReason_ERROR_REASON_RATE_LIMITED)
}

// ReasonOf is the declared ErrorReason of a gRPC error (UNSPECIFIED if none).
func ReasonOf(err error) ErrorReason {
	if e := AsError(err); e != nil {
		return e.Reason
	}
	return legacyv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// AsError is the typed error of a call made through this SDK's options (or any gRPC error).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	return newError(status.Convert(err), "")
}

func newError(st *status.Status, requestID string) *Error {
	e := &Error{Status: st, RequestID: requestID, Metadata: map[string]string{}}
	if info := errorInfoOf(st); info != nil {
		e.ReasonName = info.GetReason()
		for k, v := range info.GetMetadata() {
			e.Metadata[k] = v
		}
		if v, ok := legacyv1.ErrorReason_value["ERROR_REASON_"+e.ReasonName]; ok {
			e.Reason = legacyv1.ErrorReason(v)
		}
		if s, err := strconv.Atoi(e.Metadata["retry_after_seconds"]); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

func errorInfoOf(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// ErrorInfo is the google.rpc.ErrorInfo the server attaches to every refusal, or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo { return errorInfoOf(status.Convert(err)) }

// BadRequest holds the field violations of an INVALID_ARGUMENT, or nil.
func BadRequest(err error) *errdetails.BadRequest {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}

// MerchantError is a refusal of the 004 merchant API: Status (OpenApiStatus) of
// {"status","message","data"}; 4012 (ORDER_FAILED) carries the refunded order in Data.
type MerchantError struct {
	Status     OpenApiStatus
	Message    string
	Data       []byte // the envelope's data, raw JSON ("null" for most refusals)
	RequestID  string
	RetryAfter time.Duration
}

func (e *MerchantError) Error() string {
	return fmt.Sprintf("%d %s: %s (request %s)", int32(e.Status),
		strings.TrimPrefix(e.Status.String(), "OPEN_API_STATUS_"), e.Message, e.RequestID)
}

// StatusName is the declared name without its prefix, e.g. "ORDER_NOT_FOUND".
func (e *MerchantError) StatusName() string {
	return strings.TrimPrefix(e.Status.String(), "OPEN_API_STATUS_")
}

// Retryable: 5000, 429 and 502/503/504 answers.
func (e *MerchantError) Retryable() bool {
	switch int32(e.Status) {
	case int32(legacyv1.OpenApiStatus_OPEN_API_STATUS_INTERNAL), 429, 502, 503, 504:
		return true
	}
	return false
}

// NetworkError: no answer (connection failure or timeout); always retryable.
type NetworkError struct {
	Err       error
	RequestID string
}

func (e *NetworkError) Error() string   { return fmt.Sprintf("%v (request %s)", e.Err, e.RequestID) }
func (e *NetworkError) Unwrap() error   { return e.Err }
func (e *NetworkError) Retryable() bool { return true }
