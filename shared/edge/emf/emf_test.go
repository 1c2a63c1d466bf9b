package emf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixed is the clock of the golden documents.
var fixed = time.Date(2025, 3, 1, 8, 30, 0, 123e6, time.UTC)

func newFixed(dims map[string]string) *Recorder {
	r := New(Namespace, dims)
	r.st.now = func() time.Time { return fixed }
	return r
}

// golden compares got with testdata/name (or writes it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

// lines parses every line of out as an EMF document.
func lines(t *testing.T, out []byte) []Document {
	t.Helper()
	var docs []Document
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		d, ok := Parse(sc.Bytes())
		if !ok {
			t.Fatalf("Flush wrote a line Parse refuses: %s", sc.Bytes())
		}
		docs = append(docs, d)
	}
	return docs
}

func TestFlushGolden(t *testing.T) {
	fn := map[string]string{DimFunction: "vaxpass-CentralSigningFunction-AbC"}
	for _, tc := range []struct {
		name   string
		record func(r *Recorder)
		docs   int
		sums   map[string]float64
	}{
		{
			name: "central.golden",
			record: func(r *Recorder) {
				kms := r.With(DimPurpose, PurposeCentral)
				kms.Count(KMSSign, 3)
				kms.Count(KMSSign, 2)
				kms.Count(KMSThrottle, 1)
				r.Count(CertificatesIssued, 5)
				r.Record(BudgetWaitMillis, UnitMilliseconds, 1.5)
				r.Record(BudgetWaitMillis, UnitMilliseconds, 20)
			},
			docs: 1,
			sums: map[string]float64{
				KMSSign: 5, KMSThrottle: 1, CertificatesIssued: 5, BudgetWaitMillis: 21.5,
				"KMSSign/Purpose=central": 5, "KMSThrottle/Purpose=central": 1,
				"KMSSign/Function=vaxpass-CentralSigningFunction-AbC":            5,
				"KMSThrottle/Function=vaxpass-CentralSigningFunction-AbC":        1,
				"CertificatesIssued/Function=vaxpass-CentralSigningFunction-AbC": 5,
				"BudgetWaitMillis/Function=vaxpass-CentralSigningFunction-AbC":   21.5,
			},
		},
		{
			// One root cannot hold KMSSign twice nor Purpose twice: two documents, the
			// function's own metric in the first.
			name: "two-purposes.golden",
			record: func(r *Recorder) {
				r.With(DimPurpose, PurposeRenewal).Count(KMSSign, 7)
				r.With(DimPurpose, PurposeCentral).Count(KMSSign, 1)
				r.Count(CertificatesRenewed, 7)
			},
			docs: 2,
			sums: map[string]float64{
				KMSSign: 8, CertificatesRenewed: 7,
				"KMSSign/Purpose=renewal": 7, "KMSSign/Purpose=central": 1,
				"KMSSign/Function=vaxpass-CentralSigningFunction-AbC":             8,
				"CertificatesRenewed/Function=vaxpass-CentralSigningFunction-AbC": 7,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFixed(fn)
			tc.record(r)
			var out bytes.Buffer
			if err := r.Flush(&out); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, out.Bytes())
			docs := lines(t, out.Bytes())
			if len(docs) != tc.docs {
				t.Errorf("%d documents, want %d", len(docs), tc.docs)
			}
			for _, d := range docs {
				if !d.Timestamp.Equal(fixed.Truncate(time.Millisecond)) {
					t.Errorf("timestamp %v, want %v", d.Timestamp, fixed)
				}
			}
			if got := Sum(docs); !reflect.DeepEqual(got, tc.sums) {
				t.Errorf("sums %v, want %v", got, tc.sums)
			}
			// Flush forgot them: the next one writes nothing.
			out.Reset()
			if err := r.Flush(&out); err != nil || out.Len() != 0 {
				t.Errorf("second Flush wrote %q (%v), want nothing", out.Bytes(), err)
			}
		})
	}
}

func TestFlushNothing(t *testing.T) {
	r := New(Namespace, nil)
	w := &countingWriter{}
	if err := r.Flush(w); err != nil {
		t.Fatal(err)
	}
	if w.writes != 0 {
		t.Errorf("%d writes, want none", w.writes)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestFlushNoDimensions(t *testing.T) {
	r := newFixed(nil)
	r.Count(CertificatesIssued, 1)
	var out bytes.Buffer
	if err := r.Flush(&out); err != nil {
		t.Fatal(err)
	}
	// An empty dimension set: the metric is published without dimensions.
	if !strings.Contains(out.String(), `"Dimensions":[[]]`) {
		t.Errorf("got %s, want one empty dimension set", out.Bytes())
	}
	if got := Sum(lines(t, out.Bytes())); !reflect.DeepEqual(got, map[string]float64{CertificatesIssued: 1}) {
		t.Errorf("sums %v", got)
	}
}

func TestFlushLimits(t *testing.T) {
	r := newFixed(map[string]string{DimFunction: "f"})
	for i := range 150 {
		r.Count(fmt.Sprintf("M%03d", i), int64(i))
	}
	for i := range 250 {
		r.Record(BudgetWaitMillis, UnitMilliseconds, float64(i))
	}
	w := &countingWriter{}
	if err := r.Flush(w); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Errorf("%d writes, want 1", w.writes)
	}
	docs := lines(t, w.Bytes())
	// 151 metrics over documents of at most 100; BudgetWaitMillis's 250 values in three
	// documents (a root holds one array of at most 100 per name).
	if len(docs) != 3 {
		t.Errorf("%d documents, want 3", len(docs))
	}
	for _, d := range docs {
		if len(d.Metrics) > MaxMetrics {
			t.Errorf("a document with %d metrics", len(d.Metrics))
		}
		for _, m := range d.Metrics {
			if len(m.Values) > MaxValues {
				t.Errorf("%s with %d values", m.Name, len(m.Values))
			}
		}
	}
	sums := Sum(docs)
	if sums[BudgetWaitMillis] != 249*250/2 || sums["M149"] != 149 || sums["M000"] != 0 {
		t.Errorf("sums: BudgetWaitMillis %v, M149 %v, M000 %v", sums[BudgetWaitMillis], sums["M149"], sums["M000"])
	}
	var total float64
	for i := range 150 {
		total += sums[fmt.Sprintf("M%03d", i)]
	}
	if total != 149*150/2 {
		t.Errorf("counted metrics total %v, want %v", total, 149*150/2)
	}
}

func TestRecorderRefuses(t *testing.T) {
	r := newFixed(map[string]string{DimFunction: "f"})
	r.Count("", 1)
	r.Count("_aws", 1)
	r.Count(DimFunction, 1) // would overwrite the dimension's root member
	r.Record(BudgetWaitMillis, UnitMilliseconds, math.NaN())
	r.Record(BudgetWaitMillis, UnitMilliseconds, math.Inf(1))
	r.With(DimPurpose, "").Count(KMSSign, 1)
	r.Count(CertificatesIssued, 4) // valid: still written
	var out bytes.Buffer
	err := r.Flush(&out)
	if !errors.Is(err, ErrDocument) {
		t.Fatalf("Flush error %v, want ErrDocument", err)
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 6 { // 5 kept, 1 "more refused"
		t.Errorf("error has %d lines, want 6:\n%v", n, err)
	}
	if got := Sum(lines(t, out.Bytes())); got[CertificatesIssued] != 4 || len(got) != 2 {
		t.Errorf("sums %v, want CertificatesIssued 4 only", got)
	}
	if err := r.Flush(&out); err != nil {
		t.Errorf("errors not reset: %v", err)
	}

	for _, bad := range []*Recorder{New("", nil), New("AWS/Lambda", nil), New(Namespace, map[string]string{"k": strings.Repeat("v", 1025)})} {
		bad.Count(KMSSign, 1)
		out.Reset()
		if err := bad.Flush(&out); !errors.Is(err, ErrDocument) || out.Len() != 0 {
			t.Errorf("invalid recorder wrote %q, error %v", out.Bytes(), err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestFlushWriteError(t *testing.T) {
	r := New(Namespace, nil)
	r.Count(KMSSign, 1)
	if err := r.Flush(failingWriter{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Flush error %v, want the write's", err)
	}
}

// TestRecorderConcurrent counts from many goroutines while another flushes: every count
// lands in exactly one document.
func TestRecorderConcurrent(t *testing.T) {
	r := New(Namespace, map[string]string{DimFunction: "f"})
	central := r.With(DimPurpose, PurposeCentral)
	var out bytes.Buffer
	var outMu sync.Mutex
	flush := func() {
		outMu.Lock()
		defer outMu.Unlock()
		if err := r.Flush(&out); err != nil {
			t.Error(err)
		}
	}
	const workers, each = 8, 500
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				flush()
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				central.Count(KMSSign, 1)
				r.Count(CertificatesIssued, 2)
			}
		}()
	}
	wg.Wait()
	close(done)
	flush()
	sums := Sum(lines(t, out.Bytes()))
	if sums[KMSSign] != workers*each || sums[CertificatesIssued] != 2*workers*each {
		t.Errorf("sums %v, want KMSSign %d and CertificatesIssued %d", sums, workers*each, 2*workers*each)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		ok   bool
	}{
		{"raw document", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"F":"f","M":2}`, true},
		{"white space around", " \t{\"_aws\":{\"Timestamp\":1,\"CloudWatchMetrics\":[]}}\r\n", true},
		{"array of values", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":[1,2.5]}`, true},
		{"no dimensions member", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":1}`, true},
		{"slog line", `{"time":"2025-03-01T08:30:00Z","level":"INFO","msg":"batch signed","n":10}`, false},
		{"platform line", `START RequestId: 8f5c Version: $LATEST`, false},
		{"text", `signed "_aws" things`, false},
		{"empty", ``, false},
		{"prefixed document", `2025-03-01T08:30:00Z	8f5c	INFO	{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`, false},
		{"wrapped in a message", `{"level":"INFO","message":{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}}`, false},
		{"trailing data", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}} x`, false},
		{"no timestamp", `{"_aws":{"CloudWatchMetrics":[]}}`, false},
		{"timestamp a string", `{"_aws":{"Timestamp":"1","CloudWatchMetrics":[]}}`, false},
		{"timestamp fractional", `{"_aws":{"Timestamp":1.5,"CloudWatchMetrics":[]}}`, false},
		{"no directives", `{"_aws":{"Timestamp":1}}`, false},
		{"directives null", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":null}}`, false},
		{"member names are case-sensitive", `{"_aws":{"timestamp":1,"cloudWatchMetrics":[]}}`, false},
		{"namespace missing", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Metrics":[{"Name":"M"}]}]},"M":1}`, false},
		{"metric value missing", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]}}`, false},
		{"metric value a string", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":"1"}`, false},
		{"metric value null", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":null}`, false},
		{"null in values", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":[1,null]}`, false},
		{"empty values", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":[]}`, false},
		{"dimension missing", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["F"]],"Metrics":[{"Name":"M"}]}]},"M":1}`, false},
		{"dimension a number", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["F"]],"Metrics":[{"Name":"M"}]}]},"F":1,"M":1}`, false},
		{"dimension empty", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["F"]],"Metrics":[{"Name":"M"}]}]},"F":"","M":1}`, false},
		{"unit a number", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M","Unit":1}]}]},"M":1}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := Parse([]byte(tc.line)); ok != tc.ok {
				t.Errorf("Parse ok = %v, want %v", ok, tc.ok)
			}
		})
	}
	long := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"M"}]}]},"M":[` + strings.Repeat("1,", MaxValues) + `1]}`
	if _, ok := Parse([]byte(long)); ok {
		t.Errorf("Parse accepted %d values of one metric", MaxValues+1)
	}
}

// TestParseLog reads a function's log as CloudWatch stores it (testdata/log.txt: platform
// lines, slog lines, EMF documents, broken ones) and compares the totals with
// testdata/log.sums.json.
func TestParseLog(t *testing.T) {
	log, err := os.ReadFile(filepath.Join("testdata", "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []Document
	for _, line := range bytes.Split(log, []byte("\n")) {
		if d, ok := Parse(line); ok {
			docs = append(docs, d)
		}
	}
	if len(docs) != 3 {
		t.Errorf("%d documents in log.txt, want 3", len(docs))
	}
	got, err := json.MarshalIndent(Sum(docs), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "log.sums.json", append(got, '\n'))
}

func TestMarshalRefuses(t *testing.T) {
	m := func(name string, dims map[string]string, values ...float64) Metric {
		return Metric{Namespace: Namespace, Name: name, Unit: UnitCount, Dimensions: dims, Values: values}
	}
	for name, doc := range map[string]Document{
		"no metrics":           {},
		"two values of a key":  {Metrics: []Metric{m("A", map[string]string{"P": "x"}, 1), m("B", map[string]string{"P": "y"}, 1)}},
		"a name twice":         {Metrics: []Metric{m("A", nil, 1), m("A", map[string]string{"P": "x"}, 1)}},
		"metric and dimension": {Metrics: []Metric{m("A", map[string]string{"B": "x"}, 1), m("B", nil, 1)}},
		"no values":            {Metrics: []Metric{m("A", nil)}},
		"AWS namespace":        {Metrics: []Metric{{Namespace: "AWS/SQS", Name: "A", Values: []float64{1}}}},
		"too many in a directive": {Metrics: func() []Metric {
			var ms []Metric
			for i := range MaxMetrics + 1 {
				ms = append(ms, m(fmt.Sprint("M", i), nil, 1))
			}
			return ms
		}()},
	} {
		if b, err := doc.MarshalJSON(); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: marshaled %s (%v), want ErrDocument", name, b, err)
		}
	}
}

// FuzzParse: Parse never panics; what it accepts has values within the limits, and
// re-encoding it (when the root allows) reads back to the same totals.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"central.golden", "two-purposes.golden", "log.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		doc, ok := Parse(line)
		if !ok {
			return
		}
		for _, m := range doc.Metrics {
			if len(m.Values) == 0 || len(m.Values) > MaxValues || m.Name == "" || m.Namespace == "" {
				t.Fatalf("accepted metric %+v", m)
			}
		}
		b, err := doc.MarshalJSON()
		if err != nil {
			return // e.g. two directives naming one root member: valid EMF, not Marshal's shape
		}
		again, ok := Parse(b)
		if !ok {
			t.Fatalf("Parse refuses MarshalJSON's %s", b)
		}
		if got, want := Sum([]Document{again}), Sum([]Document{doc}); !sameSums(got, want) {
			t.Fatalf("round trip sums %v, want %v", got, want)
		}
	})
}

// sameSums compares totals, a NaN (from huge values of both signs) equal to itself.
func sameSums(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
			return false
		}
	}
	return true
}
