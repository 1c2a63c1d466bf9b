package storetest

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/revocation"
)

// testRevocationsAmong: a batch lookup (revocation.StoreAmong, renewal's check per page)
// tells the listed UCIs from the others, over more than one request's worth of keys and
// with a key named twice, as one lookup per UCI does.
func testRevocationsAmong(t *testing.T, o Ops) {
	ctx := ctxOf(t)
	among, ok := o.Revocations.(revocation.StoreAmong)
	if !ok {
		t.Fatalf("%T does not implement revocation.StoreAmong", o.Revocations)
	}
	at := time.Date(2022, 5, 1, 8, 0, 0, 0, time.UTC)
	var cis []string
	want := map[string]bool{}
	for i := range 250 {
		ci := fmt.Sprintf("URN:UVCI:01:VN:AMONG%03d#Q", i)
		cis = append(cis, ci)
		if i%7 == 0 || i == 249 {
			if _, err := o.Revocations.AddRevocation(ctx, revocationEntry(ci, at), nil); err != nil {
				t.Fatal(err)
			}
			want[ci] = true
		}
	}
	cis = append(cis, cis[0], cis[1]) // named twice
	hs := make([]revocation.Hash, len(cis))
	for i, ci := range cis {
		hs[i] = revocation.UCI(ci)
	}
	got, err := among.RevocationsAmong(ctx, hs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("RevocationsAmong: %d listed, want %d", len(got), len(want))
	}
	for ci := range want {
		if !got[revocation.UCI(ci)] {
			t.Errorf("RevocationsAmong: %s not listed", ci)
		}
	}
	if none, err := among.RevocationsAmong(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("RevocationsAmong(nil) = %v, %v", none, err)
	}
	// Through revocation.Lookup, with the batch read and without it (one read per UCI):
	// the same answer, keyed by the UCIs as given.
	batch, err := revocation.Lookup{List: o.Revocations}.RevokedAmong(ctx, cis)
	if err != nil {
		t.Fatal(err)
	}
	single, err := revocation.Lookup{List: onlyByUCI{o.Revocations}}.RevokedAmong(ctx, cis)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(batch, want) || !maps.Equal(single, want) {
		t.Errorf("Lookup.RevokedAmong: batch %d, single %d listed, want %d", len(batch), len(single), len(want))
	}
}

// onlyByUCI hides a list's batch lookup.
type onlyByUCI struct{ l revocation.Store }

func (o onlyByUCI) RevocationByUCI(ctx context.Context, h revocation.Hash) (revocation.Entry, bool, error) {
	return o.l.RevocationByUCI(ctx, h)
}
