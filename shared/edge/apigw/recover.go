package apigw

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/aws/aws-lambda-go/events"
)

// Recover guards h: a panic or a returned error becomes the contract's generic 500 (never the
// panic text or the error text) and one log line. The line carries the route key, the request
// ID, the panic's type and the stack; a panic value may hold whatever the code had in hand
// (a name, an ID number), so only runtime errors, whose text the Go runtime writes, are logged
// in full. Returned errors are logged by their text: by project rule errors name fields, never
// personal values. A nil logger discards.
func Recover(logger *slog.Logger, h Handler) Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			attrs := []any{
				"route", req.RouteKey,
				"request_id", req.RequestContext.RequestID,
				"panic_type", fmt.Sprintf("%T", p),
			}
			if rerr, ok := p.(runtime.Error); ok {
				attrs = append(attrs, "runtime_error", rerr.Error())
			}
			attrs = append(attrs, "stack", string(debug.Stack()))
			logger.ErrorContext(ctx, "handler panicked", attrs...)
			resp, err = InternalError(), nil
		}()
		resp, err = h(ctx, req)
		if err != nil {
			logger.ErrorContext(ctx, "handler failed",
				"route", req.RouteKey,
				"request_id", req.RequestContext.RequestID,
				"error", err.Error())
			return InternalError(), nil
		}
		return resp, nil
	}
}
