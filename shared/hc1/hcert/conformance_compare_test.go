package hcert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// canonical renders a decoded JSON or CBOR value the way the EU runner's
// _ordered compares: maps as sorted pairs, lists sorted (order-insensitive),
// numbers by value (1 == 1.0), and strings that look like ISO dates reduced
// to "YYYY-MM-DDTHH:MM:SSZ" with fraction and offset dropped, as dateutil's
// parse(...).replace(microsecond=0).strftime(...) does.
func canonical(v any) string {
	switch x := v.(type) {
	case map[string]any:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, strconv.Quote(k)+":"+canonical(e))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ",") + "}"
	case map[any]any:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, canonicalKey(k)+":"+canonical(e))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, canonical(e))
		}
		slices.Sort(parts)
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return strconv.Quote(normalizeDate(x))
	case json.Number:
		f, _ := x.Float64()
		return strconv.FormatFloat(f, 'g', -1, 64)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case uint64:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case int64:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case *big.Int:
		return x.String()
	case bool, nil:
		return fmt.Sprint(x)
	case time.Time: // cbor2 + the runner's object hook: UTC, whole seconds
		return strconv.Quote(x.UTC().Format("2006-01-02T15:04:05Z"))
	case []byte:
		return fmt.Sprintf("h'%x'", x)
	case cbor.Tag:
		return fmt.Sprintf("tag(%d,%s)", x.Number, canonical(x.Content))
	}
	return fmt.Sprintf("?%T(%v)", v, v)
}

func canonicalKey(k any) string {
	if s, ok := k.(string); ok {
		return strconv.Quote(s)
	}
	return "#" + canonical(k)
}

var isoDate = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?$`)

func normalizeDate(s string) string {
	m := isoDate.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	hm, sec := m[2], m[3]
	if hm == "" {
		hm = "00:00"
	}
	if sec == "" {
		sec = ":00"
	}
	return m[1] + "T" + hm + sec + "Z"
}

// testDecMode decodes suite CBOR generically for comparisons; lenient on
// purpose (it is the oracle side, like cbor2 in the runner).
var testDecMode, _ = cbor.DecOptions{DefaultMapType: nil}.DecMode()

func decodeGeneric(b []byte) (any, error) {
	var v any
	err := testDecMode.Unmarshal(b, &v)
	return v, err
}

func decodeJSONGeneric(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

// hcertOf returns the DCC inside a decoded CWT claims map (-260 -> 1), or
// ok=false when v is not a claims map.
func hcertOf(v any) (any, bool) {
	m, ok := v.(map[any]any)
	if !ok {
		return nil, false
	}
	h, ok := m[int64(-260)].(map[any]any)
	if !ok {
		return nil, false
	}
	d, ok := h[uint64(1)]
	return d, ok
}
