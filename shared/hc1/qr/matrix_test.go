package qr

import (
	"math/rand/v2"
	"testing"
)

// refPenalty is ISO 18004 §7.8.3 written the plain way, module by module, with the
// symbol surrounded by light modules for the finder-like pattern rule.
func refPenalty(mod []byte, n int) int {
	at := func(x, y int) byte {
		if x < 0 || y < 0 || x >= n || y >= n {
			return 0
		}
		return mod[y*n+x]
	}
	score := 0
	for _, transpose := range []bool{false, true} {
		get := func(i, j int) byte { // i: line, j: position along it
			if transpose {
				return at(i, j)
			}
			return at(j, i)
		}
		for i := 0; i < n; i++ {
			for j := 0; j < n; { // N1
				k := j
				for k < n && get(i, k) == get(i, j) {
					k++
				}
				if k-j >= 5 {
					score += 3 + (k - j - 5)
				}
				j = k
			}
			pattern := []byte{1, 0, 1, 1, 1, 0, 1}
			for j := -4; j+11 <= n+4; j++ { // N3
				for _, lightFirst := range []bool{true, false} {
					match := true
					for t := 0; t < 11 && match; t++ {
						want := byte(0)
						if lightFirst && t >= 4 {
							want = pattern[t-4]
						} else if !lightFirst && t < 7 {
							want = pattern[t]
						}
						match = get(i, j+t) == want
					}
					if match {
						score += 40
					}
				}
			}
		}
	}
	dark := 0
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dark += int(at(x, y))
			if x > 0 && y > 0 && at(x, y) == at(x-1, y) && at(x, y) == at(x, y-1) && at(x, y) == at(x-1, y-1) {
				score += 3 // N2
			}
		}
	}
	// N4: 0 points for 45..55 % dark, 10 more for each further step of 5 %.
	percent := float64(dark) * 100 / float64(n*n)
	dev := percent - 50
	if dev < 0 {
		dev = -dev
	}
	k := 0
	for dev > float64(5*(k+1)) {
		k++
	}
	return score + 10*k
}

func TestPenaltyMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, n := range []int{21, 25, 57, 89, 177} {
		for i := 0; i < 20; i++ {
			mod := make([]byte, n*n)
			density := r.Float64()
			for k := range mod {
				if r.Float64() < density {
					mod[k] = 1
				}
			}
			if i == 0 { // a real symbol, not noise
				sym, err := Encode(randomAlnum(r, (n-17)/4*40), LevelQ)
				if err == nil && sym.Size == n {
					mod = sym.modules
				}
			}
			got := penalty(mod, make([]byte, n*n), n)
			if want := refPenalty(mod, n); got != want {
				t.Fatalf("n %d density %.2f: penalty %d, reference %d", n, density, got, want)
			}
		}
	}
}
