package apigw_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
)

func getDose(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return apigw.JSON(http.StatusOK, map[string]string{"source_id": req.PathParameters["source_id"]}), nil
}

// One Lambda function serving several routes. In its main.go:
//
//	lambda.Start(apigw.Recover(logger, router.Serve))
func ExampleRouter() {
	router := apigw.NewRouter()
	router.Handle("GET /v1/doses/{source_id}", getDose)

	// Behind a $default route the Router matches RawPath and method itself.
	var req events.APIGatewayV2HTTPRequest
	req.RouteKey = "$default"
	req.RawPath = "/v1/doses/HN-0001"
	req.RequestContext.HTTP.Method = "GET"
	resp, _ := router.Serve(context.Background(), req)
	fmt.Println(resp.StatusCode, resp.Body)

	req.RequestContext.HTTP.Method = "DELETE"
	resp, _ = router.Serve(context.Background(), req)
	fmt.Println(resp.StatusCode, resp.Headers["Allow"], resp.Body)
	// Output:
	// 200 {"source_id":"HN-0001"}
	// 405 GET {"error":{"code":"method_not_allowed","message":"method not allowed; allowed: GET"}}
}

// The local runner serves the same handlers over net/http.
func ExampleBridge() {
	router := apigw.NewRouter()
	router.Handle("GET /v1/doses/{source_id}", getDose)
	logger := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(&apigw.Bridge{Routes: router, Handler: apigw.Recover(logger, router.Serve), Logger: logger})
	defer srv.Close()

	res, err := http.Get(srv.URL + "/v1/doses/HN%20%C4%90%E1%BB%91ng%20%C4%90a")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"), string(body))
	// Output: 200 application/json; charset=utf-8 {"source_id":"HN Đống Đa"}
}

func ExampleDecodeJSON() {
	var body struct {
		IDNumber string `json:"id_number"`
		DOB      string `json:"dob"`
	}
	req := events.APIGatewayV2HTTPRequest{Body: `{"id_number":"001090012345","dob":1990}`}
	err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: 4 << 10, DisallowUnknownFields: true})
	resp := apigw.ErrorResponse(err)
	fmt.Println(resp.StatusCode, resp.Body)
	// Output: 400 {"error":{"code":"invalid_json","message":"field dob must be a string, not a number","field":"dob"}}
}

// Ten lookups a minute per client, bursts of five, at most 100,000 clients remembered.
func ExampleRateLimited() {
	now := time.Date(2022, 4, 1, 8, 0, 0, 0, time.UTC)
	limiter, err := apigw.NewLimiter(apigw.RateLimit{Rate: 10.0 / 60, Burst: 5, MaxKeys: 100_000}, func() time.Time { return now })
	if err != nil {
		panic(err)
	}
	lookup := apigw.RateLimited(limiter, nil, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return apigw.NotFound(), nil
	})
	var req events.APIGatewayV2HTTPRequest
	req.RequestContext.HTTP.SourceIP = "203.0.113.7"
	var codes []string
	for i := 0; i < 6; i++ {
		resp, _ := lookup(context.Background(), req)
		codes = append(codes, fmt.Sprint(resp.StatusCode))
		if resp.StatusCode == http.StatusTooManyRequests {
			codes = append(codes, "retry-after="+resp.Headers["Retry-After"])
		}
	}
	fmt.Println(strings.Join(codes, " "))
	// Output: 404 404 404 404 404 429 retry-after=6
}
