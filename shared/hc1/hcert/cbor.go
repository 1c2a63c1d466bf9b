package hcert

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/fxamacker/cbor/v2"
)

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// Size limits for untrusted input. A QR code holds at most 4296 alphanumeric
// characters (about 2.9 KB of zlib data), so real HCERTs stay far below them.
const (
	// MaxHC1Length bounds the HC1 text accepted by the decoder.
	MaxHC1Length = 16 << 10
	// MaxCOSESize bounds the inflated COSE_Sign1; zlib bombs stop here.
	MaxCOSESize = 64 << 10
	maxNesting  = 16
	maxElements = 1024
)

// encMode encodes claims deterministically (RFC 8949 4.2.1 core deterministic
// encoding: shortest forms, sorted map keys), built once.
var encMode = func() cbor.UserBufferEncMode {
	opt := cbor.CoreDetEncOptions()
	opt.Time = cbor.TimeRFC3339 // a time.Time in a payload becomes a plain string
	opt.TimeTag = cbor.EncTagNone
	m, err := opt.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// decMode decodes untrusted CBOR strictly: duplicate map keys, deep nesting,
// long arrays and maps, invalid UTF-8, NaN and infinities are errors.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  maxNesting,
		MaxArrayElements: maxElements,
		MaxMapPairs:      maxElements,
		IndefLength:      cbor.IndefLengthAllowed, // legal CBOR; some issuers use it
		TagsMd:           cbor.TagsAllowed,
		UTF8:             cbor.UTF8RejectInvalid,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// appendHead appends a CBOR data item head with the shortest argument form.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), n)
}

func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(dst, majorUint, uint64(v))
	}
	return appendHead(dst, majorNegInt, uint64(-1-v))
}

func appendBytes(dst, b []byte) []byte {
	return append(appendHead(dst, majorBytes, uint64(len(b))), b...)
}

// readHead parses the head of the data item at data[0:]: its major type, its
// argument (or the additional-information value 31 for indefinite length, with
// indef set), and the head's length.
func readHead(data []byte) (major byte, arg uint64, n int, indef bool, err error) {
	if len(data) == 0 {
		return 0, 0, 0, false, fmt.Errorf("unexpected end of data")
	}
	major, ai := data[0]>>5, data[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, false, nil
	case ai == 24 && len(data) >= 2:
		return major, uint64(data[1]), 2, false, nil
	case ai == 25 && len(data) >= 3:
		return major, uint64(binary.BigEndian.Uint16(data[1:])), 3, false, nil
	case ai == 26 && len(data) >= 5:
		return major, uint64(binary.BigEndian.Uint32(data[1:])), 5, false, nil
	case ai == 27 && len(data) >= 9:
		return major, binary.BigEndian.Uint64(data[1:]), 9, false, nil
	case ai == 31 && (major == majorBytes || major == majorText || major == majorArray || major == majorMap || major == majorSimple):
		return major, 0, 1, true, nil
	case ai >= 24 && ai <= 27:
		return 0, 0, 0, false, fmt.Errorf("unexpected end of data in a head")
	}
	return 0, 0, 0, false, fmt.Errorf("reserved additional information %d", ai)
}
