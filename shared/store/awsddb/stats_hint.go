package awsddb

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// statsHints keeps the person metrics items that FacilitySignatures read along with the
// signatures (the item sorts right after them in the person's partition, so the same
// Query returns it), for the certificate write that usually follows: central signing
// reads a person's signatures and then replaces their certificate, and the replacement's
// transaction needs the metrics item it conditions on. Reading it once instead of twice
// is one GetItem less per certificate.
//
// A hint may be stale (another worker wrote the person since): it is only used where the
// transaction conditions on the metrics item's version as read (usedHint), so a stale
// one cancels the transaction and the retry reads the item afresh. It is taken once.
type statsHints struct {
	mu sync.Mutex
	m  map[string]personStats
}

// maxStatsHints bounds the hints a process keeps: hints of people whose signatures were
// read without a certificate write after (not eligible yet, unchanged) are dropped in a
// lump when it is reached.
const maxStatsHints = 4096

func (h *statsHints) put(p personStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxStatsHints {
		h.m = make(map[string]personStats)
	}
	h.m[p.person] = p
}

func (h *statsHints) take(person string) (personStats, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.m[person]
	if ok {
		delete(h.m, person)
	}
	return p, ok
}

// conditionsOnPerson reports whether the transaction's members include the person's
// metrics item with a condition (personStatsUpdate's: the version read, or its absence),
// so that a stale hint cannot be written past.
func conditionsOnPerson(items []txItem, person string) bool {
	pk := pkPerson + person
	for _, m := range items {
		u := m.item.Update
		if !m.stats || u == nil || u.ConditionExpression == nil {
			continue
		}
		if v, ok := u.Key[attrPK].(*types.AttributeValueMemberS); ok && v.Value == pk {
			if sk, ok := u.Key[attrSK].(*types.AttributeValueMemberS); ok && sk.Value == skStats {
				return true
			}
		}
	}
	return false
}
