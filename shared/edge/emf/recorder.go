package emf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxErrors bounds the recording errors a Flush reports (the rest are counted).
const maxErrors = 5

// Recorder accumulates metrics until Flush writes them as EMF documents. Its dimensions
// are fixed when it is made (New, With); views made by With share their parent's
// buffer, so one Flush writes everything. It is safe for concurrent use.
type Recorder struct {
	st   *state
	dims map[string]string
	err  error // the dimensions are invalid: every record is refused with it
}

// state is the buffer shared by a Recorder and its views.
type state struct {
	namespace string
	now       func() time.Time

	mu      sync.Mutex
	groups  map[string]*group
	errs    []error
	dropped int // records refused beyond maxErrors
}

// group is the metrics recorded with one dimension map.
type group struct {
	dims    map[string]string
	metrics map[string]*series
}

// series is one metric's data since the last flush: Count adds to count, Record appends
// to values.
type series struct {
	unit    Unit
	count   float64
	counted bool
	values  []float64
}

// New returns a recorder of metrics in namespace with the dimensions dims (copied), e.g.
// New(Namespace, map[string]string{DimFunction: os.Getenv("AWS_LAMBDA_FUNCTION_NAME")}).
// Invalid dimensions (an empty value, more than MaxDimensions) do not panic: every record
// is refused and Flush reports why.
func New(namespace string, dims map[string]string) *Recorder {
	st := &state{namespace: namespace, now: time.Now, groups: map[string]*group{}}
	r := &Recorder{st: st, dims: maps(dims)}
	if !validName(namespace) || strings.HasPrefix(namespace, "AWS/") {
		r.err = fmt.Errorf("%w: namespace %q", ErrDocument, namespace)
	}
	r.err = errors.Join(r.err, checkDims(r.dims))
	return r
}

// With returns a view of r that records with one more dimension (or another value of an
// existing one), e.g. r.With(DimPurpose, PurposeCentral). It shares r's buffer.
func (r *Recorder) With(key, value string) *Recorder {
	dims := maps(r.dims)
	dims[key] = value
	v := &Recorder{st: r.st, dims: dims, err: r.err}
	if v.err == nil {
		v.err = checkDims(dims)
	}
	return v
}

func checkDims(dims map[string]string) error {
	if len(dims) > MaxDimensions {
		return fmt.Errorf("%w: %d dimensions (at most %d)", ErrDocument, len(dims), MaxDimensions)
	}
	for k, v := range dims {
		if !validName(k) || k == "_aws" || !validValue(v) {
			return fmt.Errorf("%w: dimension %q=%q", ErrDocument, k, v)
		}
	}
	return nil
}

// Count adds n to metric (unit Count). All counts of a metric between two flushes are
// written as one value, their sum.
func (r *Recorder) Count(metric string, n int64) {
	r.add(metric, UnitCount, float64(n), true)
}

// Record adds one value of metric (e.g. a duration in UnitMilliseconds); CloudWatch
// keeps each value, so Average, Maximum and percentiles are available.
func (r *Recorder) Record(metric string, unit Unit, v float64) {
	r.add(metric, unit, v, false)
}

func (r *Recorder) add(metric string, unit Unit, v float64, count bool) {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	err := r.err
	switch {
	case err != nil:
	case !validName(metric) || metric == "_aws":
		err = fmt.Errorf("%w: metric name %q", ErrDocument, metric)
	case r.dims[metric] != "":
		err = fmt.Errorf("%w: metric %s is also a dimension", ErrDocument, metric)
	case math.IsNaN(v) || math.IsInf(v, 0):
		err = fmt.Errorf("%w: metric %s value %v", ErrDocument, metric, v)
	}
	if err != nil {
		if len(st.errs) < maxErrors {
			st.errs = append(st.errs, err)
		} else {
			st.dropped++
		}
		return
	}
	key := dimsKey(st.namespace, r.dims)
	g := st.groups[key]
	if g == nil {
		g = &group{dims: r.dims, metrics: map[string]*series{}}
		st.groups[key] = g
	}
	s := g.metrics[metric]
	if s == nil {
		s = &series{unit: unit} // the first record's unit is the metric's
		g.metrics[metric] = s
	}
	if count {
		s.count += v
		s.counted = true
	} else {
		s.values = append(s.values, v)
	}
}

// Flush writes every metric recorded since the last Flush, then forgets them; nothing is
// written when nothing was recorded. Usually that is one line (one JSON document, ending
// in a newline); more when metrics cannot share a document's root: the same metric with
// two dimension values (KMSSign with Purpose central and renewal), more than MaxMetrics
// metrics or more than MaxValues values of one metric. The lines are written with one
// Write. Records refused since the last Flush are reported in the error (the others are
// still written); a failed Write loses the metrics it held.
func (r *Recorder) Flush(w io.Writer) error {
	st := r.st
	st.mu.Lock()
	groups, errs, dropped := st.groups, st.errs, st.dropped
	st.groups, st.errs, st.dropped = map[string]*group{}, nil, 0
	now := st.now()
	st.mu.Unlock()

	if dropped > 0 {
		errs = append(errs, fmt.Errorf("%w: %d more records refused", ErrDocument, dropped))
	}
	var out bytes.Buffer
	for _, doc := range pack(st.namespace, groups, now) {
		line, err := doc.MarshalJSON()
		if err != nil { // cannot happen: pack keeps every document valid
			errs = append(errs, err)
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if out.Len() > 0 {
		if _, err := w.Write(out.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("emf: write metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// doc is a document being packed: its root's dimensions and metric names.
type doc struct {
	dims  map[string]string
	names map[string]bool
	Document
}

// pack lays the groups' metrics out in as few documents as the root allows: a metric
// joins the first document where its dimensions agree with the dimensions already there,
// its name is not used yet and the document has fewer than MaxMetrics metrics. Values
// beyond MaxValues continue in later documents.
func pack(namespace string, groups map[string]*group, ts time.Time) []Document {
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var docs []*doc
	place := func(m Metric) {
		for _, d := range docs {
			if len(d.Metrics) < MaxMetrics && !d.names[m.Name] && d.dims[m.Name] == "" && agree(d, m.Dimensions) {
				d.Metrics = append(d.Metrics, m)
				d.names[m.Name] = true
				for k, v := range m.Dimensions {
					d.dims[k] = v
				}
				return
			}
		}
		d := &doc{dims: maps(m.Dimensions), names: map[string]bool{m.Name: true}, Document: Document{Timestamp: ts, Metrics: []Metric{m}}}
		docs = append(docs, d)
	}
	for _, k := range keys {
		g := groups[k]
		names := make([]string, 0, len(g.metrics))
		for name := range g.metrics {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s := g.metrics[name]
			values := s.values
			if s.counted {
				values = append(values, s.count)
			}
			for len(values) > 0 {
				n := min(len(values), MaxValues)
				place(Metric{Namespace: namespace, Name: name, Unit: s.unit, Dimensions: g.dims, Values: values[:n:n]})
				values = values[n:]
			}
		}
	}
	out := make([]Document, len(docs))
	for i, d := range docs {
		out[i] = d.Document
	}
	return out
}

// agree reports whether the dimensions dims fit d's root: no key with another value
// there, none that is a metric's name.
func agree(d *doc, dims map[string]string) bool {
	for k, v := range dims {
		if w, ok := d.dims[k]; ok && w != v || d.names[k] {
			return false
		}
	}
	return true
}
