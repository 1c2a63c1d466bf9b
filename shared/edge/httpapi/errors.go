// Package httpapi holds the API Gateway (HTTP API v2) handlers of the contract: the keyed
// APIs (one authenticator, Auth: facility, clerk, registry officer and ops keys) and the
// public API (lookup, QR, verify, trust list, lookup page).
// Handlers translate: they decode the request, call a use case, and map its errors to
// status codes in one place (respond).
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Error codes of the API beyond apigw's.
const (
	codeUnauthorized = "unauthorized"
	codeNotFound     = "not_found"
	codeInvalid      = "invalid_request"
	codeConflict     = "conflict"
)

// failure maps a use-case error to the contract's error answer. Internal errors are
// logged (never with personal data: errors here carry IDs of records, not their content)
// and answered with a generic 500.
func failure(log *slog.Logger, route string, err error) events.APIGatewayV2HTTPResponse {
	var re *apigw.RequestError
	var fe *vaxpass.InvalidFieldError
	switch {
	case errors.As(err, &re):
		return re.Response()
	case errors.As(err, &fe):
		return (&apigw.RequestError{Status: http.StatusBadRequest, Code: "invalid_value", Field: fe.Field, Message: fe.Field + " is malformed or out of range"}).Response()
	case errors.Is(err, vaxpass.ErrUnauthorized):
		return apigw.Error(http.StatusUnauthorized, codeUnauthorized, "missing or unknown API key")
	case errors.Is(err, vaxpass.ErrNotFound):
		return apigw.Error(http.StatusNotFound, codeNotFound, "not found")
	case errors.Is(err, vaxpass.ErrInvalid):
		// Use cases wrap ErrInvalid with text for logs; the caller gets a plain answer
		// (handlers name the field themselves with a RequestError where they can).
		return apigw.Error(http.StatusBadRequest, codeInvalid, "the request cannot be processed: check its fields")
	case errors.Is(err, vaxpass.ErrConflict):
		return apigw.Error(http.StatusConflict, codeConflict, "the record changed meanwhile; try again")
	case errors.Is(err, vaxpass.ErrUnavailable):
		log.Error("storage unavailable", "route", route, "err", err)
		resp := apigw.Error(http.StatusServiceUnavailable, "unavailable", "the service cannot store anything at the moment; nothing was written, try again later")
		resp.Headers["Retry-After"] = "60"
		return resp
	}
	log.Error("request failed", "route", route, "err", err)
	return apigw.InternalError()
}

func fieldError(field, code, msg string) error {
	return &apigw.RequestError{Status: http.StatusBadRequest, Code: code, Field: field, Message: msg, Err: vaxpass.ErrInvalid}
}
