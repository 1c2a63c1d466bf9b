package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrDocument reports a document that breaks the specification (or CloudWatch's limits).
var ErrDocument = errors.New("emf: invalid embedded metric format document")

// Document is one EMF log line: its timestamp and the metrics it defines.
type Document struct {
	Timestamp time.Time
	Metrics   []Metric
}

// Metric is one metric definition of a document with its values.
type Metric struct {
	Namespace string
	Name      string
	// Unit is "" when the definition names none (CloudWatch then records None).
	Unit Unit
	// Dimensions holds every key of the directive's dimension sets with its value.
	Dimensions map[string]string
	// Values are the metric's values in this document (1 to MaxValues); CloudWatch
	// aggregates them (Sum, Average, ...).
	Values []float64
}

// Total is the sum of m's values.
func (m Metric) Total() float64 {
	var t float64
	for _, v := range m.Values {
		t += v
	}
	return t
}

// validName reports a namespace, metric or dimension name CloudWatch accepts.
func validName(s string) bool {
	return s != "" && len(s) <= maxName && strings.TrimSpace(s) != ""
}

// validValue reports a dimension value CloudWatch accepts.
func validValue(s string) bool { return s != "" && len(s) <= maxDimValue && strings.TrimSpace(s) != "" }

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dimsKey is a canonical string of a namespace and dimension map (the identity of a
// directive).
func dimsKey(namespace string, dims map[string]string) string {
	var b strings.Builder
	b.WriteString(strconv.Quote(namespace))
	for _, k := range sortedKeys(dims) {
		b.WriteString("," + strconv.Quote(k) + "=" + strconv.Quote(dims[k]))
	}
	return b.String()
}

// MarshalJSON encodes d as one EMF document: a directive per (namespace, dimensions) with
// one dimension set of all its dimension keys, then the dimension values and the metric
// values at the root (one value as a number, several as an array). It fails when the
// root would be ambiguous (one key with two values, or a metric name that is also a
// dimension) or a limit is exceeded.
func (d Document) MarshalJSON() ([]byte, error) {
	if len(d.Metrics) == 0 {
		return nil, fmt.Errorf("%w: no metrics", ErrDocument)
	}
	type directive struct {
		namespace string
		keys      []string
		metrics   []Metric
	}
	var dirs []*directive
	byKey := map[string]*directive{}
	dims := map[string]string{}
	values := map[string][]float64{}
	var valueOrder []string
	for _, m := range d.Metrics {
		if !validName(m.Namespace) || strings.HasPrefix(m.Namespace, "AWS/") {
			return nil, fmt.Errorf("%w: namespace %q", ErrDocument, m.Namespace)
		}
		if !validName(m.Name) || m.Name == "_aws" {
			return nil, fmt.Errorf("%w: metric name %q", ErrDocument, m.Name)
		}
		if len(m.Values) == 0 || len(m.Values) > MaxValues {
			return nil, fmt.Errorf("%w: metric %s has %d values (1 to %d)", ErrDocument, m.Name, len(m.Values), MaxValues)
		}
		for _, v := range m.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%w: metric %s value %v", ErrDocument, m.Name, v)
			}
		}
		if len(m.Dimensions) > MaxDimensions {
			return nil, fmt.Errorf("%w: metric %s has %d dimensions (at most %d)", ErrDocument, m.Name, len(m.Dimensions), MaxDimensions)
		}
		for k, v := range m.Dimensions {
			if !validName(k) || k == "_aws" || !validValue(v) {
				return nil, fmt.Errorf("%w: dimension %q=%q", ErrDocument, k, v)
			}
			if old, ok := dims[k]; ok && old != v {
				return nil, fmt.Errorf("%w: dimension %s has two values, %q and %q", ErrDocument, k, old, v)
			}
			dims[k] = v
		}
		if _, dup := values[m.Name]; dup {
			return nil, fmt.Errorf("%w: metric %s defined twice", ErrDocument, m.Name)
		}
		values[m.Name] = m.Values
		valueOrder = append(valueOrder, m.Name)
		key := dimsKey(m.Namespace, m.Dimensions)
		dir := byKey[key]
		if dir == nil {
			dir = &directive{namespace: m.Namespace, keys: sortedKeys(m.Dimensions)}
			byKey[key] = dir
			dirs = append(dirs, dir)
		}
		if len(dir.metrics) == MaxMetrics {
			return nil, fmt.Errorf("%w: more than %d metrics in one directive", ErrDocument, MaxMetrics)
		}
		dir.metrics = append(dir.metrics, m)
	}
	for name := range values {
		if _, clash := dims[name]; clash {
			return nil, fmt.Errorf("%w: %s is both a metric and a dimension", ErrDocument, name)
		}
	}

	var b bytes.Buffer
	b.WriteString(`{"_aws":{"Timestamp":`)
	b.WriteString(strconv.FormatInt(d.Timestamp.UnixMilli(), 10))
	b.WriteString(`,"CloudWatchMetrics":[`)
	for i, dir := range dirs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"Namespace":`)
		writeString(&b, dir.namespace)
		// One dimension set of every key; an empty set publishes the metric without
		// dimensions.
		b.WriteString(`,"Dimensions":[[`)
		for j, k := range dir.keys {
			if j > 0 {
				b.WriteByte(',')
			}
			writeString(&b, k)
		}
		b.WriteString(`]],"Metrics":[`)
		for j, m := range dir.metrics {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"Name":`)
			writeString(&b, m.Name)
			if m.Unit != "" {
				b.WriteString(`,"Unit":`)
				writeString(&b, string(m.Unit))
			}
			b.WriteByte('}')
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	for _, k := range sortedKeys(dims) {
		b.WriteByte(',')
		writeString(&b, k)
		b.WriteByte(':')
		writeString(&b, dims[k])
	}
	for _, name := range valueOrder {
		b.WriteByte(',')
		writeString(&b, name)
		b.WriteByte(':')
		vs := values[name]
		if len(vs) == 1 {
			writeNumber(&b, vs[0])
			continue
		}
		b.WriteByte('[')
		for j, v := range vs {
			if j > 0 {
				b.WriteByte(',')
			}
			writeNumber(&b, v)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

func writeNumber(b *bytes.Buffer, v float64) {
	q, _ := json.Marshal(v) // finite: checked by the caller
	b.Write(q)
}

// Parse reads one log line as an EMF document. It accepts exactly what CloudWatch
// extracts metrics from: a line that is one JSON object (surrounding white space aside)
// with an "_aws" member whose directives are valid and whose target members are present
// with the right types. Any other line -- slog's JSON lines, platform lines (START, END,
// REPORT), text, an EMF document wrapped in another object or a broken one -- is not a
// document: ok is false. That strictness is deliberate: a document Parse refuses is one
// CloudWatch would not turn into metrics either.
func Parse(line []byte) (doc Document, ok bool) {
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[0] != '{' || !bytes.Contains(line, []byte(`"_aws"`)) {
		return Document{}, false // cheap exit for the usual non-EMF line
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return Document{}, false
	}
	aws, ok := object(root["_aws"])
	if !ok {
		return Document{}, false
	}
	var ts float64
	if raw, ok := aws["Timestamp"]; !ok || !number(raw, &ts) || ts < 0 || ts > 1e15 || ts != math.Trunc(ts) {
		return Document{}, false
	}
	doc.Timestamp = time.UnixMilli(int64(ts)).UTC()
	var directives []json.RawMessage
	if raw, ok := aws["CloudWatchMetrics"]; !ok || !array(raw, &directives) {
		return Document{}, false
	}
	for _, rawDir := range directives {
		dir, ok := object(rawDir)
		if !ok {
			return Document{}, false
		}
		var namespace string
		if !str(dir["Namespace"], &namespace) || !validName(namespace) {
			return Document{}, false
		}
		dims := map[string]string{}
		var sets [][]string
		if raw, ok := dir["Dimensions"]; ok && !array(raw, &sets) {
			return Document{}, false
		}
		for _, set := range sets {
			if len(set) > MaxDimensions {
				return Document{}, false
			}
			for _, k := range set {
				var v string
				if k == "_aws" || !str(root[k], &v) || !validValue(v) {
					return Document{}, false
				}
				dims[k] = v
			}
		}
		var defs []json.RawMessage
		if !array(dir["Metrics"], &defs) || len(defs) > MaxMetrics {
			return Document{}, false
		}
		for _, rawDef := range defs {
			def, ok := object(rawDef)
			if !ok {
				return Document{}, false
			}
			m := Metric{Namespace: namespace, Dimensions: maps(dims)}
			if !str(def["Name"], &m.Name) || !validName(m.Name) || m.Name == "_aws" {
				return Document{}, false
			}
			if raw, ok := def["Unit"]; ok {
				var u string
				if !str(raw, &u) {
					return Document{}, false
				}
				m.Unit = Unit(u)
			}
			if m.Values, ok = parseValues(root[m.Name]); !ok {
				return Document{}, false
			}
			doc.Metrics = append(doc.Metrics, m)
		}
	}
	return doc, true
}

// object, array, str and number decode one JSON value of that type (json.Unmarshal
// would accept null for each, and match member names case-insensitively: the
// specification's names are case-sensitive, hence maps).
func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

func array(raw json.RawMessage, v any) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, v) == nil
}

func str(raw json.RawMessage, v *string) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, v) == nil
}

func number(raw json.RawMessage, v *float64) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && json.Unmarshal(raw, v) == nil
}

// parseValues reads a metric's target member: a number or an array of 1 to MaxValues
// numbers.
func parseValues(raw json.RawMessage) ([]float64, bool) {
	raw = bytes.TrimSpace(raw)
	var v float64
	if number(raw, &v) {
		return []float64{v}, true
	}
	var items []json.RawMessage
	if !array(raw, &items) || len(items) == 0 || len(items) > MaxValues {
		return nil, false
	}
	vs := make([]float64, len(items))
	for i, item := range items {
		if !number(item, &vs[i]) { // null inside an array would decode as 0
			return nil, false
		}
	}
	return vs, true
}

// maps copies m (every metric of a directive gets its own map).
func maps(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Sum totals the documents' metric values (all namespaces) by name and by single
// dimension: the key Name holds the total of every value of the metric, and the key
// "Name/Key=Value" the total of those recorded with dimension Key=Value (e.g.
// "KMSSign/Purpose=central"; "KMSSign/Function=..." too). A directive with several
// dimension sets publishes each value once per set in CloudWatch; Sum counts it once.
func Sum(docs []Document) map[string]float64 {
	out := map[string]float64{}
	for _, d := range docs {
		for _, m := range d.Metrics {
			t := m.Total()
			out[m.Name] += t
			for k, v := range m.Dimensions {
				out[SumKey(m.Name, k, v)] += t
			}
		}
	}
	return out
}

// SumKey is Sum's key of metric name recorded with dimension key=value.
func SumKey(name, key, value string) string { return name + "/" + key + "=" + value }
