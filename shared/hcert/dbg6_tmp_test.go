package hcert

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"math"
	"testing"
)

func entropyTmp(d *deflater) float64 {
	bound := 0.0
	for _, h := range []*histogram{&d.lit, &d.dst} {
		total := int32(0)
		for _, s := range h.used {
			total += h.freq[s]
		}
		lt := math.Log2(float64(total))
		for _, s := range h.used {
			f := h.freq[s]
			bound += float64(f) * (lt - math.Log2(float64(f)))
		}
	}
	for _, s := range d.lit.used {
		if s > endOfBlock {
			bound += float64(d.litFreq[s]) * float64(lengthExtra[s-257])
		}
	}
	for _, s := range d.dst.used {
		bound += float64(d.dstFreq[s]) * float64(distExtra[s])
	}
	return bound
}

func TestDbgHeurTmp(t *testing.T) {
	files := loadSuite(t)
	var srcs [][]byte
	for _, f := range files {
		if f.test.COSE != nil {
			b, _ := hex.DecodeString(*f.test.COSE)
			srcs = append(srcs, b)
		}
	}
	srcs = append(srcs, typicalCOSE(t))
	for _, r := range []float64{3, 3.5, 4, 4.25, 4.5, 5} {
		var worse, worseThanStd, skipped, maxLoss, total int
		for _, src := range srcs {
			exact := len(appendZlib(nil, src))
			d := deflaterPool.Get().(*deflater)
			d.tokenize(src)
			fixedBytes := 0
			{
				bitsF := 3
				for _, s := range d.lit.used {
					bitsF += int(d.litFreq[s]) * int(fixedLit[s])
					if s > 256 {
						bitsF += int(d.litFreq[s]) * int(lengthExtra[s-257])
					}
				}
				for _, s := range d.dst.used {
					bitsF += int(d.dstFreq[s]) * (5 + int(distExtra[s]))
				}
				fixedBytes = (bitsF + 7) / 8
			}
			stored := 5 + len(src)
			best := min(stored, fixedBytes)
			est := (entropyTmp(d) + 29 + r*float64(len(d.lit.used)+len(d.dst.used)) + 7) / 8
			h := exact
			if est >= float64(best) {
				skipped++
				h = 2 + best + 4
			}
			deflaterPool.Put(d)
			var b bytes.Buffer
			w, _ := zlib.NewWriterLevel(&b, 9)
			w.Write(src)
			w.Close()
			if h > exact {
				worse++
				maxLoss = max(maxLoss, h-exact)
			}
			if h > b.Len() {
				worseThanStd++
			}
			total += h
		}
		t.Logf("r %.2f: n %d skipped %d worse %d (max %d B) worse-than-std9 %d total %d", r, len(srcs), skipped, worse, maxLoss, worseThanStd, total)
	}
}
