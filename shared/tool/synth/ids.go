package synth

import "fmt"

// idAllocator hands out the six random digits of CCCD numbers without ever repeating one
// and without remembering the numbers given: within each group of numbers sharing a
// prefix (province, gender/century digit, birth year) the k-th number is an affine
// permutation of k over 0..999,999. Registry numbers take k = 0, 1, 2... from the bottom;
// numbers that must NOT be in the registry (typos planted in records) take k from the top,
// so the two can never meet.
type idAllocator struct {
	mul    uint64 // coprime with 10^6: the map k -> mul*k+add is a bijection
	seed   uint64
	taken  [len(provinces)][4][100]uint32
	absent [len(provinces)][4][100]uint32
}

const idSpace = 1_000_000

func newIDAllocator(seed uint64) *idAllocator {
	m := splitmix(seed^0x1d5) % idSpace
	for m%2 == 0 || m%5 == 0 || m < idSpace/10 {
		m = (m + 1) % idSpace
	}
	return &idAllocator{mul: m, seed: seed}
}

// take returns the next random part for the group; absent selects the top-down sequence
// of numbers the registry never holds.
func (a *idAllocator) take(prov, centuryDigit, yy int, absent bool) (uint32, error) {
	n, other := &a.taken[prov][centuryDigit][yy], a.absent[prov][centuryDigit][yy]
	if absent {
		n, other = &a.absent[prov][centuryDigit][yy], a.taken[prov][centuryDigit][yy]
	}
	if *n+other >= idSpace {
		return 0, fmt.Errorf("%w: province %s, digit %d, year %02d", ErrIDSpace, provinces[prov].code, centuryDigit, yy)
	}
	k := uint64(*n)
	if absent {
		k = idSpace - 1 - k
	}
	*n++
	group := uint64(prov)<<16 | uint64(centuryDigit)<<8 | uint64(yy)
	add := splitmix(a.seed^group*0x9e3779b97f4a7c15) % idSpace
	return uint32((a.mul*k + add) % idSpace), nil
}

// splitmix is the SplitMix64 finaliser: a fixed, well-mixing hash of a 64-bit value.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
