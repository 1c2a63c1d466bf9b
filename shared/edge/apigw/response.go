package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is a Lambda function behind API Gateway HTTP API (payload format 2.0). It is the
// signature lambda.Start accepts, so a Handler runs unchanged in AWS.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Error codes used by this package in the contract's error body. Endpoints add their own.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidBody      = "invalid_body"
	CodeInvalidPath      = "invalid_path"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal_error"
)

// ErrorBody is the contract's error document: {"error":{"code":"…","message":"…"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of [ErrorBody]. Field names the offending request field, when
// there is one.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Header values shared by every JSON answer. Answers may carry personal data (a lookup
// returns a name and a date of birth), so no cache may keep them.
const (
	contentTypeJSON = "application/json; charset=utf-8"
	cacheNoStore    = "no-store"
)

// Error returns the contract's JSON error response.
func Error(status int, code, message string) events.APIGatewayV2HTTPResponse {
	return errorResponse(status, ErrorDetail{Code: code, Message: message})
}

// FieldError returns the contract's JSON error response naming the request field at fault.
func FieldError(status int, field, code, message string) events.APIGatewayV2HTTPResponse {
	return errorResponse(status, ErrorDetail{Code: code, Message: message, Field: field})
}

// InternalError is the one answer for every server-side failure: a 500 with a generic
// message, so no internal error text or stack ever reaches a caller.
func InternalError() events.APIGatewayV2HTTPResponse {
	return Error(http.StatusInternalServerError, CodeInternal, "internal error; please try again later")
}

// NotFound returns the contract's 404.
func NotFound() events.APIGatewayV2HTTPResponse {
	return Error(http.StatusNotFound, CodeNotFound, "not found")
}

// MethodNotAllowed returns the contract's 405 with an Allow header listing allowed.
func MethodNotAllowed(allowed []string) events.APIGatewayV2HTTPResponse {
	resp := Error(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allowed, ", "))
	resp.Headers["Allow"] = strings.Join(allowed, ", ")
	return resp
}

// TooManyRequests returns the contract's 429 with a Retry-After header in whole seconds
// (rounded up, at least 1).
func TooManyRequests(retryAfter time.Duration) events.APIGatewayV2HTTPResponse {
	secs := int(math.Ceil(retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	resp := Error(http.StatusTooManyRequests, CodeRateLimited,
		fmt.Sprintf("too many requests; retry after %d seconds", secs))
	resp.Headers["Retry-After"] = strconv.Itoa(secs)
	return resp
}

func errorResponse(status int, d ErrorDetail) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(ErrorBody{Error: d})
	if err != nil { // cannot happen: three strings always marshal
		body = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    jsonHeaders(),
		Body:       string(body),
	}
}

func jsonHeaders() map[string]string {
	return map[string]string{
		"Content-Type":           contentTypeJSON,
		"Cache-Control":          cacheNoStore,
		"X-Content-Type-Options": "nosniff",
	}
}

// JSON returns v marshalled as the response body. A value that cannot be marshalled is a
// programming error and gives the generic 500.
func JSON(status int, v any) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(v)
	if err != nil {
		return InternalError()
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: jsonHeaders(), Body: string(body)}
}

// PNG returns a 200 image/png response. cacheSeconds > 0 lets the browser (never a shared
// cache: a QR code carries personal data) keep it that long; 0 or less forbids caching.
func PNG(png []byte, cacheSeconds int) events.APIGatewayV2HTTPResponse {
	resp := Bytes(http.StatusOK, "image/png", png)
	if cacheSeconds > 0 {
		resp.Headers["Cache-Control"] = "private, max-age=" + strconv.Itoa(cacheSeconds)
	}
	return resp
}

// Bytes returns body with the given content type, base64-encoded in the event when the type
// is binary (API Gateway decodes it again before it reaches the client). For downloads such
// as CSV or .xlsx worklists.
func Bytes(status int, contentType string, body []byte) events.APIGatewayV2HTTPResponse {
	resp := events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"Content-Type":           contentType,
			"Cache-Control":          cacheNoStore,
			"X-Content-Type-Options": "nosniff",
		},
	}
	if IsTextContentType(contentType) {
		resp.Body = string(body)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(body)
		resp.IsBase64Encoded = true
	}
	return resp
}

// IsTextContentType reports whether API Gateway HTTP API passes a request body of this
// content type to Lambda as text (isBase64Encoded false). Measured against AWS: only text/*,
// application/json, application/xml and application/javascript are text; everything else,
// a missing content type and application/x-www-form-urlencoded included, arrives
// base64-encoded. Parameters such as charset do not change the answer.
func IsTextContentType(contentType string) bool {
	if contentType == "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mediaType, "text/") {
		return true
	}
	switch mediaType {
	case "application/json", "application/xml", "application/javascript":
		return true
	}
	return false
}
