package revocation

import (
	"context"
	"fmt"
)

// StoreAmong is what a Store may also do: look up many UCI hashes in one read.
type StoreAmong interface {
	// RevocationsAmong returns which of hs are listed (a hash not in listed is not).
	RevocationsAmong(ctx context.Context, hs []Hash) (listed map[Hash]bool, err error)
}

// RevokedAmong tells which of cis are on the list (the map holds them as given): one read
// when the store can (StoreAmong), one per ci otherwise. Renewal checks a batch with it.
func (l Lookup) RevokedAmong(ctx context.Context, cis []string) (map[string]bool, error) {
	out := map[string]bool{}
	among, ok := l.List.(StoreAmong)
	if !ok {
		for _, ci := range cis {
			_, listed, err := l.Revoked(ctx, ci)
			if err != nil {
				return nil, err
			}
			if listed {
				out[ci] = true
			}
		}
		return out, nil
	}
	hs := make([]Hash, 0, len(cis))
	for _, ci := range cis {
		if ci != "" {
			hs = append(hs, UCI(ci))
		}
	}
	listed, err := among.RevocationsAmong(ctx, hs)
	if err != nil {
		return nil, fmt.Errorf("revocations among %d: %w", len(hs), err)
	}
	for _, ci := range cis {
		if ci != "" && listed[UCI(ci)] {
			out[ci] = true
		}
	}
	return out, nil
}
