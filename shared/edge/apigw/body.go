package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
)

// Size limits.
const (
	// MaxRequestBodyBytes is API Gateway's payload limit (10 MB); the Bridge answers 413 past it.
	MaxRequestBodyBytes = 10 << 20
	// LambdaPayloadLimit is Lambda's limit on a synchronous invocation's event and on its
	// response (6 MB). In AWS it binds before MaxRequestBodyBytes: a binary body grows by a
	// third when base64-encoded into the event.
	LambdaPayloadLimit = 6 << 20
	// DefaultMaxJSONBytes is DecodeJSON's body limit when DecodeOptions.MaxBytes is zero.
	DefaultMaxJSONBytes = 1 << 20
)

// Sentinel errors of request decoding; a *RequestError wraps one of them.
var (
	ErrInvalidJSON  = errors.New("invalid JSON")
	ErrInvalidBody  = errors.New("invalid request body")
	ErrBodyTooLarge = errors.New("request body too large")
	ErrInvalidPath  = errors.New("invalid request path")
)

// RequestError is a fault in what the caller sent. Response turns it into the contract's
// error answer.
type RequestError struct {
	Status  int    // HTTP status: 400, 413, …
	Code    string // contract error code, e.g. "invalid_json"
	Field   string // offending field path ("records[2].dob"), when known
	Message string // safe to show the caller: never contains submitted values
	Err     error  // sentinel, for errors.Is
}

func (e *RequestError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %s: %s", e.Err, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Err, e.Message)
}

func (e *RequestError) Unwrap() error { return e.Err }

// Response is the contract's JSON error answer for e.
func (e *RequestError) Response() events.APIGatewayV2HTTPResponse {
	if e.Field != "" {
		return FieldError(e.Status, e.Field, e.Code, e.Message)
	}
	return Error(e.Status, e.Code, e.Message)
}

// ErrorResponse maps err to an answer: a *RequestError anywhere in its chain gives its own
// response, anything else the generic 500.
func ErrorResponse(err error) events.APIGatewayV2HTTPResponse {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Response()
	}
	return InternalError()
}

func tooLarge(limit int64) *RequestError {
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
		Message: fmt.Sprintf("request body exceeds %d bytes", limit), Err: ErrBodyTooLarge}
}

// RequestBody returns the event's body as bytes, base64-decoding it when API Gateway encoded
// it (binary uploads such as .xlsx), refusing more than maxBytes (0: MaxRequestBodyBytes)
// before decoding anything.
func RequestBody(req events.APIGatewayV2HTTPRequest, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = MaxRequestBodyBytes
	}
	if !req.IsBase64Encoded {
		if int64(len(req.Body)) > maxBytes {
			return nil, tooLarge(maxBytes)
		}
		return []byte(req.Body), nil
	}
	if int64(len(req.Body)) > int64(base64.StdEncoding.EncodedLen(int(maxBytes))) {
		return nil, tooLarge(maxBytes)
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidBody,
			Message: "request body is marked base64 but is not valid base64", Err: ErrInvalidBody}
	}
	if int64(len(b)) > maxBytes {
		return nil, tooLarge(maxBytes)
	}
	return b, nil
}

// requestBytes is RequestBody for readers only: a text body is returned as a view of the
// event's string, not a copy (a 4 MB upload would otherwise be held twice while decoded).
// The bytes must not be written to.
func requestBytes(req events.APIGatewayV2HTTPRequest, maxBytes int64) ([]byte, error) {
	if req.IsBase64Encoded || req.Body == "" {
		return RequestBody(req, maxBytes)
	}
	if maxBytes <= 0 {
		maxBytes = MaxRequestBodyBytes
	}
	if int64(len(req.Body)) > maxBytes {
		return nil, tooLarge(maxBytes)
	}
	return unsafe.Slice(unsafe.StringData(req.Body), len(req.Body)), nil
}

// DecodeOptions tunes DecodeJSON.
type DecodeOptions struct {
	MaxBytes              int64 // body limit; 0 means DefaultMaxJSONBytes
	DisallowUnknownFields bool  // an object key that v has no field for is an error
}

// DecodeJSON decodes the event's body into v, strictly: exactly one JSON value, valid UTF-8,
// no key twice in one object (encoding/json would silently keep the last, and matches keys
// case-insensitively, so "dob" and "DOB" count as the same key), at most opts.MaxBytes.
// Every failure is a *RequestError (400 "invalid_json", or 413) whose message names the field
// path ("records[3].dose_number") or the byte offset and never echoes submitted values.
func DecodeJSON(req events.APIGatewayV2HTTPRequest, v any, opts DecodeOptions) error {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxJSONBytes
	}
	b, err := requestBytes(req, limit)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) && re.Code == CodeInvalidBody {
			re.Code, re.Err = CodeInvalidJSON, ErrInvalidJSON
		}
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return invalidJSON("", "request body is empty; expected a JSON value")
	}
	if !utf8.Valid(b) {
		return invalidJSON("", fmt.Sprintf("request body is not valid UTF-8 at byte offset %d", invalidUTF8Offset(b)))
	}
	if err := checkKeys(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if opts.DisallowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeError(b, err)
	}
	end := dec.InputOffset()
	if rest := b[end:]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		at := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		return invalidJSON("", fmt.Sprintf("unexpected data after the JSON value at byte offset %d", at))
	}
	return nil
}

func invalidJSON(field, msg string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Field: field, Message: msg, Err: ErrInvalidJSON}
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func decodeError(b []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var invalid *json.InvalidUnmarshalError
	switch {
	case errors.As(err, &syntax):
		at := syntax.Offset - 1 // Offset counts the bytes read, the bad one included
		if at < 0 {
			at = 0
		}
		return invalidJSON("", fmt.Sprintf("malformed JSON at byte offset %d: %s", at, strings.TrimPrefix(syntax.Error(), "json: ")))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidJSON("", fmt.Sprintf("JSON ends unexpectedly at byte offset %d", len(b)))
	case errors.As(err, &typ):
		field := pathAtOffset(b, typ.Offset)
		if field == "" {
			field = typ.Field
		}
		got, _, _ := strings.Cut(typ.Value, " ") // "number -5" → "number": never echo the value
		if field == "" {
			return invalidJSON("", fmt.Sprintf("request body must be %s, not %s", describeType(typ.Type), article(got)))
		}
		return invalidJSON(field, fmt.Sprintf("field %s must be %s, not %s", field, describeType(typ.Type), article(got)))
	case errors.As(err, &invalid):
		return fmt.Errorf("decode JSON: %w", err) // a programming error: 500
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = ""
		}
		return invalidJSON(name, fmt.Sprintf("unknown field %q", name))
	default:
		// An UnmarshalJSON method of the target refused the value; its error names the
		// problem (domain errors name fields, not values).
		return invalidJSON("", "invalid value: "+err.Error())
	}
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "":
		return "another type"
	default:
		return "a " + kind
	}
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "another type"
	}
}

// jsonWalker follows json.Decoder tokens and knows the path of the current value, e.g.
// "records[3].dob".
type jsonWalker struct {
	dec   *json.Decoder
	stack []*walkFrame
}

type walkFrame struct {
	object  bool
	wantKey bool   // in an object: the next string token is a key
	key     string // current key (object) …
	index   int    // … or current index (array), -1 before the first element
	prefix  string // path of the container itself
}

func newJSONWalker(b []byte) *jsonWalker {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return &jsonWalker{dec: dec}
}

func (f *walkFrame) childPath() string {
	if f.object {
		if f.prefix == "" {
			return f.key
		}
		return f.prefix + "." + f.key
	}
	return f.prefix + "[" + strconv.Itoa(f.index) + "]"
}

// step reads one token. It returns the path of the value the token belongs to, whether the
// token was an object key, the key itself, and done once the first top-level value is
// complete.
func (w *jsonWalker) step() (path string, isKey bool, key string, done bool, err error) {
	tok, err := w.dec.Token()
	if err != nil {
		return "", false, "", false, err
	}
	var top *walkFrame
	if n := len(w.stack); n > 0 {
		top = w.stack[n-1]
	}
	if top != nil && top.object && top.wantKey {
		if d, ok := tok.(json.Delim); ok && d == '}' {
			w.stack = w.stack[:len(w.stack)-1]
			return top.prefix, false, "", w.finishValue(), nil
		}
		k, _ := tok.(string)
		top.key, top.wantKey = k, false
		return top.childPath(), true, k, false, nil
	}
	if top != nil && !top.object {
		if d, ok := tok.(json.Delim); ok && d == ']' {
			w.stack = w.stack[:len(w.stack)-1]
			return top.prefix, false, "", w.finishValue(), nil
		}
		top.index++
	}
	path = ""
	if top != nil {
		path = top.childPath()
	}
	if d, ok := tok.(json.Delim); ok {
		switch d {
		case '{':
			w.stack = append(w.stack, &walkFrame{object: true, wantKey: true, prefix: path})
		case '[':
			w.stack = append(w.stack, &walkFrame{index: -1, prefix: path})
		}
		return path, false, "", false, nil
	}
	return path, false, "", w.finishValue(), nil
}

// finishValue records that a value ended; true when it was the top-level value.
func (w *jsonWalker) finishValue() bool {
	n := len(w.stack)
	if n == 0 {
		return true
	}
	if top := w.stack[n-1]; top.object {
		top.wantKey = true
	}
	return false
}

// checkKeys rejects an object with the same key twice (case-insensitively, as encoding/json
// matches keys). It is a small structural scanner, not a validator: on anything malformed it
// stops and leaves the report to the real decode, which gives the same offsets. Paths are
// built only for the error.
func checkKeys(b []byte) error {
	s := keyScanner{b: b}
	if err := s.value(0); err != nil && err != errStopScan {
		return err
	}
	return nil
}

// errStopScan ends the duplicate scan at malformed input, for the decoder to report.
var errStopScan = errors.New("stop scan")

// maxScanDepth matches encoding/json's nesting limit; deeper input fails there anyway.
const maxScanDepth = 10000

type keyScanner struct {
	b    []byte
	i    int
	path []pathElem
}

type pathElem struct {
	key   string
	index int // used when isKey is false
	isKey bool
}

func (s *keyScanner) pathString() string {
	var sb strings.Builder
	for _, e := range s.path {
		if e.isKey {
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(e.key)
		} else {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(e.index))
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func (s *keyScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// str reads a string at s.i; with decode it returns the text, unescaped.
func (s *keyScanner) str(decode bool) (string, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", errStopScan
	}
	start := s.i
	escaped := false
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			s.i++
			if !decode {
				return "", nil
			}
			if !escaped {
				return string(s.b[start+1 : s.i-1]), nil
			}
			var text string
			if err := json.Unmarshal(s.b[start:s.i], &text); err != nil {
				return "", errStopScan
			}
			return text, nil
		}
	}
	return "", errStopScan
}

func (s *keyScanner) value(depth int) error {
	if depth > maxScanDepth {
		return errStopScan
	}
	s.ws()
	if s.i >= len(s.b) {
		return errStopScan
	}
	switch s.b[s.i] {
	case '{':
		return s.object(depth)
	case '[':
		return s.array(depth)
	case '"':
		_, err := s.str(false)
		return err
	default: // number, true, false, null: the decoder checks them
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *keyScanner) object(depth int) error {
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var keys []string
	var many map[string]struct{} // past a few keys, a case-folded set
	for {
		s.ws()
		key, err := s.str(true)
		if err != nil {
			return err
		}
		dup := false
		if many != nil {
			_, dup = many[strings.ToLower(key)]
			many[strings.ToLower(key)] = struct{}{}
		} else {
			for _, k := range keys {
				if strings.EqualFold(k, key) {
					dup = true
					break
				}
			}
			keys = append(keys, key)
			if len(keys) > 16 {
				many = make(map[string]struct{}, 2*len(keys))
				for _, k := range keys {
					many[strings.ToLower(k)] = struct{}{}
				}
			}
		}
		s.path = append(s.path, pathElem{key: key, isKey: true})
		if dup {
			p := s.pathString()
			return invalidJSON(p, fmt.Sprintf("field %s appears more than once", p))
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errStopScan
		}
		s.i++
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.i >= len(s.b) {
			return errStopScan
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errStopScan
		}
	}
}

func (s *keyScanner) array(depth int) error {
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	s.path = append(s.path, pathElem{})
	for index := 0; ; index++ {
		s.path[len(s.path)-1].index = index
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return errStopScan
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.path = s.path[:len(s.path)-1]
			return nil
		default:
			return errStopScan
		}
	}
}

// pathAtOffset is the path of the value that ends at byte offset off, for errors from
// encoding/json that report an offset and a path without array indexes.
func pathAtOffset(b []byte, off int64) string {
	w := newJSONWalker(b)
	for {
		path, _, _, done, err := w.step()
		if err != nil {
			return ""
		}
		if w.dec.InputOffset() >= off {
			return path
		}
		if done {
			return ""
		}
	}
}
