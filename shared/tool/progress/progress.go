// Package progress reports the progress of long command-line runs (generating or matching
// millions of records). On a terminal it redraws one line with a bar, count/total, rate and
// ETA; elsewhere (a log file, CI) it prints plain lines, throttled so logs stay short.
//
// The hot path is Add: one atomic add. Drawing happens on a ticker in its own goroutine, so
// a caller adding per record pays nothing for the display.
package progress

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives the time every d, and a stop function.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Defaults of Options.
const (
	DefaultRedraw     = 150 * time.Millisecond
	DefaultPlainEvery = 5 * time.Second
	DefaultPlainStep  = 10 // percent
	barWidth          = 24
)

// Options configure a Reporter. Only Label is usually set; the zero values pick defaults.
type Options struct {
	Label string // what is counted, e.g. "people"
	Total int64  // expected count; 0 when unknown (no bar, no ETA)
	// Terminal selects the redrawn line (true) or plain lines (false).
	Terminal bool
	// Redraw is the ticker period: how often a terminal line is redrawn, and how often the
	// plain mode checks whether a line is due.
	Redraw time.Duration
	// PlainEvery and PlainStep throttle plain lines: one is printed when PlainEvery has
	// passed since the last one, or the count has moved PlainStep percent of Total.
	PlainEvery time.Duration
	PlainStep  int
	Clock      Clock
}

// Reporter counts work done and shows it. Add may be called from many goroutines.
type Reporter struct {
	w     io.Writer
	opt   Options
	count atomic.Int64

	mu        sync.Mutex // guards the fields below and writes to w
	start     time.Time
	lastPlain time.Time
	lastPct   int
	lastWidth int
	done      bool
	buf       []byte

	stopTicker func()
	quit       chan struct{}
	exited     chan struct{}
	stopOnce   sync.Once
}

// New starts a reporter writing to w. Call Done when the work is over.
func New(w io.Writer, opt Options) *Reporter {
	if opt.Redraw <= 0 {
		opt.Redraw = DefaultRedraw
	}
	if opt.PlainEvery <= 0 {
		opt.PlainEvery = DefaultPlainEvery
	}
	if opt.PlainStep <= 0 {
		opt.PlainStep = DefaultPlainStep
	}
	if opt.Clock == nil {
		opt.Clock = systemClock{}
	}
	r := &Reporter{w: w, opt: opt, quit: make(chan struct{}), exited: make(chan struct{})}
	r.start = opt.Clock.Now()
	r.lastPlain = r.start
	ticks, stop := opt.Clock.NewTicker(opt.Redraw)
	r.stopTicker = stop
	go r.loop(ticks)
	return r
}

// Add records n more units of work done. It is safe for concurrent use and cheap.
func (r *Reporter) Add(n int64) { r.count.Add(n) }

// Count is the work recorded so far.
func (r *Reporter) Count() int64 { return r.count.Load() }

func (r *Reporter) loop(ticks <-chan time.Time) {
	defer close(r.exited)
	for {
		select {
		case <-r.quit:
			return
		case now := <-ticks:
			r.tick(now)
		}
	}
}

// tick draws what is due at now.
func (r *Reporter) tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	n := r.count.Load()
	if r.opt.Terminal {
		r.drawLine(now, n)
		return
	}
	pct := r.percent(n)
	stepDue := r.opt.Total > 0 && pct >= r.lastPct+r.opt.PlainStep
	if !stepDue && now.Sub(r.lastPlain) < r.opt.PlainEvery {
		return
	}
	r.lastPlain = now
	r.lastPct = pct - pct%r.opt.PlainStep
	r.buf = r.appendStatus(r.buf[:0], now, n)
	r.buf = append(r.buf, '\n')
	r.w.Write(r.buf)
}

// Done stops the display and prints a final summary line. Further calls do nothing.
func (r *Reporter) Done() {
	r.stopOnce.Do(func() {
		close(r.quit)
		<-r.exited
		r.stopTicker()
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	now := r.opt.Clock.Now()
	n := r.count.Load()
	elapsed := now.Sub(r.start)
	b := r.buf[:0]
	if r.opt.Terminal {
		b = append(b, '\r')
	}
	b = append(b, r.opt.Label...)
	b = append(b, ": done "...)
	b = appendGrouped(b, n)
	b = append(b, " in "...)
	b = appendSeconds(b, elapsed)
	b = append(b, " ("...)
	b = appendGrouped(b, rate(n, elapsed))
	b = append(b, "/s)"...)
	b = r.pad(b)
	b = append(b, '\n')
	r.buf = b
	r.w.Write(b)
}

func (r *Reporter) drawLine(now time.Time, n int64) {
	b := append(r.buf[:0], '\r')
	b = r.appendStatus(b, now, n)
	b = r.pad(b)
	r.buf = b
	r.w.Write(b)
}

// pad blanks out what is left of a longer previous terminal line; it avoids ANSI codes so
// that any terminal shows it right.
func (r *Reporter) pad(b []byte) []byte {
	if !r.opt.Terminal {
		return b
	}
	width := len(b) - 1 // without the \r
	for i := width; i < r.lastWidth; i++ {
		b = append(b, ' ')
	}
	r.lastWidth = width
	return b
}

func (r *Reporter) percent(n int64) int {
	if r.opt.Total <= 0 {
		return 0
	}
	return int(min(n, r.opt.Total) * 100 / r.opt.Total)
}

// appendStatus formats "label [####....]  45% 450,000/1,000,000 98,765/s ETA 0:05".
func (r *Reporter) appendStatus(b []byte, now time.Time, n int64) []byte {
	elapsed := now.Sub(r.start)
	perSec := rate(n, elapsed)
	b = append(b, r.opt.Label...)
	b = append(b, ' ')
	if r.opt.Total > 0 {
		if r.opt.Terminal {
			filled := int(min(n, r.opt.Total) * barWidth / r.opt.Total)
			b = append(b, '[')
			for i := range barWidth {
				if i < filled {
					b = append(b, '#')
				} else {
					b = append(b, '.')
				}
			}
			b = append(b, "] "...)
		}
		pct := r.percent(n)
		if pct < 10 {
			b = append(b, ' ')
		}
		if pct < 100 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(pct), 10)
		b = append(b, "% "...)
	}
	b = appendGrouped(b, n)
	if r.opt.Total > 0 {
		b = append(b, '/')
		b = appendGrouped(b, r.opt.Total)
	}
	b = append(b, ' ')
	b = appendGrouped(b, perSec)
	b = append(b, "/s"...)
	if r.opt.Total > 0 {
		b = append(b, " ETA "...)
		if perSec <= 0 {
			b = append(b, '?')
		} else {
			left := max(r.opt.Total-n, 0)
			b = appendClock(b, time.Duration(left/perSec)*time.Second)
		}
	}
	return b
}

func rate(n int64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(float64(n) / elapsed.Seconds())
}

// appendGrouped writes n with thousands separators: 1234567 -> 1,234,567.
func appendGrouped(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], n, 10)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	return b
}

// appendClock writes a duration as H:MM:SS or M:SS.
func appendClock(b []byte, d time.Duration) []byte {
	s := int64(d / time.Second)
	h, m, sec := s/3600, s/60%60, s%60
	if h > 0 {
		b = strconv.AppendInt(b, h, 10)
		b = append(b, ':')
		b = append2(b, m)
	} else {
		b = strconv.AppendInt(b, m, 10)
	}
	b = append(b, ':')
	return append2(b, sec)
}

func append2(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendSeconds writes a duration as seconds with one decimal: 4.2s.
func appendSeconds(b []byte, d time.Duration) []byte {
	tenths := int64(d / (100 * time.Millisecond))
	b = strconv.AppendInt(b, tenths/10, 10)
	b = append(b, '.')
	b = append(b, byte('0'+tenths%10))
	return append(b, 's')
}
