package apigw

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// A /v1/doses batch of n records, as a facility platform sends it.
func doseBatchJSON(n int) string {
	var b strings.Builder
	b.WriteString(`{"records":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"source_id":"HN-%07d","dose_number":%d,"gender":"female"}`, i, i%3+1)
	}
	b.WriteString(`]}`)
	return b.String()
}

func BenchmarkDecodeJSONBatch1000(b *testing.B) {
	body := doseBatchJSON(1000)
	ev := events.APIGatewayV2HTTPRequest{Body: body}
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		var v doseBatch
		if err := DecodeJSON(ev, &v, DecodeOptions{MaxBytes: MaxRequestBodyBytes, DisallowUnknownFields: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBridgeRoundTrip(b *testing.B) {
	router := NewRouter()
	router.Handle("POST /v1/passports/lookup", func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return NotFound(), nil
	})
	bridge := &Bridge{Routes: router}
	body := []byte(`{"id_number":"001090012345","full_name":"Nguyễn Văn An","dob":"1990-05-17"}`)
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("POST", "/v1/passports/lookup", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		bridge.ServeHTTP(w, r)
		if w.Code != 404 {
			b.Fatal(w.Code)
		}
	}
}

// The baseline DecodeJSON is measured against: encoding/json alone.
func BenchmarkUnmarshalBatch1000Baseline(b *testing.B) {
	body := []byte(doseBatchJSON(1000))
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		var v doseBatch
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
