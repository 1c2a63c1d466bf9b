// Package apigw is the HTTP edge shared by the Lambda functions and by the local runner.
//
// The same handlers, of type [Handler] (the aws-lambda-go signature for API Gateway HTTP API
// payload format 2.0), run in three places:
//
//   - in AWS Lambda behind API Gateway, started with lambda.Start(handler);
//   - in one Lambda serving several routes, with a [Router] dispatching on the event's
//     RouteKey, or on RawPath and method when the route key is "$default";
//   - inside `vaxpass serve`, where a [Bridge] (an http.Handler) turns each net/http request
//     into the event API Gateway would have sent and writes the handler's response back.
//
// It also holds what every endpoint needs at the edge: the contract's JSON error body
// ([Error], [FieldError]), JSON and PNG responses, strict JSON request decoding
// ([DecodeJSON]), a panic and error guard ([Recover]), a per-client token-bucket rate
// limiter ([Limiter], [RateLimited]) and per-route limits ([Guard]: body sizes checked
// before reading, bounded concurrency of the expensive routes).
//
// Nothing here logs personal data: loggers receive route keys, request IDs, status codes and
// error classes, never bodies, path parameters or panic values.
package apigw
