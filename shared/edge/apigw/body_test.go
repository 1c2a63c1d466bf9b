package apigw

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

type lookupBody struct {
	IDNumber string `json:"id_number"`
	FullName string `json:"full_name"`
	DOB      string `json:"dob"`
}

type doseBatch struct {
	Records []struct {
		SourceID   string `json:"source_id"`
		DoseNumber int    `json:"dose_number"`
		Gender     string `json:"gender"`
	} `json:"records"`
}

func textEvent(body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{Body: body}
}

var decodeCases = []struct {
	name      string
	body      string
	base64    bool
	target    func() any
	opts      DecodeOptions
	status    int    // 0: success
	field     string // expected RequestError.Field
	inMessage string // substring of the message
}{
	{name: "lookup", body: `{"id_number":"001090012345","full_name":"Nguyễn Văn An","dob":"1990"}`, target: func() any { return &lookupBody{} }},
	{name: "surrounding whitespace", body: " \r\n\t{}\n", target: func() any { return &lookupBody{} }},
	{name: "base64 body (curl -d sends form-urlencoded)", body: base64.StdEncoding.EncodeToString([]byte(`{"dob":"1990-05"}`)), base64: true, target: func() any { return &lookupBody{} }},
	{name: "unknown field allowed by default", body: `{"dob":"1990","extra":1}`, target: func() any { return &lookupBody{} }},
	{name: "empty", body: "", target: func() any { return &lookupBody{} }, status: 400, inMessage: "empty"},
	{name: "blank", body: "  \n ", target: func() any { return &lookupBody{} }, status: 400, inMessage: "empty"},
	{name: "syntax error", body: `{"dob":"1990",}`, target: func() any { return &lookupBody{} }, status: 400, inMessage: "byte offset 14"},
	{name: "truncated", body: `{"dob":"19`, target: func() any { return &lookupBody{} }, status: 400, inMessage: "ends unexpectedly"},
	{name: "two values", body: `{"dob":"1990"} {"dob":"1991"}`, target: func() any { return &lookupBody{} }, status: 400, inMessage: "after the JSON value at byte offset 15"},
	{name: "trailing garbage", body: `{}x`, target: func() any { return &lookupBody{} }, status: 400, inMessage: "after the JSON value"},
	{name: "not an object", body: `["x"]`, target: func() any { return &lookupBody{} }, status: 400, inMessage: "must be an object, not an array"},
	{name: "wrong type", body: `{"id_number":12345}`, target: func() any { return &lookupBody{} }, status: 400, field: "id_number", inMessage: "must be a string, not a number"},
	{name: "wrong type deep with index", body: `{"records":[{"source_id":"a","dose_number":1},{"source_id":"b","dose_number":"two"}]}`, target: func() any { return &doseBatch{} }, status: 400, field: "records[1].dose_number", inMessage: "must be an integer, not a string"},
	{name: "object for integer", body: `{"records":[{"dose_number":{"n":1}}]}`, target: func() any { return &doseBatch{} }, status: 400, field: "records[0].dose_number", inMessage: "not an object"},
	{name: "fraction for integer", body: `{"records":[{"dose_number":1.5}]}`, target: func() any { return &doseBatch{} }, status: 400, field: "records[0].dose_number", inMessage: "must be an integer"},
	{name: "unknown field refused", body: `{"dob":"1990","phone":"0901234567"}`, target: func() any { return &lookupBody{} }, opts: DecodeOptions{DisallowUnknownFields: true}, status: 400, field: "phone", inMessage: `unknown field "phone"`},
	{name: "duplicate key", body: `{"dob":"1990","dob":"1991"}`, target: func() any { return &lookupBody{} }, status: 400, field: "dob", inMessage: "more than once"},
	{name: "duplicate key by case", body: `{"dob":"1990","DOB":"1991"}`, target: func() any { return &lookupBody{} }, status: 400, field: "DOB", inMessage: "more than once"},
	{name: "duplicate key nested", body: `{"records":[{"gender":"male"},{"gender":"male","gender":"female"}]}`, target: func() any { return &doseBatch{} }, status: 400, field: "records[1].gender", inMessage: "more than once"},
	{name: "same key in sibling objects is fine", body: `{"records":[{"gender":"male"},{"gender":"female"}]}`, target: func() any { return &doseBatch{} }},
	{name: "invalid UTF-8", body: "{\"full_name\":\"Nguy\xe1n\"}", target: func() any { return &lookupBody{} }, status: 400, inMessage: "UTF-8 at byte offset 18"},
	{name: "too large", body: `{"full_name":"` + strings.Repeat("a", 100) + `"}`, target: func() any { return &lookupBody{} }, opts: DecodeOptions{MaxBytes: 64}, status: 413, inMessage: "exceeds 64 bytes"},
	{name: "too large base64", body: base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 100) + "{}")), base64: true, target: func() any { return &lookupBody{} }, opts: DecodeOptions{MaxBytes: 64}, status: 413},
	{name: "bad base64", body: "not*base64", base64: true, target: func() any { return &lookupBody{} }, status: 400, inMessage: "base64"},
}

func TestDecodeJSON(t *testing.T) {
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			ev := textEvent(c.body)
			ev.IsBase64Encoded = c.base64
			err := DecodeJSON(ev, c.target(), c.opts)
			if c.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want *RequestError", err, err)
			}
			if re.Status != c.status || re.Field != c.field || !strings.Contains(re.Message, c.inMessage) {
				t.Errorf("got status %d field %q message %q; want %d %q containing %q", re.Status, re.Field, re.Message, c.status, c.field, c.inMessage)
			}
			wantSentinel := ErrInvalidJSON
			if c.status == 413 {
				wantSentinel = ErrBodyTooLarge
			}
			if !errors.Is(err, wantSentinel) {
				t.Errorf("errors.Is(%v) false", wantSentinel)
			}
			resp := re.Response()
			var body ErrorBody
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.StatusCode != c.status {
				t.Fatalf("response %d %s", resp.StatusCode, resp.Body)
			}
			if c.status == 400 && body.Error.Code != CodeInvalidJSON {
				t.Errorf("code %q", body.Error.Code)
			}
			if body.Error.Field != c.field {
				t.Errorf("field in body %q", body.Error.Field)
			}
		})
	}
}

func TestDecodeJSONValues(t *testing.T) {
	var got lookupBody
	if err := DecodeJSON(textEvent(`{"id_number":"001 090 012 345","full_name":"Nguyễn Văn An","dob":"1990-05"}`), &got, DecodeOptions{DisallowUnknownFields: true}); err != nil {
		t.Fatal(err)
	}
	if got != (lookupBody{IDNumber: "001 090 012 345", FullName: "Nguyễn Văn An", DOB: "1990-05"}) {
		t.Errorf("decoded %+v", got)
	}
	// The AWS sample body with CR/LF/TAB whitespace.
	ev := loadEvent(t, "aws-lambda-go/apigw-v2-request-iam.json")
	var a struct{ A int }
	if err := DecodeJSON(ev, &a, DecodeOptions{}); err != nil || a.A != 1 {
		t.Errorf("sample body: %+v, %v", a, err)
	}
}

// Messages name fields and offsets, never what was submitted.
func TestDecodeJSONNeverEchoesValues(t *testing.T) {
	secret := "Nguyễn Văn Bí Mật"
	bodies := []string{
		`{"id_number":-987654321}`,
		`{"full_name":["` + secret + `"]}`,
		`{"full_name":"` + secret + `","full_name":"x"}`,
		`{"records":[{"dose_number":"` + secret + `"}]}`,
	}
	for _, b := range bodies {
		var v struct {
			IDNumber string `json:"id_number"`
			FullName string `json:"full_name"`
			doseBatch
		}
		err := DecodeJSON(textEvent(b), &v, DecodeOptions{})
		if err == nil {
			t.Fatalf("%s: no error", b)
		}
		var re *RequestError
		errors.As(err, &re)
		if strings.Contains(re.Message, "987654321") || strings.Contains(re.Message, "Bí Mật") {
			t.Errorf("message echoes the value: %q", re.Message)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	resp := ErrorResponse(errors.New("kms: key disabled"))
	if resp.StatusCode != 500 || strings.Contains(resp.Body, "kms") {
		t.Errorf("%d %s", resp.StatusCode, resp.Body)
	}
	wrapped := errors.Join(errors.New("context"), invalidJSON("dob", "bad"))
	if resp := ErrorResponse(wrapped); resp.StatusCode != 400 || !strings.Contains(resp.Body, `"field":"dob"`) {
		t.Errorf("%d %s", resp.StatusCode, resp.Body)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		if !c.base64 {
			f.Add(c.body)
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v doseBatch
		err := DecodeJSON(textEvent(body), &v, DecodeOptions{MaxBytes: 4096})
		if err == nil {
			// Whatever was accepted must be one valid JSON value that encoding/json takes too.
			var again doseBatch
			if jerr := json.Unmarshal([]byte(body), &again); jerr != nil {
				t.Fatalf("accepted %q that encoding/json refuses: %v", body, jerr)
			}
			return
		}
		var re *RequestError
		if !errors.As(err, &re) {
			t.Fatalf("%q: non-request error %v", body, err)
		}
		if re.Status != 400 && re.Status != 413 {
			t.Fatalf("%q: status %d", body, re.Status)
		}
		if resp := re.Response(); !json.Valid([]byte(resp.Body)) {
			t.Fatalf("invalid error body %q", resp.Body)
		}
	})
}

// refDuplicate finds a case-insensitively repeated key the slow way, with encoding/json's
// tokenizer, for differential testing of checkKeys.
func refDuplicate(b []byte) (string, bool) {
	w := newJSONWalker(b)
	seen := map[*walkFrame]map[string]bool{}
	for {
		path, isKey, key, done, err := w.step()
		if err != nil || done {
			return "", false
		}
		if !isKey {
			continue
		}
		frame := w.stack[len(w.stack)-1]
		if seen[frame] == nil {
			seen[frame] = map[string]bool{}
		}
		folded := strings.ToLower(key)
		if seen[frame][folded] {
			return path, true
		}
		seen[frame][folded] = true
	}
}

func FuzzCheckKeys(f *testing.F) {
	for _, c := range decodeCases {
		if !c.base64 {
			f.Add(c.body)
		}
	}
	f.Add(`{"a\u0062":1,"ab":2}`)
	f.Add(`[{"x":[{"y":1,"Y":2}]}]`)
	f.Add(`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":0,"k11":1,"k12":2,"k13":3,"k14":4,"k15":5,"k16":6,"K3":7}`)
	f.Fuzz(func(t *testing.T, body string) {
		err := checkKeys([]byte(body))
		if !json.Valid([]byte(body)) || !utf8.ValidString(body) {
			// Malformed input: only "no panic, no hang" is asked of the scanner. DecodeJSON
			// refuses invalid UTF-8 before it scans keys, and the reference (encoding/json)
			// would report such a key with U+FFFD in its path.
			return
		}
		wantPath, wantDup := refDuplicate([]byte(body))
		var re *RequestError
		gotDup := errors.As(err, &re)
		if gotDup != wantDup {
			t.Fatalf("%q: checkKeys dup=%v (%v), reference dup=%v at %q", body, gotDup, err, wantDup, wantPath)
		}
		if gotDup && re.Field != wantPath {
			t.Fatalf("%q: path %q, reference %q", body, re.Field, wantPath)
		}
	})
}
