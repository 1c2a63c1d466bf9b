package awsops

// Reprocessing runs (reprocess.RunStore): the run item, its state parts, its journal
// state and its change items; the package doc explains how a save is made atomic.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	pkReprocess = "REPROCESS"
	pkRunPart   = "RPDOC#"
	pkRunSeq    = "RPSEQ#"
	skRunSeq    = "SEQ"
	pkRunChange = "RPCHG#"

	attrVer     = "ver"
	attrParts   = "parts"
	attrGen     = "gen"
	attrAlloc   = "alloc"
	attrDone    = "done"
	attrGaps    = "gaps"
	attrPart    = "d"
	attrOutcome = "o"
)

// Limits of the run store. IDs are hex-encoded into sort keys of at most 1,024 bytes, so
// they are shorter than the embedded store's 1,024 bytes.
const (
	MaxRunIDBytes   = 500
	MaxUnitIDBytes  = 500
	MaxOutcomeBytes = 64 << 10
	// MaxRunDocBytes bounds a run's state: its parts and the run item are one
	// transaction, 4 MB (the emulator counts the request, binary in base64: 4/3 of it).
	MaxRunDocBytes = runDocPart * maxRunDocParts

	// runDocPart is the most state one item holds (the item limit is 400 KB).
	runDocPart     = 350_000
	maxRunDocParts = 8
	// batchWriteMax is BatchWriteItem's limit; changeWriters how many run at once.
	batchWriteMax = 25
	changeWriters = 4
	// writeAttempts bounds the retries of a BatchWriteItem's unprocessed items and of a
	// commit that lost a race.
	writeAttempts = 8
)

// errRunPartsGone: a run's state parts were replaced between reading the run item and
// reading them; the read starts again.
var errRunPartsGone = errors.New("run state replaced while read")

// runMeta is what a commit needs to know of the run item it replaces.
type runMeta struct {
	ver   int64 // commits so far
	parts int   // state parts (0: the state is inline)
	gen   int64 // the commit (ver) that wrote the parts
}

// journalState says which change numbers are committed.
type journalState struct {
	alloc, done int64
	gaps        map[int64]bool
}

func (j *journalState) committed(seq int64) bool { return seq > 0 && seq <= j.done && !j.gaps[seq] }

// SaveRun implements reprocess.RunStore: doc becomes the run's state and the changes
// are recorded (a unit's later change replaces its earlier one), together or not at all.
func (st *Store) SaveRun(ctx context.Context, runID string, doc []byte, changes map[string]string) error {
	if err := checkRunSave(runID, doc, changes); err != nil {
		return fmt.Errorf("awsops: save run: %w", err)
	}
	hid := hex.EncodeToString([]byte(runID))
	var seq int64
	var js journalState
	if len(changes) > 0 {
		var err error
		if js, err = st.allocRunSeq(ctx, hid); err != nil {
			return fmt.Errorf("awsops: save run %s: %w", runID, err)
		}
		seq = js.alloc
		if err := st.writeRunChanges(ctx, hid, seq, changes); err != nil {
			return fmt.Errorf("awsops: save run %s: changes: %w", runID, err)
		}
	}
	if err := st.commitRun(ctx, hid, doc, seq, js); err != nil {
		return fmt.Errorf("awsops: save run %s: %w", runID, err)
	}
	return nil
}

func checkRunID(runID string) error {
	switch {
	case runID == "":
		return fmt.Errorf("%w: run_id is empty", vaxpass.ErrInvalid)
	case strings.IndexByte(runID, 0) >= 0:
		return fmt.Errorf("%w: run_id contains a NUL byte", vaxpass.ErrInvalid)
	case len(runID) > MaxRunIDBytes:
		return fmt.Errorf("%w: run_id is %d bytes, more than %d", vaxpass.ErrInvalid, len(runID), MaxRunIDBytes)
	}
	return nil
}

func checkRunSave(runID string, doc []byte, changes map[string]string) error {
	if err := checkRunID(runID); err != nil {
		return err
	}
	if len(doc) > MaxRunDocBytes {
		return fmt.Errorf("%w: run state of %d bytes, more than %d", vaxpass.ErrInvalid, len(doc), MaxRunDocBytes)
	}
	for id, outcome := range changes {
		switch {
		case id == "":
			return fmt.Errorf("%w: change id is empty", vaxpass.ErrInvalid)
		case strings.IndexByte(id, 0) >= 0:
			return fmt.Errorf("%w: change id contains a NUL byte", vaxpass.ErrInvalid)
		case len(id) > MaxUnitIDBytes:
			return fmt.Errorf("%w: change id is %d bytes, more than %d", vaxpass.ErrInvalid, len(id), MaxUnitIDBytes)
		case len(outcome) > MaxOutcomeBytes:
			return fmt.Errorf("%w: change outcome is %d bytes, more than %d", vaxpass.ErrInvalid, len(outcome), MaxOutcomeBytes)
		}
	}
	return nil
}

func checkLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d: must be at least 1", vaxpass.ErrInvalid, limit)
	}
	return nil
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numAttr(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name]
	if !ok {
		return 0, nil
	}
	n, isN := v.(*types.AttributeValueMemberN)
	if !isN {
		return 0, fmt.Errorf("%w: %s is not a number", ErrCorrupt, name)
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	return i, nil
}

// changeSK is the sort key of unit id's change numbered seq: the unit's changes are
// together, in number order, and the units in ID byte order.
func changeSK(id string, seq int64) string {
	return hex.EncodeToString([]byte(id)) + "." + fmt.Sprintf("%016x", seq)
}

func parseChangeSK(sk string) (idHex string, seq int64, ok bool) {
	i := strings.LastIndexByte(sk, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(sk[i+1:], 16, 64)
	return sk[:i], n, err == nil
}

func partSK(gen int64, i int) string { return fmt.Sprintf("%016x#%03d", gen, i) }

// allocRunSeq numbers a save's changes: one more than any number given before.
func (st *Store) allocRunSeq(ctx context.Context, hid string) (journalState, error) {
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(pkRunSeq+hid, skRunSeq),
		UpdateExpression:          aws.String("ADD #a :one"),
		ExpressionAttributeNames:  map[string]string{"#a": attrAlloc},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return journalState{}, fmt.Errorf("number the changes: %w", err)
	}
	return decodeJournalState(out.Attributes)
}

func (st *Store) readJournalState(ctx context.Context, hid string) (journalState, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkRunSeq+hid, skRunSeq), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return journalState{}, fmt.Errorf("read the journal state: %w", err)
	}
	return decodeJournalState(out.Item)
}

func decodeJournalState(item map[string]types.AttributeValue) (journalState, error) {
	var js journalState
	var err1, err2 error
	js.alloc, err1 = numAttr(item, attrAlloc)
	js.done, err2 = numAttr(item, attrDone)
	if err := errors.Join(err1, err2); err != nil {
		return js, err
	}
	if v, ok := item[attrGaps]; ok {
		ns, isNS := v.(*types.AttributeValueMemberNS)
		if !isNS {
			return js, fmt.Errorf("%w: gaps is not a number set", ErrCorrupt)
		}
		js.gaps = make(map[int64]bool, len(ns.Value))
		for _, g := range ns.Value {
			n, err := strconv.ParseInt(g, 10, 64)
			if err != nil {
				return js, fmt.Errorf("%w: gaps: %w", ErrCorrupt, err)
			}
			js.gaps[n] = true
		}
	}
	return js, nil
}

// writeRunChanges writes the change items numbered seq, a few BatchWriteItems at a time:
// nobody reads them before the commit.
func (st *Store) writeRunChanges(ctx context.Context, hid string, seq int64, changes map[string]string) error {
	reqs := make([]types.WriteRequest, 0, len(changes))
	for id, outcome := range changes {
		it := key(pkRunChange+hid, changeSK(id, seq))
		it[attrOutcome] = &types.AttributeValueMemberB{Value: []byte(outcome)}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
	}
	chunks := slices.Collect(slices.Chunk(reqs, batchWriteMax))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(changeWriters, len(chunks)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(chunks) || wctx.Err() != nil {
					return
				}
				if err := st.batchWrite(wctx, chunks[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// batchWrite writes reqs (at most 25), again for the items DynamoDB left unprocessed.
func (st *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 1; ; attempt++ {
		out, err := st.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{st.table: reqs}})
		if err != nil {
			return err
		}
		if reqs = out.UnprocessedItems[st.table]; len(reqs) == 0 {
			return nil
		}
		if attempt == writeAttempts {
			return fmt.Errorf("%d items still unprocessed after %d attempts", len(reqs), attempt)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

func backoff(attempt int) time.Duration {
	return min(25*time.Millisecond<<attempt, 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// commitRun writes the run item (and its state parts) and, for a save with changes
// numbered seq, marks seq committed: one write, conditional on the run item and journal
// state it replaces (again, from a fresh read, when a concurrent save got there first).
func (st *Store) commitRun(ctx context.Context, hid string, doc []byte, seq int64, js journalState) error {
	var meta runMeta
	cached, known := st.runMeta.Load(hid)
	if known {
		meta = cached.(runMeta)
	}
	for attempt := 1; ; attempt++ {
		if !known {
			var err error
			if meta, err = st.readRunMeta(ctx, hid); err != nil {
				return err
			}
		}
		next, err := st.commitOnce(ctx, hid, doc, meta, seq, js)
		if err == nil {
			st.runMeta.Store(hid, next)
			return nil
		}
		st.runMeta.Delete(hid)
		if !isConflict(err) {
			return fmt.Errorf("commit: %w", err)
		}
		if attempt == writeAttempts {
			return fmt.Errorf("commit: %w: the run kept changing under %d attempts: %w", vaxpass.ErrConflict, attempt, err)
		}
		known = false
		if seq > 0 {
			if js, err = st.readJournalState(ctx, hid); err != nil {
				return err
			}
		}
		if err := sleep(ctx, backoff(attempt)/4); err != nil {
			return err
		}
	}
}

func (st *Store) readRunMeta(ctx context.Context, hid string) (runMeta, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pkReprocess, hid), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#v, #p, #g"),
		ExpressionAttributeNames: map[string]string{"#v": attrVer, "#p": attrParts, "#g": attrGen},
	})
	if err != nil {
		return runMeta{}, fmt.Errorf("read the run: %w", err)
	}
	return decodeRunMeta(out.Item)
}

func decodeRunMeta(item map[string]types.AttributeValue) (runMeta, error) {
	var m runMeta
	var parts int64
	var err1, err2, err3 error
	m.ver, err1 = numAttr(item, attrVer)
	parts, err2 = numAttr(item, attrParts)
	m.gen, err3 = numAttr(item, attrGen)
	m.parts = int(parts)
	if err := errors.Join(err1, err2, err3); err != nil {
		return m, err
	}
	if m.parts < 0 || m.parts > maxRunDocParts {
		return m, fmt.Errorf("%w: run with %d state parts", ErrCorrupt, m.parts)
	}
	return m, nil
}

// commitOnce is one attempt of commitRun; it returns what the run item holds after it.
func (st *Store) commitOnce(ctx context.Context, hid string, doc []byte, meta runMeta, seq int64, js journalState) (runMeta, error) {
	next := runMeta{ver: meta.ver + 1}
	names := map[string]string{"#v": attrVer, "#d": attrDoc, "#p": attrParts, "#g": attrGen}
	values := map[string]types.AttributeValue{":nv": num(next.ver)}
	cond := "attribute_not_exists(#v)"
	if meta.ver > 0 {
		cond = "#v = :ov"
		values[":ov"] = num(meta.ver)
	}
	var items []types.TransactWriteItem
	var update string
	if len(doc) <= runDocPart {
		update = "SET #v = :nv, #d = :doc REMOVE #p, #g"
		values[":doc"] = &types.AttributeValueMemberB{Value: append([]byte{}, doc...)}
	} else {
		parts := slices.Collect(slices.Chunk(doc, runDocPart))
		next.parts, next.gen = len(parts), next.ver
		update = "SET #v = :nv, #p = :np, #g = :nv REMOVE #d"
		values[":np"] = num(int64(next.parts))
		for i, p := range parts {
			it := key(pkRunPart+hid, partSK(next.gen, i))
			it[attrPart] = &types.AttributeValueMemberB{Value: p}
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: it}})
		}
	}
	// The parts of the state being replaced go with it.
	for i := range meta.parts {
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: key(pkRunPart+hid, partSK(meta.gen, i))}})
	}
	if seq > 0 {
		items = append(items, types.TransactWriteItem{Update: st.journalCommit(hid, seq, js)})
	}
	head := key(pkReprocess, hid)
	if len(items) == 0 {
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: head, UpdateExpression: aws.String(update),
			ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
		return next, err
	}
	items = append([]types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(st.table), Key: head, UpdateExpression: aws.String(update),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}}}, items...)
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return next, err
}

// journalCommit marks seq committed: done rises to it, the numbers skipped on the way
// (allocated by saves not committed yet, or never) become gaps; a number below done is
// one such gap, committed late.
func (st *Store) journalCommit(hid string, seq int64, js journalState) *types.Update {
	names := map[string]string{"#done": attrDone}
	values := map[string]types.AttributeValue{}
	cond := "attribute_not_exists(#done)"
	if js.done > 0 {
		cond = "#done = :od"
		values[":od"] = num(js.done)
	}
	var update string
	if seq > js.done {
		update = "SET #done = :s"
		values[":s"] = num(seq)
		if seq > js.done+1 {
			var gaps []string
			for g := js.done + 1; g < seq; g++ {
				gaps = append(gaps, strconv.FormatInt(g, 10))
			}
			update += " ADD #gaps :g"
			names["#gaps"] = attrGaps
			values[":g"] = &types.AttributeValueMemberNS{Value: gaps}
		}
	} else {
		update = "DELETE #gaps :g"
		cond += " AND contains(#gaps, :sv)"
		names["#gaps"] = attrGaps
		values[":g"] = &types.AttributeValueMemberNS{Value: []string{strconv.FormatInt(seq, 10)}}
		values[":sv"] = num(seq)
	}
	return &types.Update{
		TableName: aws.String(st.table), Key: key(pkRunSeq+hid, skRunSeq), UpdateExpression: aws.String(update),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}
}

// isConflict reports a write refused because of a condition or a concurrent transaction.
func isConflict(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionConflictException
	if errors.As(err, &ccf) || errors.As(err, &tce) {
		return true
	}
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		for _, r := range canceled.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed", "TransactionConflict":
				return true
			}
		}
	}
	return false
}

// LoadRun implements reprocess.RunStore (vaxpass.ErrNotFound when there is no such run).
func (st *Store) LoadRun(ctx context.Context, runID string) ([]byte, error) {
	if err := checkRunID(runID); err != nil {
		return nil, fmt.Errorf("awsops: load run: %w", err)
	}
	hid := hex.EncodeToString([]byte(runID))
	for attempt := 1; ; attempt++ {
		out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkReprocess, hid), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("awsops: load run %s: %w", runID, err)
		}
		if out.Item == nil {
			return nil, fmt.Errorf("awsops: load run %s: %w", runID, vaxpass.ErrNotFound)
		}
		doc, err := st.runDoc(ctx, hid, out.Item)
		if errors.Is(err, errRunPartsGone) && attempt < writeAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("awsops: load run %s: %w", runID, err)
		}
		return doc, nil
	}
}

// runDoc returns the state of a run item: inline, or read from its parts.
func (st *Store) runDoc(ctx context.Context, hid string, item map[string]types.AttributeValue) ([]byte, error) {
	if v, ok := item[attrDoc]; ok {
		b, isB := v.(*types.AttributeValueMemberB)
		if !isB {
			return nil, fmt.Errorf("%w: run state is not binary", ErrCorrupt)
		}
		return append([]byte{}, b.Value...), nil
	}
	meta, err := decodeRunMeta(item)
	if err != nil {
		return nil, err
	}
	if meta.parts == 0 {
		return nil, fmt.Errorf("%w: run without state", ErrCorrupt)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(st.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :gen)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pkRunPart + hid), ":gen": s(partSK(meta.gen, 0)[:17])},
	}
	var doc bytes.Buffer
	n := 0
	err = st.queryAll(ctx, in, func(it map[string]types.AttributeValue) (bool, error) {
		b, ok := it[attrPart].(*types.AttributeValueMemberB)
		if !ok {
			return false, fmt.Errorf("%w: run state part is not binary", ErrCorrupt)
		}
		doc.Write(b.Value)
		n++
		return true, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	if n != meta.parts {
		return nil, errRunPartsGone
	}
	return doc.Bytes(), nil
}

// ListRuns implements reprocess.RunStore: every run's state in run ID order.
func (st *Store) ListRuns(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := st.queryAll(ctx, rangeQuery(st.table, pkReprocess, "", "", false), func(it map[string]types.AttributeValue) (bool, error) {
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			return false, fmt.Errorf("%w: run without sk", ErrCorrupt)
		}
		for attempt := 1; ; attempt++ {
			doc, err := st.runDoc(ctx, sk.Value, it)
			if errors.Is(err, errRunPartsGone) && attempt < writeAttempts {
				got, gerr := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkReprocess, sk.Value), ConsistentRead: aws.Bool(true)})
				if gerr != nil {
					return false, gerr
				}
				it = got.Item
				continue
			}
			if err != nil {
				return false, err
			}
			out = append(out, doc)
			return true, nil
		}
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("awsops: list runs: %w", err)
	}
	return out, nil
}

// RunChanges implements reprocess.RunStore: a run's committed changes in unit ID order
// after the unit ID after, at most limit.
func (st *Store) RunChanges(ctx context.Context, runID, after string, limit int) (ids, outcomes []string, err error) {
	if err := errors.Join(checkRunID(runID), checkLimit(limit)); err != nil {
		return nil, nil, fmt.Errorf("awsops: run changes: %w", err)
	}
	hid := hex.EncodeToString([]byte(runID))
	js, err := st.readJournalState(ctx, hid)
	if err != nil {
		return nil, nil, fmt.Errorf("awsops: run changes of %s: %w", runID, err)
	}
	if js.done == 0 {
		return nil, nil, nil
	}
	lo := ""
	if after != "" {
		// Past every change of after itself (hex(after)+"."...), at the first unit that
		// extends it or sorts after it.
		lo = hex.EncodeToString([]byte(after)) + "0"
	}
	// The changes of a unit are consecutive, in number order: the unit's outcome is its
	// last committed one.
	var cur string
	var outcome []byte
	have := false
	flush := func() error {
		if !have {
			return nil
		}
		id, err := hex.DecodeString(cur)
		if err != nil {
			return fmt.Errorf("%w: change key: %w", ErrCorrupt, err)
		}
		ids = append(ids, string(id))
		outcomes = append(outcomes, string(outcome))
		have = false
		return nil
	}
	started := false
	err = st.queryAll(ctx, rangeQuery(st.table, pkRunChange+hid, lo, "", false), func(it map[string]types.AttributeValue) (bool, error) {
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			return false, fmt.Errorf("%w: change without sk", ErrCorrupt)
		}
		idHex, seq, ok := parseChangeSK(sk.Value)
		if !ok {
			return false, fmt.Errorf("%w: change key %q", ErrCorrupt, sk.Value)
		}
		if !started || idHex != cur {
			if err := flush(); err != nil {
				return false, err
			}
			if len(ids) == limit {
				return false, nil
			}
			cur, started = idHex, true
		}
		if js.committed(seq) {
			b, ok := it[attrOutcome].(*types.AttributeValueMemberB)
			if !ok {
				return false, fmt.Errorf("%w: change without outcome", ErrCorrupt)
			}
			outcome, have = b.Value, true
		}
		return true, nil
	}, func() int32 { return int32(min(limit-len(ids)+1, 1000)) })
	if err == nil && len(ids) < limit {
		err = flush()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("awsops: run changes of %s: %w", runID, err)
	}
	return ids, outcomes, nil
}
