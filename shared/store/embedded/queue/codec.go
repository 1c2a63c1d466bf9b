package queue

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"time"
)

var (
	bMeta     = []byte("m")
	bBody     = []byte("b")
	bVis      = []byte("v")
	bDedup    = []byte("d")
	bDedupExp = []byte("e")
	bDead     = []byte("x")
)

// Values of the visibility index: what a message not visible yet is waiting for.
const (
	kindPending  byte = 0 // sent (or redriven) and not received since: delayed until visible-at
	kindInFlight byte = 1 // received: hidden until visible-at
)

// timeKey encodes t so that byte order is time order, also before 1970.
func timeKey(ns int64) uint64 { return uint64(ns) ^ 1<<63 }

func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

func visKey(visibleAt int64, id uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, timeKey(visibleAt))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
}

func splitVisKey(k []byte) (visibleAt int64, id uint64, err error) {
	if len(k) != 16 {
		return 0, 0, fmt.Errorf("%w: visibility key of %d bytes", ErrCorrupt, len(k))
	}
	return int64(binary.BigEndian.Uint64(k) ^ 1<<63), binary.BigEndian.Uint64(k[8:]), nil
}

// formatID renders a message id: 16 hex digits, so ids sort by send order as strings too.
func formatID(id uint64) string { return fmt.Sprintf("%016x", id) }

func parseID(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: message id %q: must be 16 hex digits", ErrInvalidArgument, s)
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil || s != hex.EncodeToString(b[:]) {
		return 0, fmt.Errorf("%w: message id %q: must be 16 lowercase hex digits", ErrInvalidArgument, s)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// meta is the mutable part of a message, rewritten on every receive.
type meta struct {
	visibleAt       int64 // unix ns
	sentAt          int64 // unix ns
	firstReceivedAt int64 // unix ns; 0 before the first receive
	token           uint64
	receiveCount    uint32
}

const metaLen = 8*4 + 4

func (m meta) encode() []byte {
	b := make([]byte, metaLen)
	binary.BigEndian.PutUint64(b[0:], uint64(m.visibleAt))
	binary.BigEndian.PutUint64(b[8:], uint64(m.sentAt))
	binary.BigEndian.PutUint64(b[16:], uint64(m.firstReceivedAt))
	binary.BigEndian.PutUint64(b[24:], m.token)
	binary.BigEndian.PutUint32(b[32:], m.receiveCount)
	return b
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaLen {
		return meta{}, fmt.Errorf("%w: message meta of %d bytes", ErrCorrupt, len(b))
	}
	return meta{
		visibleAt:       int64(binary.BigEndian.Uint64(b[0:])),
		sentAt:          int64(binary.BigEndian.Uint64(b[8:])),
		firstReceivedAt: int64(binary.BigEndian.Uint64(b[16:])),
		token:           binary.BigEndian.Uint64(b[24:]),
		receiveCount:    binary.BigEndian.Uint32(b[32:]),
	}, nil
}

// encodeBody stores the immutable part: the dedup id and the body.
func encodeBody(dedupID string, body []byte) []byte {
	b := make([]byte, 1+len(dedupID)+len(body))
	b[0] = byte(len(dedupID))
	copy(b[1:], dedupID)
	copy(b[1+len(dedupID):], body)
	return b
}

// decodeBody copies out of b (bbolt memory is only valid inside the transaction).
func decodeBody(b []byte) (dedupID string, body []byte, err error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, fmt.Errorf("%w: message body record of %d bytes", ErrCorrupt, len(b))
	}
	n := int(b[0])
	return string(b[1 : 1+n]), append([]byte(nil), b[1+n:]...), nil
}

// deadRecord is a message in the dead-letter area.
type deadRecord struct {
	sentAt, firstReceivedAt, deadAt int64
	receiveCount                    uint32
	dedupID                         string
	body                            []byte
}

const deadHeaderLen = 8*3 + 4

func (d deadRecord) encode() []byte {
	b := make([]byte, deadHeaderLen, deadHeaderLen+1+len(d.dedupID)+len(d.body))
	binary.BigEndian.PutUint64(b[0:], uint64(d.sentAt))
	binary.BigEndian.PutUint64(b[8:], uint64(d.firstReceivedAt))
	binary.BigEndian.PutUint64(b[16:], uint64(d.deadAt))
	binary.BigEndian.PutUint32(b[24:], d.receiveCount)
	return append(b, encodeBody(d.dedupID, d.body)...)
}

func decodeDead(b []byte) (deadRecord, error) {
	if len(b) < deadHeaderLen {
		return deadRecord{}, fmt.Errorf("%w: dead letter of %d bytes", ErrCorrupt, len(b))
	}
	d := deadRecord{
		sentAt:          int64(binary.BigEndian.Uint64(b[0:])),
		firstReceivedAt: int64(binary.BigEndian.Uint64(b[8:])),
		deadAt:          int64(binary.BigEndian.Uint64(b[16:])),
		receiveCount:    binary.BigEndian.Uint32(b[24:]),
	}
	var err error
	d.dedupID, d.body, err = decodeBody(b[deadHeaderLen:])
	return d, err
}

// dedupValue is the d bucket's value: the original message id and when the id may be
// reused (0: never).
func dedupValue(id uint64, expiresAt int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, id)
	binary.BigEndian.PutUint64(b[8:], uint64(expiresAt))
	return b
}

func decodeDedupValue(b []byte) (id uint64, expiresAt int64, err error) {
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("%w: dedup entry of %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), nil
}

func dedupExpKey(expiresAt int64, dedupID string) []byte {
	k := make([]byte, 8+len(dedupID))
	binary.BigEndian.PutUint64(k, timeKey(expiresAt))
	copy(k[8:], dedupID)
	return k
}

// Receipt handles are 40 lowercase hex digits: a 4-byte tag of the queue name, the
// message id and the delivery's token. The token is drawn from a per-queue counter at
// every receive, so a handle from an earlier delivery never matches a later one.
const receiptLen = 2 * (4 + 8 + 8)

func nameTag(name string) [4]byte {
	h := fnv.New32a()
	h.Write([]byte(name))
	var t [4]byte
	binary.BigEndian.PutUint32(t[:], h.Sum32())
	return t
}

func (q *Queue) formatReceipt(id, token uint64) string {
	var b [20]byte
	copy(b[:4], q.tag[:])
	binary.BigEndian.PutUint64(b[4:], id)
	binary.BigEndian.PutUint64(b[12:], token)
	return hex.EncodeToString(b[:])
}

// parseReceipt checks a receipt handle's shape and that it belongs to this queue.
func (q *Queue) parseReceipt(s string) (id, token uint64, err error) {
	if len(s) != receiptLen {
		return 0, 0, fmt.Errorf("%w: length %d, want %d", ErrBadReceipt, len(s), receiptLen)
	}
	var b [20]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, 0, fmt.Errorf("%w: not hex", ErrBadReceipt)
	}
	if s != hex.EncodeToString(b[:]) {
		return 0, 0, fmt.Errorf("%w: not lowercase hex", ErrBadReceipt)
	}
	if [4]byte(b[:4]) != q.tag {
		return 0, 0, fmt.Errorf("%w: issued by another queue", ErrBadReceipt)
	}
	token = binary.BigEndian.Uint64(b[12:])
	if token == 0 {
		return 0, 0, fmt.Errorf("%w: zero token", ErrBadReceipt)
	}
	return binary.BigEndian.Uint64(b[4:]), token, nil
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
