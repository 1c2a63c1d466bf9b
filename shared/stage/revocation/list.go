package revocation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Format identifies the published list's JSON shape.
const Format = "vaxpass-dcc-revocation/1"

// MaxListBytes bounds a revocation list a verifier reads (about 3.5 million revoked
// certificates with both UVCI hash types).
const MaxListBytes = 256 << 20

// List is the published revocation list (GET /v1/revocations, <data>/revocations.json).
// It holds hashes only. A verifier hashes a certificate's ci (and iss+ci) and looks them
// up in the partition of that hash type.
//
// Partitions carry no kid: a renewal may be signed by a newer DSC but keeps its UVCI,
// and one entry must revoke every renewal whatever key signed it (the EU format's kid
// partitioning would need an entry per kid).
type List struct {
	Format      string      `json:"format"`
	Issuer      string      `json:"issuer"`
	GeneratedAt time.Time   `json:"generated_at"`
	Partitions  []Partition `json:"partitions"`
}

// Partition is the hashes of one type.
type Partition struct {
	// KID (base64), when set, limits the partition to certificates signed by that DSC.
	KID      string   `json:"kid,omitempty"`
	HashType HashType `json:"hash_type"`
	// Encoding of Hashes: "hex" (what we publish) or "base64".
	Encoding string   `json:"encoding"`
	Hashes   []string `json:"hashes"`
}

// Errors of Parse.
var ErrMalformedList = errors.New("malformed revocation list")

// Build returns the list of the given UCI hashes: a UCI partition and a COUNTRYCODEUCI
// partition (issuer + ci), both sorted so the output depends only on the set.
func Build(issuer string, at time.Time, entries []Entry) *List {
	uci := make([]Hash, 0, len(entries))
	cc := make([]Hash, 0, len(entries))
	for _, e := range entries {
		uci = append(uci, e.UCI)
		cc = append(cc, e.CountryCodeUCI)
	}
	return &List{
		Format: Format, Issuer: issuer, GeneratedAt: at.UTC(),
		Partitions: []Partition{partition(TypeUCI, uci), partition(TypeCountryCodeUCI, cc)},
	}
}

func partition(t HashType, hs []Hash) Partition {
	slices.SortFunc(hs, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	hs = slices.Compact(hs)
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return Partition{HashType: t, Encoding: "hex", Hashes: out}
}

// MarshalJSON-friendly encoding with a trailing newline.
func (l *List) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(l)
}

// Set is a parsed revocation list for lookups; it implements verification.Revocations.
type Set struct {
	issuer string
	byType map[HashType]map[Hash]struct{}
	// byKID holds the kid-limited partitions: kid -> type -> hashes.
	byKID map[string]map[HashType]map[Hash]struct{}
}

// Parse reads a published list strictly: known format, hash types and encodings, every
// hash 16 bytes, no unknown fields, at most MaxListBytes.
func Parse(data []byte) (*Set, error) {
	if len(data) > MaxListBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedList, len(data), MaxListBytes)
	}
	var l List
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedList, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the list", ErrMalformedList)
	}
	if l.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedList, l.Format, Format)
	}
	s := &Set{issuer: l.Issuer, byType: map[HashType]map[Hash]struct{}{}, byKID: map[string]map[HashType]map[Hash]struct{}{}}
	for i, p := range l.Partitions {
		if _, ok := p.HashType.Code(); !ok {
			return nil, fmt.Errorf("%w: partitions[%d].hash_type %q is not SIGNATURE, UCI or COUNTRYCODEUCI", ErrMalformedList, i, p.HashType)
		}
		target := s.byType
		if p.KID != "" {
			if _, err := base64.StdEncoding.DecodeString(p.KID); err != nil {
				return nil, fmt.Errorf("%w: partitions[%d].kid is not base64", ErrMalformedList, i)
			}
			if s.byKID[p.KID] == nil {
				s.byKID[p.KID] = map[HashType]map[Hash]struct{}{}
			}
			target = s.byKID[p.KID]
		}
		set := target[p.HashType]
		if set == nil {
			set = make(map[Hash]struct{}, len(p.Hashes))
			target[p.HashType] = set
		}
		for j, text := range p.Hashes {
			h, err := decodeHash(p.Encoding, text)
			if err != nil {
				return nil, fmt.Errorf("%w: partitions[%d].hashes[%d]: %w", ErrMalformedList, i, j, err)
			}
			set[h] = struct{}{}
		}
	}
	return s, nil
}

func decodeHash(encoding, s string) (Hash, error) {
	switch encoding {
	case "hex":
		return ParseHash(s)
	case "base64":
		var h Hash
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != HashSize {
			return h, fmt.Errorf("%w: not %d bytes of base64", ErrMalformedHash, HashSize)
		}
		copy(h[:], b)
		return h, nil
	}
	return Hash{}, fmt.Errorf("encoding %q: want hex or base64", encoding)
}

// Len is the number of UCI hashes in the list's kid-free partition.
func (s *Set) Len() int { return len(s.byType[TypeUCI]) }

// Revoked implements verification.Revocations: ci is revoked when its UCI hash or its
// COUNTRYCODEUCI hash (with the list's issuer) is listed. The list says nothing about
// why, so the reason is "revoked".
func (s *Set) Revoked(_ context.Context, ci string) (string, bool, error) {
	return s.RevokedKID(ci, "")
}

// RevokedKID is Revoked also consulting the partitions of kid (base64; "" for none).
func (s *Set) RevokedKID(ci, kid string) (string, bool, error) {
	if ci == "" {
		return "", false, nil
	}
	check := func(parts map[HashType]map[Hash]struct{}) bool {
		if _, ok := parts[TypeUCI][UCI(ci)]; ok {
			return true
		}
		if s.issuer != "" {
			if _, ok := parts[TypeCountryCodeUCI][CountryCodeUCI(s.issuer, ci)]; ok {
				return true
			}
		}
		return false
	}
	if check(s.byType) || (kid != "" && check(s.byKID[kid])) {
		return ReasonRevoked, true, nil
	}
	return "", false, nil
}
