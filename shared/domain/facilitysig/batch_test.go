package facilitysig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
)

// countingSigner counts the calls that would each be a KMS Sign on AWS.
type countingSigner struct {
	inner facilitysig.Signer
	calls atomic.Int64
}

func (c *countingSigner) Sign(ctx context.Context, tbs []byte) ([]byte, error) {
	c.calls.Add(1)
	return c.inner.Sign(ctx, tbs)
}

type facilityKey struct {
	priv   *ecdsa.PrivateKey
	signer *countingSigner
}

func newFacilityKey(t testing.TB) facilityKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filekeys.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return facilityKey{priv: key, signer: &countingSigner{inner: s}}
}

var batchAt = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// people returns n contents of the facility, each a different person.
func people(facilityID string, n int) []facilitysig.Content {
	out := make([]facilitysig.Content, n)
	for i := range out {
		c := content()
		c.PersonID = fmt.Sprintf("0010880%05d", i)
		c.FacilityID = facilityID
		out[i] = c
	}
	return out
}

func signBatch(t testing.TB, k facilityKey, facilityID string, cs []facilitysig.Content) []facilitysig.Signed {
	t.Helper()
	signed, err := facilitysig.SignBatch(context.Background(), k.signer, facilityID, batchAt, cs)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// clone deep-copies a signature so a test can change it without touching the original.
func clone(s facilitysig.Signed) facilitysig.Signed {
	s.Payload, s.Signature, s.Batch = bytes.Clone(s.Payload), bytes.Clone(s.Signature), bytes.Clone(s.Batch)
	path := make([][]byte, len(s.Proof.Path))
	for i, h := range s.Proof.Path {
		path[i] = bytes.Clone(h)
	}
	if s.Proof.Path != nil {
		s.Proof.Path = path
	}
	return s
}

func TestSignBatchOneSignEachVerifies(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			k := newFacilityKey(t)
			cs := people("site", n)
			signed := signBatch(t, k, "site", cs)
			if got := k.signer.calls.Load(); got != 1 {
				t.Fatalf("%d people cost %d Sign calls, want 1", n, got)
			}
			if len(signed) != n {
				t.Fatalf("%d signatures for %d people", len(signed), n)
			}
			for i, s := range signed {
				if n == 1 && len(s.Proof.Path) != 0 {
					t.Fatalf("a batch of one has a proof of %d hashes", len(s.Proof.Path))
				}
				c, err := s.Verify(&k.priv.PublicKey)
				if err != nil {
					t.Fatalf("person %d: %v", i, err)
				}
				want, _ := facilitysig.Encode(cs[i])
				if got, _ := facilitysig.Encode(c); !bytes.Equal(got, want) {
					t.Fatalf("person %d: verified content is not the signed content", i)
				}
			}
		})
	}
	if _, err := facilitysig.SignBatch(context.Background(), newFacilityKey(t).signer, "site", batchAt, nil); err == nil {
		t.Fatal("an empty batch was signed")
	}
	if _, err := facilitysig.SignBatch(context.Background(), newFacilityKey(t).signer, "site", batchAt, people("other", 2)); err == nil {
		t.Fatal("a facility signed another facility's content")
	}
}

func TestBatchSignatureTampered(t *testing.T) {
	a, b := newFacilityKey(t), newFacilityKey(t)
	signed := signBatch(t, a, "site-a", people("site-a", 7))
	good := signed[2]
	if _, err := good.Verify(&a.priv.PublicKey); err != nil {
		t.Fatal(err)
	}

	// A batch signed by facility B whose head names B, holding content that names A.
	cs := people("site-a", 3)
	leaves := make([][facilitysig.HashSize]byte, len(cs))
	payloads := make([][]byte, len(cs))
	for i, c := range cs {
		payloads[i], _ = facilitysig.Encode(c)
		leaves[i] = facilitysig.LeafHash(payloads[i])
	}
	root, proofs, _ := facilitysig.BuildTree(leaves)
	headB, _ := facilitysig.EncodeHead(facilitysig.BatchHead{Alg: "merkle-sha256", FacilityID: "site-b", Root: root[:], Count: 3, SignedAt: batchAt})
	sigB, _ := b.signer.Sign(context.Background(), headB)
	byB := facilitysig.Signed{Form: facilitysig.FormMerkle, Payload: payloads[0], Signature: sigB, Batch: headB, Proof: proofs[0]}
	// The same tree with a head naming A, but signed with B's key.
	headA, _ := facilitysig.EncodeHead(facilitysig.BatchHead{Alg: "merkle-sha256", FacilityID: "site-a", Root: root[:], Count: 3, SignedAt: batchAt})
	sigAByB, _ := b.signer.Sign(context.Background(), headA)
	headAByB := facilitysig.Signed{Form: facilitysig.FormMerkle, Payload: payloads[0], Signature: sigAByB, Batch: headA, Proof: proofs[0]}

	pubA, pubB := &a.priv.PublicKey, &b.priv.PublicKey
	cases := map[string]struct {
		pub *ecdsa.PublicKey
		sig facilitysig.Signed
	}{
		"payload byte":                         {pubA, mutate(good, func(s *facilitysig.Signed) { s.Payload[len(s.Payload)/2] ^= 1 })},
		"another person's payload":             {pubA, mutate(good, func(s *facilitysig.Signed) { s.Payload = bytes.Clone(signed[3].Payload) })},
		"proof of another index":               {pubA, mutate(good, func(s *facilitysig.Signed) { s.Proof = signed[3].Proof })},
		"index changed":                        {pubA, mutate(good, func(s *facilitysig.Signed) { s.Proof.Index = 3 })},
		"truncated proof":                      {pubA, mutate(good, func(s *facilitysig.Signed) { s.Proof.Path = s.Proof.Path[:len(s.Proof.Path)-1] })},
		"proof hash bit":                       {pubA, mutate(good, func(s *facilitysig.Signed) { s.Proof.Path[0][0] ^= 1 })},
		"tree size changed":                    {pubA, mutate(good, func(s *facilitysig.Signed) { s.Proof.TreeSize = 8 })},
		"signature bit":                        {pubA, mutate(good, func(s *facilitysig.Signed) { s.Signature[40] ^= 0x80 })},
		"head byte":                            {pubA, mutate(good, func(s *facilitysig.Signed) { s.Batch[len(s.Batch)-1] ^= 1 })},
		"head of another batch":                {pubA, mutate(good, func(s *facilitysig.Signed) { s.Batch = headA })},
		"other facility's key":                 {pubB, good},
		"no key":                               {nil, good},
		"root signed by B, content of A":       {pubB, byB},
		"head naming A signed by B":            {pubA, headAByB},
		"told single form":                     {pubA, mutate(good, func(s *facilitysig.Signed) { s.Form = facilitysig.FormSingle })},
		"unknown form":                         {pubA, mutate(good, func(s *facilitysig.Signed) { s.Form = "merkle-sha512" })},
		"single form with the head as payload": {pubA, facilitysig.Signed{Payload: good.Batch, Signature: good.Signature}},
	}
	for name, tc := range cases {
		if _, err := tc.sig.Verify(tc.pub); !errors.Is(err, facilitysig.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	// The tampering above worked on copies.
	if _, err := good.Verify(pubA); err != nil {
		t.Fatalf("original no longer verifies: %v", err)
	}
}

func mutate(s facilitysig.Signed, f func(*facilitysig.Signed)) facilitysig.Signed {
	s = clone(s)
	f(&s)
	return s
}

// Signatures of the first form (one per person, still stored) verify when told so, and
// not when told they are batch signatures.
func TestSingleFormStillVerifies(t *testing.T) {
	k := newFacilityKey(t)
	payload, sig, err := facilitysig.Sign(context.Background(), k.signer, content())
	if err != nil {
		t.Fatal(err)
	}
	single := facilitysig.Signed{Form: facilitysig.FormSingle, Payload: payload, Signature: sig}
	if _, err := single.Verify(&k.priv.PublicKey); err != nil {
		t.Fatalf("single form: %v", err)
	}
	asBatch := single
	asBatch.Form = facilitysig.FormMerkle
	asBatch.Batch = payload
	asBatch.Proof = facilitysig.Proof{TreeSize: 1}
	if _, err := asBatch.Verify(&k.priv.PublicKey); !errors.Is(err, facilitysig.ErrSignature) {
		t.Fatalf("single signature told as a batch: %v", err)
	}
	withProof := single
	withProof.Proof = facilitysig.Proof{TreeSize: 1}
	if _, err := withProof.Verify(&k.priv.PublicKey); !errors.Is(err, facilitysig.ErrSignature) {
		t.Fatalf("single form with a proof: %v", err)
	}
}

// FuzzVerifyBatch: whatever the payload, head, index, tree size and path, verification
// never panics, and it succeeds only for a person's genuine payload with their genuine
// proof and the genuine head.
func FuzzVerifyBatch(f *testing.F) {
	k := newFacilityKey(f)
	signed := signBatch(f, k, "site", people("site", 7))
	pub := &k.priv.PublicKey
	join := func(path [][]byte) []byte { return bytes.Join(path, nil) }
	for _, s := range signed {
		f.Add(s.Payload, s.Batch, s.Proof.Index, s.Proof.TreeSize, join(s.Proof.Path), uint8(32))
	}
	f.Add(signed[0].Payload, signed[0].Batch, uint64(0), uint64(7), join(signed[0].Proof.Path)[:64], uint8(32))
	f.Add(signed[6].Payload, signed[6].Batch, uint64(6), uint64(1<<63), join(signed[6].Proof.Path), uint8(31))
	f.Add([]byte{}, []byte{0xa0}, uint64(0), uint64(0), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, payload, head []byte, index, size uint64, pathBytes []byte, chunk uint8) {
		var path [][]byte
		if chunk > 0 {
			for len(pathBytes) > 0 {
				n := min(int(chunk), len(pathBytes))
				path = append(path, pathBytes[:n])
				pathBytes = pathBytes[n:]
			}
		}
		p := facilitysig.Proof{Index: index, TreeSize: size, Path: path}
		_, _ = facilitysig.RootFromProof(facilitysig.LeafHash(payload), p)
		s := facilitysig.Signed{Form: facilitysig.FormMerkle, Payload: payload, Signature: signed[0].Signature, Batch: head, Proof: p}
		if _, err := s.Verify(pub); err != nil {
			return
		}
		if index >= uint64(len(signed)) {
			t.Fatalf("verified at index %d of a batch of %d", index, len(signed))
		}
		g := signed[index]
		if !bytes.Equal(payload, g.Payload) || !bytes.Equal(head, g.Batch) || size != g.Proof.TreeSize || len(path) != len(g.Proof.Path) {
			t.Fatalf("verified a signature that is not the genuine one of index %d", index)
		}
		for i := range path {
			if !bytes.Equal(path[i], g.Proof.Path[i]) {
				t.Fatalf("verified a changed proof of index %d", index)
			}
		}
	})
}
