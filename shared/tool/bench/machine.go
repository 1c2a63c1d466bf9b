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

// PeakRSS is the process's peak resident set (VmHWM), 0 where unknown. It counts the
// pages of the memory-mapped database file the process touched, which the kernel may
// drop at any time: see memoryNow for the private part.
func PeakRSS() int64 {
	v := procStatus("VmHWM:")
	return v[0]
}

// procStatus reads the given fields (in kB) of /proc/self/status, in bytes; 0 where
// unknown.
func procStatus(fields ...string) []int64 {
	out := make([]int64, len(fields))
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		for i, f := range fields {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte(f)); ok {
				if kb := strings.Fields(string(v)); len(kb) >= 1 {
					n, _ := strconv.ParseInt(kb[0], 10, 64)
					out[i] = n << 10
				}
			}
		}
	}
	return out
}

// Peaks are the memory peaks of a run.
type Peaks struct {
	RSS     int64 // VmHWM: everything resident, mapped database pages included
	Anon    int64 // RssAnon, sampled: the process's own memory (heap, stacks)
	File    int64 // RssFile, sampled: pages of mapped files (the bbolt database)
	GoTotal int64 // the Go runtime's mapped memory, sampled
}

// peakSampler samples memory every 100ms: VmHWM has the OS's exact peak of the total,
// the samples split it into private memory and mapped database pages.
type peakSampler struct {
	mu    sync.Mutex
	peaks Peaks
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
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
			p.sample(s)
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) sample(s []metrics.Sample) {
	metrics.Read(s)
	rss := procStatus("RssAnon:", "RssFile:")
	p.mu.Lock()
	defer p.mu.Unlock()
	if s[0].Value.Kind() == metrics.KindUint64 {
		p.peaks.GoTotal = max(p.peaks.GoTotal, int64(s[0].Value.Uint64()))
	}
	p.peaks.Anon = max(p.peaks.Anon, rss[0])
	p.peaks.File = max(p.peaks.File, rss[1])
}

// stop ends sampling (once) and answers the peaks.
func (p *peakSampler) stop() Peaks {
	p.once.Do(func() {
		close(p.quit)
		<-p.done
		p.sample([]metrics.Sample{{Name: goTotalMemory}})
		p.mu.Lock()
		p.peaks.RSS = PeakRSS()
		p.mu.Unlock()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peaks
}
