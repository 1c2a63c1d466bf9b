package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Machine describes where a run happened, for BENCHMARKS.md.
type Machine struct {
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	CPUModel   string  `json:"cpu_model"`
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	LoadAvg1m  float64 `json:"load_average_1m_before"`
}

// ReadMachine reads the machine's description (Linux /proc files where present).
func ReadMachine() Machine {
	m := Machine{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUModel: cpuModel(), LoadAvg1m: LoadAverage(),
	}
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// LoadAverage is the 1-minute load average (0 where /proc/loadavg is missing): other work
// on the machine takes cores from the run, so every figure is reported with it.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// PeakRSS is the process's peak resident set (VmHWM), 0 where unknown.
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			fields := strings.Fields(string(v))
			if len(fields) >= 1 {
				kb, _ := strconv.ParseInt(fields[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// peakSampler samples the Go runtime's total mapped memory; VmHWM gives the OS view.
type peakSampler struct {
	mu   sync.Mutex
	peak int64
	quit chan struct{}
	done chan struct{}
	once sync.Once
	rss  int64
}

const goTotalMemory = "/memory/classes/total:bytes"

func startPeakSampler() *peakSampler {
	p := &peakSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		s := []metrics.Sample{{Name: goTotalMemory}}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				v := int64(s[0].Value.Uint64())
				p.mu.Lock()
				p.peak = max(p.peak, v)
				p.mu.Unlock()
			}
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends sampling (once) and answers the peak RSS and the peak Go memory.
func (p *peakSampler) stop() (rss, goMem int64) {
	p.once.Do(func() {
		close(p.quit)
		<-p.done
		p.rss = PeakRSS()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rss, p.peak
}
