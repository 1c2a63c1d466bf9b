package qrscan

import (
	"math"
	"sort"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// decodeAllFinders is the fallback detector for two weaknesses of gozxing's:
//
//   - Its finder-pattern scan stops at the first three finder-like patterns that
//     agree in size. A 1:1:3:1:1 blob in the data above the real bottom-left finder
//     then wins, and the symbol is sampled in the wrong place. Here every row is
//     scanned, all candidates are kept, and plausible triples (right angle, equal
//     sides, similar module size) are tried from the largest down.
//   - It rounds the module size measured on the finders to one dimension and gives
//     up when that is not 17+4·v; renderings scaled by a non-integer factor (3.6 px
//     per module, say) trip this. Here every valid dimension within ±12 % of the
//     estimate is tried, nearest first, with and without the alignment pattern.
func decodeAllFinders(bits *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]any) (string, error) {
	ff := detector.NewFinderPatternFinder(bits, nil)
	scanFinders(ff, bits)
	triples := finderTriples(ff.GetPossibleCenters())
	if len(triples) == 0 {
		return "", gozxing.NewNotFoundException("no three finder patterns form a square's corners")
	}
	dec := decoder.NewDecoder()
	var lastErr error
	for _, t := range triples {
		text, err := decodeTriple(dec, bits, t, hints)
		if err == nil {
			return text, nil
		}
		lastErr = err
	}
	return "", lastErr
}

// maxTriples bounds the work on images full of finder-like noise.
const maxTriples = 8

// scanFinders feeds every row's 1:1:3:1:1 runs to gozxing's centre check, without
// the early stop of FinderPatternFinder.Find.
func scanFinders(ff *detector.FinderPatternFinder, bits *gozxing.BitMatrix) {
	w, h := bits.GetWidth(), bits.GetHeight()
	state := make([]int, 5)
	for i := 0; i < h; i++ {
		clear(state)
		cur := 0
		for j := 0; j < w; j++ {
			if bits.Get(j, i) {
				if cur&1 == 1 {
					cur++
				}
				state[cur]++
				continue
			}
			if cur&1 == 1 {
				state[cur]++
				continue
			}
			if cur < 4 {
				cur++
				state[cur]++
				continue
			}
			if detector.FinderPatternFinder_foundPatternCross(state) && ff.HandlePossibleCenter(state, i, j) {
				clear(state)
				cur = 0
				continue
			}
			// Not a finder: keep the last light-dark pair and go on.
			state[0], state[1], state[2], state[3], state[4] = state[2], state[3], state[4], 1, 0
			cur = 3
		}
		if detector.FinderPatternFinder_foundPatternCross(state) {
			ff.HandlePossibleCenter(state, i, w)
		}
	}
}

type finderTriple struct {
	tl, tr, bl *detector.FinderPattern
	area       float64
}

// finderTriples returns the candidate triples that could be a symbol's corners,
// largest first.
func finderTriples(c []*detector.FinderPattern) []finderTriple {
	var out []finderTriple
	for i := 0; i < len(c); i++ {
		for j := i + 1; j < len(c); j++ {
			for k := j + 1; k < len(c); k++ {
				ms := []float64{c[i].GetEstimatedModuleSize(), c[j].GetEstimatedModuleSize(), c[k].GetEstimatedModuleSize()}
				lo, hi := min(ms[0], ms[1], ms[2]), max(ms[0], ms[1], ms[2])
				if hi > lo*1.4 {
					continue
				}
				bl, tl, tr := gozxing.ResultPoint_OrderBestPatterns(c[i], c[j], c[k])
				a := gozxing.ResultPoint_Distance(tl, tr)
				b := gozxing.ResultPoint_Distance(tl, bl)
				if a < 14*lo || b < 14*lo || math.Abs(a-b) > 0.15*max(a, b) {
					continue // too small for a version-1 symbol, or not square
				}
				ux, uy := tr.GetX()-tl.GetX(), tr.GetY()-tl.GetY()
				vx, vy := bl.GetX()-tl.GetX(), bl.GetY()-tl.GetY()
				if math.Abs(ux*vx+uy*vy)/(a*b) > 0.2 {
					continue // not a right angle at the top-left
				}
				out = append(out, finderTriple{
					tl: tl.(*detector.FinderPattern), tr: tr.(*detector.FinderPattern), bl: bl.(*detector.FinderPattern),
					area: a * b,
				})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].area > out[j].area })
	if len(out) > maxTriples {
		out = out[:maxTriples]
	}
	return out
}

func decodeTriple(dec *decoder.Decoder, bits *gozxing.BitMatrix, t finderTriple, hints map[gozxing.DecodeHintType]any) (string, error) {
	tl, tr, bl := t.tl, t.tr, t.bl
	ms := (tl.GetEstimatedModuleSize() + tr.GetEstimatedModuleSize() + bl.GetEstimatedModuleSize()) / 3
	span := (gozxing.ResultPoint_Distance(tl, tr) + gozxing.ResultPoint_Distance(tl, bl)) / 2
	est := span/ms + 7
	var dims []int
	for v := 1; v <= 40; v++ {
		if d := 17 + 4*v; math.Abs(float64(d)-est) <= est*0.12+2 {
			dims = append(dims, d)
		}
	}
	sort.Slice(dims, func(i, j int) bool { return math.Abs(float64(dims[i])-est) < math.Abs(float64(dims[j])-est) })

	lastErr := error(gozxing.NewNotFoundException("no dimension near %.1f", est))
	for _, dim := range dims {
		msDim := span / float64(dim-7) // module size implied by this dimension
		aligns := []*detector.AlignmentPattern{nil}
		if dim > 21 {
			if ap := findAlignment(bits, tl, tr, bl, msDim, dim); ap != nil {
				aligns = append([]*detector.AlignmentPattern{ap}, aligns...)
			}
		}
		for _, ap := range aligns {
			transform := detector.Detector_createTransform(tl, tr, bl, ap, dim)
			grid, err := detector.Detector_sampleGrid(bits, transform, dim)
			if err != nil {
				lastErr = err
				continue
			}
			res, err := dec.Decode(grid, hints)
			if err != nil {
				lastErr = err
				continue
			}
			return res.GetText(), nil
		}
	}
	return "", lastErr
}

// findAlignment looks for the bottom-right alignment pattern where the finder
// patterns say it should be (the same estimate gozxing's detector makes).
func findAlignment(bits *gozxing.BitMatrix, tl, tr, bl gozxing.ResultPoint, ms float64, dim int) *detector.AlignmentPattern {
	brX := tr.GetX() - tl.GetX() + bl.GetX()
	brY := tr.GetY() - tl.GetY() + bl.GetY()
	corr := 1 - 3/float64(dim-7)
	ex := tl.GetX() + corr*(brX-tl.GetX())
	ey := tl.GetY() + corr*(brY-tl.GetY())
	for f := 4.0; f <= 16; f *= 2 {
		allow := f * ms
		x0, y0 := max(0, int(ex-allow)), max(0, int(ey-allow))
		x1, y1 := min(bits.GetWidth()-1, int(ex+allow)), min(bits.GetHeight()-1, int(ey+allow))
		if float64(x1-x0) < 3*ms || float64(y1-y0) < 3*ms {
			return nil
		}
		ap, err := detector.NewAlignmentPatternFinder(bits, x0, y0, x1-x0, y1-y0, ms, nil).Find()
		if err == nil {
			return ap
		}
	}
	return nil
}
