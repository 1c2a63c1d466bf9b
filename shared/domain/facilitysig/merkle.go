package facilitysig

import (
	"crypto/sha256"
	"errors"
	"math/bits"
)

// The batch tree is the Merkle tree of RFC 6962 §2.1 (Certificate Transparency): a leaf
// hashes 0x00 || data and an inner node 0x01 || left || right, so a leaf can never pass
// for a node, and an unbalanced tree splits at the largest power of two below its size
// instead of duplicating its last leaf (whose two readings of one tree Bitcoin's
// CVE-2012-2459 exploited).

// HashSize is the size of a tree hash (SHA-256).
const HashSize = sha256.Size

// maxProofLen bounds an inclusion path: a tree of 2^64 leaves is 64 levels deep.
const maxProofLen = 64

// ErrProof reports an inclusion proof of the wrong shape for its index and tree size.
var ErrProof = errors.New("malformed inclusion proof")

// Proof shows that one leaf is in a tree: its Index among the TreeSize leaves and the
// sibling hashes from the leaf up to the root (RFC 6962 PATH, leaf level first). A tree of
// one has an empty Path.
type Proof struct {
	Index    uint64
	TreeSize uint64
	Path     [][]byte
}

// LeafHash is the tree hash of one signed payload: SHA-256(0x00 || payload).
func LeafHash(payload []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(payload)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// nodeHash is an inner node's hash: SHA-256(0x01 || left || right).
func nodeHash(left, right []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte{0x01})
	h.Write(left)
	h.Write(right)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// BuildTree returns the root of the leaves' tree (RFC 6962 MTH) and every leaf's
// inclusion proof. It hashes each node once: a page's proofs cost n log n, not n².
func BuildTree(leaves [][HashSize]byte) (root [HashSize]byte, proofs []Proof, err error) {
	if len(leaves) == 0 {
		return root, nil, errors.New("merkle tree: no leaves")
	}
	paths := make([][][]byte, len(leaves))
	root = buildSubtree(leaves, paths)
	proofs = make([]Proof, len(leaves))
	for i := range leaves {
		proofs[i] = Proof{Index: uint64(i), TreeSize: uint64(len(leaves)), Path: paths[i]}
	}
	return root, proofs, nil
}

// buildSubtree hashes leaves (at least one) and appends, to each leaf's path, the sibling
// at every level of this subtree.
func buildSubtree(leaves [][HashSize]byte, paths [][][]byte) [HashSize]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := int(splitPoint(uint64(len(leaves))))
	left := buildSubtree(leaves[:k], paths[:k])
	right := buildSubtree(leaves[k:], paths[k:])
	// Each path gets its own copy: a caller may change one proof without the others.
	for i := range paths[:k] {
		paths[i] = append(paths[i], append([]byte(nil), right[:]...))
	}
	for i := range paths[k:] {
		paths[k+i] = append(paths[k+i], append([]byte(nil), left[:]...))
	}
	return nodeHash(left[:], right[:])
}

// splitPoint is the largest power of two below n (n > 1).
func splitPoint(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// RootFromProof is the root the proof leads to from the leaf hash (RFC 9162
// §2.1.3.2), or ErrProof when the path's length or an element does not fit the index and
// tree size. The caller compares the root with a signed one.
func RootFromProof(leaf [HashSize]byte, p Proof) ([HashSize]byte, error) {
	if p.TreeSize == 0 || p.Index >= p.TreeSize || len(p.Path) > maxProofLen {
		return [HashSize]byte{}, ErrProof
	}
	fn, sn := p.Index, p.TreeSize-1
	r := leaf
	for _, sibling := range p.Path {
		if sn == 0 || len(sibling) != HashSize {
			return [HashSize]byte{}, ErrProof
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(sibling, r[:])
			// The last node of a level without a right sibling moves up unchanged.
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r[:], sibling)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return [HashSize]byte{}, ErrProof
	}
	return r, nil
}
