package awsops

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
)

const (
	pkAuditDays = "AUDITDAYS"
	// auditAtLayout renders At fixed width, so that the strings sort as the times do.
	auditAtLayout = "2006-01-02T15:04:05.000000000Z"
	auditAtLen    = len(auditAtLayout)
	// auditPage bounds the items one Query of the trail reads.
	auditPage = 1000
)

// Append implements audit.Appender.
func (st *Store) Append(ctx context.Context, e audit.Entry) error {
	it, err := st.auditItem(&e)
	if err != nil {
		return fmt.Errorf("awsops: append audit entry: %w", err)
	}
	if err := st.markAuditDays(ctx, e); err != nil {
		return fmt.Errorf("awsops: append audit entry: %w", err)
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: it})
	if err != nil {
		return fmt.Errorf("awsops: append audit entry: %w", err)
	}
	return nil
}

// auditItem validates e, gives it its time (when zero) and ID, and renders its item.
func (st *Store) auditItem(e *audit.Entry) (map[string]types.AttributeValue, error) {
	if e.At.IsZero() {
		e.At = st.now()
	}
	e.At = e.At.UTC()
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if y := e.At.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("%w: at %s is outside years 1-9999", audit.ErrInvalid, e.At)
	}
	id, err := st.newAuditID(e.At)
	if err != nil {
		return nil, err
	}
	e.ID = id
	doc, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	it := key(pkAudit+auditDay(e.At), auditSK(e.ID))
	it[attrDoc] = s(string(doc))
	return it, nil
}

// auditPut is the transaction item appending an audit entry (its ID is new: the
// condition only guards against overwriting).
func auditPut(table string, it map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(table), Item: it,
		ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}}
}

// newAuditID is At (fixed width), "-", 16 hex digits of a sequence that increases in
// this process (the clock's nanoseconds, or one more than the last) and 8 random hex
// digits: IDs sort by At, then by the order of appending.
func (st *Store) newAuditID(at time.Time) (string, error) {
	var seq uint64
	for {
		prev := st.auditSeq.Load()
		seq = max(uint64(time.Now().UnixNano()), prev+1)
		if st.auditSeq.CompareAndSwap(prev, seq) {
			break
		}
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	if _, err := rand.Read(b[8:]); err != nil {
		return "", err
	}
	return at.Format(auditAtLayout) + "-" + hex.EncodeToString(b[:]), nil
}

func auditDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// auditSK is the sort key of the entry with this ID in its day (IDs start with At).
func auditSK(id string) string { return id[:auditAtLen] + "#" + id }

// parseAuditID returns the time prefix of an entry ID ("" when id is not one).
func parseAuditID(id string) (at time.Time, ok bool) {
	if len(id) < auditAtLen+2 || id[auditAtLen] != '-' {
		return at, false
	}
	if _, err := hex.DecodeString(id[auditAtLen+1:]); err != nil {
		return at, false
	}
	at, err := time.Parse(auditAtLayout, id[:auditAtLen])
	return at, err == nil
}

// markAuditDays records the days of the entries in the audit days, before the entries
// are written: a day listed without entries (its write failed) is only read in vain.
func (st *Store) markAuditDays(ctx context.Context, entries ...audit.Entry) error {
	for i := range entries {
		day := auditDay(entries[i].At)
		if _, done := st.auditDays.Load(day); done {
			continue
		}
		_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: key(pkAuditDays, day)})
		if err != nil {
			return fmt.Errorf("audit day %s: %w", day, err)
		}
		st.auditDays.Store(day, true)
	}
	return nil
}

// Entries implements audit.Reader: the entries matching q in (At, append) order, walking
// the days that have entries from the first that can match; next is the ID of the last
// entry returned when another matching entry follows it.
func (st *Store) Entries(ctx context.Context, q audit.Query) ([]audit.Entry, string, error) {
	if err := q.Validate(); err != nil {
		return nil, "", fmt.Errorf("awsops: audit entries: %w", err)
	}
	// [lo, hi) bounds the sort keys of every day ("" unbounded): an entry's sort key
	// starts with its At, fixed width, and At in [From, To) is sk in [From, To).
	var lo, hi, loDay, hiDay, afterSK string
	if !q.From.IsZero() && q.From.UTC().Year() >= 1 {
		lo, loDay = q.From.UTC().Format(auditAtLayout), auditDay(q.From)
	}
	if !q.To.IsZero() && q.To.UTC().Year() <= 9999 {
		hi, hiDay = q.To.UTC().Format(auditAtLayout), auditDay(q.To)
	}
	if q.After != "" {
		at, ok := parseAuditID(q.After)
		if !ok {
			return nil, "", fmt.Errorf("awsops: audit entries: %w: after is not a cursor", audit.ErrInvalid)
		}
		if afterSK = auditSK(q.After); afterSK >= lo {
			lo, loDay = afterSK, auditDay(at)
		}
	}
	if hi != "" && lo >= hi {
		return nil, "", nil
	}
	var out []audit.Entry
	next := ""
	full := false // the page is full and the next match is being looked for
	err := st.queryAll(ctx, rangeQuery(st.table, pkAuditDays, loDay, hiDay, true), func(dayItem map[string]types.AttributeValue) (bool, error) {
		day, _ := dayItem[attrSK].(*types.AttributeValueMemberS)
		if day == nil {
			return false, fmt.Errorf("%w: audit day without sk", ErrCorrupt)
		}
		in := rangeQuery(st.table, pkAudit+day.Value, lo, hi, false)
		stop := false
		err := st.queryAll(ctx, in, func(it map[string]types.AttributeValue) (bool, error) {
			if sk, _ := it[attrSK].(*types.AttributeValueMemberS); sk != nil && sk.Value == afterSK {
				return true, nil
			}
			e, err := decodeAuditEntry(it)
			if err != nil {
				return false, err
			}
			if !q.Matches(&e) {
				return true, nil
			}
			if full {
				next, stop = out[len(out)-1].ID, true
				return false, nil
			}
			out = append(out, e)
			full = len(out) == q.Limit
			return true, nil
		}, func() int32 {
			if q.Action != "" || q.Actor != "" {
				return auditPage // the filters may skip many: read full pages
			}
			// Every item matches but the cursor's own: the rest of the page and one more.
			return int32(min(q.Limit-len(out)+2, auditPage))
		})
		return !stop && err == nil, err
	}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("awsops: audit entries: %w", err)
	}
	return out, next, nil
}

func decodeAuditEntry(it map[string]types.AttributeValue) (audit.Entry, error) {
	var e audit.Entry
	doc, ok := it[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return e, fmt.Errorf("%w: audit entry without doc", ErrCorrupt)
	}
	if err := json.Unmarshal([]byte(doc.Value), &e); err != nil {
		return e, fmt.Errorf("%w: audit entry: %w", ErrCorrupt, err)
	}
	return e, nil
}

// rangeQuery is the consistent Query of partition pk's sort keys in [lo, hi] when
// inclusive, else [lo, hi) ("" unbounded; an exclusive hi is never a stored key here).
func rangeQuery(table, pk, lo, hi string, inclusive bool) *dynamodb.QueryInput {
	names := map[string]string{"#pk": attrPK}
	values := map[string]types.AttributeValue{":pk": s(pk)}
	cond := "#pk = :pk"
	switch {
	case lo != "" && hi != "":
		cond += " AND #sk BETWEEN :lo AND :hi"
	case lo != "":
		cond += " AND #sk >= :lo"
	case hi != "" && inclusive:
		cond += " AND #sk <= :hi"
	case hi != "":
		cond += " AND #sk < :hi"
	}
	if lo != "" {
		names["#sk"], values[":lo"] = attrSK, s(lo)
	}
	if hi != "" {
		names["#sk"], values[":hi"] = attrSK, s(hi)
	}
	return &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values, ConsistentRead: aws.Bool(true),
	}
}

// queryAll pages through in, calling fn for each item until it answers false or fails;
// limit, when not nil, sets each page's Limit.
func (st *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) (bool, error), limit func() int32) error {
	for {
		if limit != nil {
			in.Limit = aws.Int32(max(limit(), 1))
		}
		page, err := st.db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("query %s: %w", partitionOf(in), err)
		}
		for _, it := range page.Items {
			more, err := fn(it)
			if err != nil || !more {
				return err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// partitionOf names the partition a query reads, for errors.
func partitionOf(in *dynamodb.QueryInput) string {
	if v, ok := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return "?"
}
