package apigw

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type seenEvents []string

func (s *seenEvents) SecurityEvent(_ context.Context, kind, route string) {
	*s = append(*s, kind+" "+route)
}

// A refused request is told to the limiter's Events: kind and route key, no address.
func TestRateLimitedEvents(t *testing.T) {
	l, err := NewLimiter(RateLimit{Rate: 1, Burst: 2, MaxKeys: 10}, func() time.Time { return time.Unix(0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	ev := &seenEvents{}
	l.Events = ev
	h := RateLimited(l, nil, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	})
	req := events.APIGatewayV2HTTPRequest{RouteKey: "POST /v1/verify"}
	req.RequestContext.HTTP.SourceIP = "198.51.100.7"
	for range 5 {
		if _, err := h(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if len(*ev) != 3 || (*ev)[0] != "rate_limited POST /v1/verify" {
		t.Fatalf("events %v", *ev)
	}
}
