package facilitysig_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
)

type vectors struct {
	Trees []struct {
		LeavesHex []string `json:"leaves_hex"`
		RootHex   string   `json:"root_hex"`
		Proofs    []struct {
			Index   uint64   `json:"index"`
			PathHex []string `json:"path_hex"`
		} `json:"proofs"`
	} `json:"trees"`
	Heads []struct {
		Alg        string `json:"alg"`
		FacilityID string `json:"facility_id"`
		RootHex    string `json:"root_hex"`
		Count      uint64 `json:"count"`
		SignedAt   string `json:"signed_at"`
		CBORHex    string `json:"cbor_hex"`
	} `json:"heads"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Trees) == 0 || len(v.Heads) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTreeVectors(t *testing.T) {
	for _, tree := range loadVectors(t).Trees {
		t.Run(fmt.Sprintf("%d leaves", len(tree.LeavesHex)), func(t *testing.T) {
			leaves := make([][facilitysig.HashSize]byte, len(tree.LeavesHex))
			for i, l := range tree.LeavesHex {
				leaves[i] = facilitysig.LeafHash(unhex(t, l))
			}
			root, proofs, err := facilitysig.BuildTree(leaves)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(root[:]); got != tree.RootHex {
				t.Fatalf("root %s, want %s", got, tree.RootHex)
			}
			if len(tree.Proofs) != len(leaves) {
				t.Fatalf("vector has %d proofs for %d leaves", len(tree.Proofs), len(leaves))
			}
			for _, want := range tree.Proofs {
				got := proofs[want.Index]
				if got.Index != want.Index || got.TreeSize != uint64(len(leaves)) || len(got.Path) != len(want.PathHex) {
					t.Fatalf("proof %d: index %d size %d, %d hashes; want %d hashes", want.Index, got.Index, got.TreeSize, len(got.Path), len(want.PathHex))
				}
				for i, h := range want.PathHex {
					if hex.EncodeToString(got.Path[i]) != h {
						t.Fatalf("proof %d hash %d = %x, want %s", want.Index, i, got.Path[i], h)
					}
				}
				// The verifier, from the vector's own path, reaches the vector's root.
				p := facilitysig.Proof{Index: want.Index, TreeSize: uint64(len(leaves))}
				for _, h := range want.PathHex {
					p.Path = append(p.Path, unhex(t, h))
				}
				r, err := facilitysig.RootFromProof(leaves[want.Index], p)
				if err != nil || hex.EncodeToString(r[:]) != tree.RootHex {
					t.Fatalf("proof %d leads to %x, %v", want.Index, r, err)
				}
			}
		})
	}
}

func TestHeadVectors(t *testing.T) {
	for _, v := range loadVectors(t).Heads {
		at, err := time.Parse(time.RFC3339, v.SignedAt)
		if err != nil {
			t.Fatal(err)
		}
		h := facilitysig.BatchHead{Alg: v.Alg, FacilityID: v.FacilityID, Root: unhex(t, v.RootHex), Count: v.Count, SignedAt: at}
		got, err := facilitysig.EncodeHead(h)
		if err != nil || hex.EncodeToString(got) != v.CBORHex {
			t.Fatalf("EncodeHead = %x, %v; want %s", got, err, v.CBORHex)
		}
		back, err := facilitysig.DecodeHead(got)
		if err != nil || back.FacilityID != v.FacilityID || back.Count != v.Count || !bytes.Equal(back.Root, h.Root) || !back.SignedAt.Equal(at) {
			t.Fatalf("DecodeHead = %+v, %v", back, err)
		}
		if _, err := facilitysig.DecodeHead(append(got, 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
}

// Every size up to a few levels past a page: each leaf's proof leads to the root, has
// at most ceil(log2 n) hashes, and fails for any other index or a neighbour's leaf.
func TestTreeAllSizes(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([][facilitysig.HashSize]byte, n)
		for i := range leaves {
			leaves[i] = facilitysig.LeafHash([]byte{byte(i), byte(n)})
		}
		root, proofs, err := facilitysig.BuildTree(leaves)
		if err != nil {
			t.Fatal(err)
		}
		depth := bits.Len(uint(n - 1))
		for i, p := range proofs {
			if len(p.Path) > depth {
				t.Fatalf("n=%d i=%d: %d hashes, want at most %d", n, i, len(p.Path), depth)
			}
			if r, err := facilitysig.RootFromProof(leaves[i], p); err != nil || r != root {
				t.Fatalf("n=%d i=%d: genuine proof fails: %v", n, i, err)
			}
			for j := range n {
				if j == i {
					continue
				}
				other := p
				other.Index = uint64(j)
				if r, err := facilitysig.RootFromProof(leaves[i], other); err == nil && r == root {
					t.Fatalf("n=%d: proof of %d verifies as index %d", n, i, j)
				}
				if r, _ := facilitysig.RootFromProof(leaves[j], p); r == root {
					t.Fatalf("n=%d: proof of %d verifies leaf %d", n, i, j)
				}
			}
		}
	}
}

func TestProofShapeRefused(t *testing.T) {
	leaves := make([][facilitysig.HashSize]byte, 7)
	for i := range leaves {
		leaves[i] = facilitysig.LeafHash([]byte{byte(i)})
	}
	_, proofs, _ := facilitysig.BuildTree(leaves)
	p := proofs[1]
	for name, bad := range map[string]facilitysig.Proof{
		"truncated":      {Index: 1, TreeSize: 7, Path: p.Path[:len(p.Path)-1]},
		"extended":       {Index: 1, TreeSize: 7, Path: append(append([][]byte{}, p.Path...), p.Path[0])},
		"short hash":     {Index: 1, TreeSize: 7, Path: [][]byte{p.Path[0], p.Path[1][:31], p.Path[2]}},
		"index past end": {Index: 7, TreeSize: 7, Path: p.Path},
		"empty tree":     {Index: 0, TreeSize: 0},
		"no path":        {Index: 1, TreeSize: 7},
		"too long":       {Index: 1, TreeSize: 1 << 63, Path: make([][]byte, 65)},
	} {
		if _, err := facilitysig.RootFromProof(leaves[1], bad); !errors.Is(err, facilitysig.ErrProof) {
			t.Errorf("%s: RootFromProof = %v, want ErrProof", name, err)
		}
	}
	if _, _, err := facilitysig.BuildTree(nil); err == nil {
		t.Error("BuildTree of no leaves succeeded")
	}
}
