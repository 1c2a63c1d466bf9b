package awsddb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// doseItem renders a dose in the doseitem layout (version as a number).
func doseItem(d *vaxpass.Dose) (map[string]types.AttributeValue, error) {
	a, err := doseitem.Attributes(d)
	if err != nil {
		return nil, err
	}
	item := make(map[string]types.AttributeValue, len(a))
	for k, v := range a {
		if k == doseitem.AttrVersion {
			item[k] = &types.AttributeValueMemberN{Value: v}
		} else {
			item[k] = sAttr(v)
		}
	}
	return item, nil
}

// doseFrom reads a dose item back (from the table or an ALL-projected index).
func doseFrom(item map[string]types.AttributeValue) (vaxpass.Dose, error) {
	var d vaxpass.Dose
	doc, ok := item[doseitem.AttrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return d, fmt.Errorf("%w: dose item without %q", ErrCorrupt, doseitem.AttrDoc)
	}
	if err := doseitem.FromDoc(doc.Value, &d); err != nil {
		return d, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return d, nil
}

func doseKey(k vaxpass.DoseKey) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{doseitem.AttrFacility: sAttr(k.FacilityID), doseitem.AttrSourceID: sAttr(k.SourceID)}
}

func checkKey(k vaxpass.DoseKey) error {
	return errors.Join(checkPart("facility_id", k.FacilityID, true), checkPart("source_id", k.SourceID, true))
}

// checkDose rejects a dose whose key or index attributes cannot be stored.
func checkDose(d *vaxpass.Dose) error {
	return errors.Join(checkKey(d.Key()),
		checkPart("person_id", d.PersonID, false),
		checkPart("match.status", string(d.Match.Status), false),
		checkCommune(d))
}

// PutNew implements ingest.DoseWriter: each dose is written only if no dose with its
// facility and source_id is stored (created[i] false: a duplicate, left untouched), and a
// dose repeated within the batch is a duplicate of its first occurrence. A dose without a
// Version is stored with Version 1. An invalid dose rejects the batch before anything is
// written. Writes are conditional PutItems, Options.Concurrency at a time (see the package
// doc on why not a transaction); on a store error some doses may have been written.
func (s *Store) PutNew(ctx context.Context, doses []vaxpass.Dose) ([]bool, error) {
	for i := range doses {
		if err := checkDose(&doses[i]); err != nil {
			return nil, fmt.Errorf("awsddb: put doses: dose %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awsddb: put doses: %w", err)
	}
	created := make([]bool, len(doses))
	first := make(map[vaxpass.DoseKey]bool, len(doses))
	var todo []int
	for i := range doses {
		if !first[doses[i].Key()] {
			first[doses[i].Key()] = true
			todo = append(todo, i)
		}
	}
	err := forEach(ctx, len(todo), s.concurrency, func(ctx context.Context, j int) error {
		i := todo[j]
		d := doses[i]
		if d.Version < 1 {
			d.Version = 1
		}
		item, err := doseItem(&d)
		if err != nil {
			return fmt.Errorf("dose %d: %w", i, err)
		}
		delta := stats.Delta{}
		delta.AddDose(nil, &d)
		// One transaction: the dose, if new, and its counters (the transaction's token
		// makes the SDK's retry of a lost response report the first outcome).
		refused, err := s.transact(ctx, func(attempt int) ([]txItem, error) {
			put := txItem{what: "the dose is stored", item: types.TransactWriteItem{Put: &types.Put{
				TableName:                aws.String(s.tables.Doses),
				Item:                     item,
				ConditionExpression:      aws.String("attribute_not_exists(#f)"),
				ExpressionAttributeNames: map[string]string{"#f": doseitem.AttrFacility},
			}}}
			return append([]txItem{put}, s.counterItems(delta, d.FacilityID+"/"+d.SourceID, attempt)...), nil
		})
		if err != nil {
			return fmt.Errorf("dose %d: %w", i, err)
		}
		created[i] = refused == nil // refused: stored already, a duplicate
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: put doses: %w", err)
	}
	return created, nil
}

// SaveMatch implements matching.MatchWriter: d is stored with Version+1 if the stored
// dose still has d.Version (vaxpass.ErrConflict otherwise; vaxpass.ErrNotFound when there
// is none). The write emits a MODIFY stream record.
func (s *Store) SaveMatch(ctx context.Context, d vaxpass.Dose) error {
	if err := s.putIfVersion(ctx, d); err != nil {
		return fmt.Errorf("awsddb: save match %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	return nil
}

// UpdateDose stores a corrected dose with the semantics of SaveMatch (conditional on
// d.Version, stored with Version+1).
func (s *Store) UpdateDose(ctx context.Context, d vaxpass.Dose) error {
	if err := s.putIfVersion(ctx, d); err != nil {
		return fmt.Errorf("awsddb: update dose %s/%s: %w", d.FacilityID, d.SourceID, err)
	}
	return nil
}

// putIfVersion writes d with Version+1, conditional on the stored version being d's. It
// reads the stored dose first (putCounted): a write that moves the dose between the
// dashboard's counters (its status or its ID number's province) writes the dose and the
// counters in one transaction, the version condition making the dose read the one
// replaced; any other is a conditional PutItem. A failed condition returns the stored
// item (ALL_OLD), which tells a missing dose from a changed one.
func (s *Store) putIfVersion(ctx context.Context, d vaxpass.Dose) error {
	if err := checkDose(&d); err != nil {
		return err
	}
	read := d.Version
	d.Version++
	item, err := doseItem(&d)
	if err != nil {
		return err
	}
	refused, counted, err := s.putCounted(ctx, &d, read, item)
	switch {
	case err != nil:
		return err
	case refused != nil:
		failed, stored := refused.failed(0)
		if !failed || len(stored) == 0 {
			return vaxpass.ErrNotFound
		}
		v, _ := num(stored, doseitem.AttrVersion)
		return fmt.Errorf("%w: stored version %d, written version %d", vaxpass.ErrConflict, v, read)
	case counted:
		return nil
	}
	var watch retryWatch
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.tables.Doses),
		Item:                                item,
		ConditionExpression:                 aws.String("#v = :v"),
		ExpressionAttributeNames:            map[string]string{"#v": doseitem.AttrVersion},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":v": nAttr(read)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, watch.option)
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &failed):
		if len(failed.Item) == 0 {
			return vaxpass.ErrNotFound
		}
		if watch.Ambiguous() && ownWrite(failed.Item, item) {
			return nil // this write, retried by the SDK after its response was lost (retry.go)
		}
		stored, _ := num(failed.Item, doseitem.AttrVersion)
		return fmt.Errorf("%w: stored version %d, written version %d", vaxpass.ErrConflict, stored, read)
	default:
		return err
	}
}

// putCounted writes d over the stored version read, with the counters it moves, in one
// transaction; counted is false (and nothing written) when it moves none. The stored dose
// is read first (strongly consistent): a missing one is vaxpass.ErrNotFound, one at
// another version vaxpass.ErrConflict, as the write's condition would answer (versions
// only grow, doses are never deleted).
func (s *Store) putCounted(ctx context.Context, d *vaxpass.Dose, read int64, item map[string]types.AttributeValue) (refused *txRefused, counted bool, err error) {
	refused, err = s.transact(ctx, func(attempt int) ([]txItem, error) {
		counted = false
		old, err := s.GetDose(ctx, d.Key())
		if errors.Is(err, vaxpass.ErrNotFound) {
			return nil, vaxpass.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if old.Version != read {
			return nil, fmt.Errorf("%w: stored version %d, written version %d", vaxpass.ErrConflict, old.Version, read)
		}
		delta := stats.Delta{}
		delta.AddDose(&old, d)
		if len(delta) == 0 {
			return nil, nil
		}
		put := txItem{what: "the dose changed", item: types.TransactWriteItem{Put: &types.Put{
			TableName:                           aws.String(s.tables.Doses),
			Item:                                item,
			ConditionExpression:                 aws.String("#v = :v"),
			ExpressionAttributeNames:            map[string]string{"#v": doseitem.AttrVersion},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":v": nAttr(read)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}}
		counted = true
		return append([]txItem{put}, s.counterItems(delta, d.FacilityID+"/"+d.SourceID, attempt)...), nil
	})
	return refused, counted, err
}

// SaveMatchBatch is SaveMatch for many doses: errs[i] is nil when doses[i] was stored, or
// wraps vaxpass.ErrConflict, vaxpass.ErrNotFound or vaxpass.ErrInvalid. The batch is
// written in rounds: the first occurrence of every key, then the second, and so on; a
// round writes in parallel (Options.Concurrency). So the same key twice is written in
// batch order, and the second is a conflict unless it carries the first's new Version.
// err is a failure of the store itself (the doses written before it stay written).
func (s *Store) SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error) {
	errs = make([]error, len(doses))
	var rounds [][]int
	seen := map[vaxpass.DoseKey]int{}
	for i := range doses {
		if e := checkDose(&doses[i]); e != nil {
			errs[i] = fmt.Errorf("awsddb: save match %s/%s: %w", doses[i].FacilityID, doses[i].SourceID, e)
			continue
		}
		r := seen[doses[i].Key()]
		seen[doses[i].Key()] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	for _, round := range rounds {
		err = forEach(ctx, len(round), s.concurrency, func(ctx context.Context, j int) error {
			i := round[j]
			e := s.putIfVersion(ctx, doses[i])
			if e != nil && !errors.Is(e, vaxpass.ErrConflict) && !errors.Is(e, vaxpass.ErrNotFound) {
				return fmt.Errorf("%s/%s: %w", doses[i].FacilityID, doses[i].SourceID, e)
			}
			if e != nil {
				errs[i] = fmt.Errorf("awsddb: save match %s/%s: %w", doses[i].FacilityID, doses[i].SourceID, e)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("awsddb: save matches: %w", err)
		}
	}
	return errs, nil
}

// MarkSignedGroups implements signing.BatchMarker: MarkSigned of each group (one
// transaction per group, several at once). errs[i] is group i's ErrConflict or
// ErrNotFound; any other failure is err, and groups already marked stay marked (marking
// again after a retry is a conflict the caller tolerates: the doses were signed).
func (s *Store) MarkSignedGroups(ctx context.Context, groups [][]vaxpass.Dose, at time.Time) ([]error, error) {
	errs := make([]error, len(groups))
	err := forEach(ctx, len(groups), s.concurrency, func(ctx context.Context, i int) error {
		err := s.MarkSigned(ctx, groups[i], at)
		if errors.Is(err, vaxpass.ErrConflict) || errors.Is(err, vaxpass.ErrNotFound) {
			errs[i] = err
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// MarkSigned implements signing.FacilityStore: it sets SignedAt to at on every given
// dose, each conditional on its Version (vaxpass.ErrConflict, and nothing written, if one
// changed; vaxpass.ErrNotFound if one is missing), with Version+1, in one transaction. The
// caller's copy is what is written, with SignedAt and Version changed: every write of a
// dose raises its Version (the commune index backfill only adds attributes derived from
// the doc), so a stored dose of the same Version is the same dose, and the condition
// refuses any other. No read before the write: one request per person signed instead of
// one per dose more (a backlog signs millions). At most 100 distinct doses (a
// transaction's limit; a person has a handful).
func (s *Store) MarkSigned(ctx context.Context, doses []vaxpass.Dose, at time.Time) error {
	for i := range doses {
		if err := checkKey(doses[i].Key()); err != nil {
			return fmt.Errorf("awsddb: mark signed: dose %d: %w", i, err)
		}
	}
	if at.IsZero() {
		return fmt.Errorf("awsddb: mark signed: %w: zero signing time", vaxpass.ErrInvalid)
	}
	var list []vaxpass.Dose
	seen := map[vaxpass.DoseKey]int64{}
	for _, d := range doses {
		if v, ok := seen[d.Key()]; ok {
			if v == d.Version {
				continue // listed twice as read: one write
			}
			return fmt.Errorf("awsddb: mark signed %s/%s: %w: listed at versions %d and %d", d.FacilityID, d.SourceID, vaxpass.ErrConflict, v, d.Version)
		}
		seen[d.Key()] = d.Version
		list = append(list, d)
	}
	if len(list) == 0 {
		return nil
	}
	if len(list) > maxTransactItems {
		return fmt.Errorf("awsddb: mark signed: %w: %d doses, more than %d in one transaction", vaxpass.ErrInvalid, len(list), maxTransactItems)
	}
	items := make([]types.TransactWriteItem, len(list))
	what := make([]string, len(list))
	for i, d := range list {
		next := d
		next.SignedAt = at
		next.Version = d.Version + 1
		item, err := doseItem(&next)
		if err != nil {
			return fmt.Errorf("awsddb: mark signed: %w", err)
		}
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName:                           aws.String(s.tables.Doses),
			Item:                                item,
			ConditionExpression:                 aws.String("#v = :v"),
			ExpressionAttributeNames:            map[string]string{"#v": doseitem.AttrVersion},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":v": nAttr(d.Version)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}
		what[i] = d.FacilityID + "/" + d.SourceID
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if missing, ok := transactMissing(err, what); ok {
		err = fmt.Errorf("%w: %s", vaxpass.ErrNotFound, missing)
	} else if desc, ok := transactConflict(err, what); ok {
		err = fmt.Errorf("%w: %s", vaxpass.ErrConflict, desc)
	}
	if err != nil {
		return fmt.Errorf("awsddb: mark signed: %w", err)
	}
	return nil
}

// transactMissing reports the first item of a cancelled transaction whose condition
// failed on no item at all (the item's old image, asked for with
// ReturnValuesOnConditionCheckFailure ALL_OLD, is empty): a dose that does not exist.
func transactMissing(err error, what []string) (string, bool) {
	var e *types.TransactionCanceledException
	if !errors.As(err, &e) {
		return "", false
	}
	for i, r := range e.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" && len(r.Item) == 0 {
			if i < len(what) {
				return what[i] + ": no such dose", true
			}
			return "item " + strconv.Itoa(i) + ": no such dose", true
		}
	}
	return "", false
}

// GetDose implements api.DoseReader (vaxpass.ErrNotFound when there is no such dose); the
// read is strongly consistent.
func (s *Store) GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error) {
	if err := checkKey(key); err != nil {
		return vaxpass.Dose{}, fmt.Errorf("awsddb: get dose: %w", err)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Doses), Key: doseKey(key), ConsistentRead: aws.Bool(true),
	})
	if err == nil && len(out.Item) == 0 {
		err = vaxpass.ErrNotFound
	}
	var d vaxpass.Dose
	if err == nil {
		d, err = doseFrom(out.Item)
	}
	if err != nil {
		return vaxpass.Dose{}, fmt.Errorf("awsddb: get dose %s/%s: %w", key.FacilityID, key.SourceID, err)
	}
	return d, nil
}

// ListByStatus implements api.DoseReader: the facility's doses whose stored match status
// is status, in source_id (byte) order, after the source_id after ("" to start), at most
// limit (index by_status).
func (s *Store) ListByStatus(ctx context.Context, facilityID string, status match.Status, after string, limit int) ([]vaxpass.Dose, error) {
	if err := errors.Join(checkPart("facility_id", facilityID, true), checkPart("status", string(status), true), checkLimit(limit)); err != nil {
		return nil, fmt.Errorf("awsddb: list doses by status: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Doses),
		IndexName:                 aws.String(IndexByStatus),
		KeyConditionExpression:    aws.String("#fs = :fs"),
		ExpressionAttributeNames:  map[string]string{"#fs": doseitem.AttrFacilityStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":fs": sAttr(doseitem.FacilityStatus(facilityID, status))},
		Limit:                     pageSize(limit),
	}
	if after != "" {
		in.KeyConditionExpression = aws.String("#fs = :fs AND #sid > :after")
		in.ExpressionAttributeNames["#sid"] = doseitem.AttrSourceID
		in.ExpressionAttributeValues[":after"] = sAttr(after)
	}
	var out []vaxpass.Dose
	err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
		d, err := doseFrom(item)
		if err != nil {
			return false, err
		}
		out = append(out, d)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: list doses by status: %w", err)
	}
	return out, nil
}

// SignPendingPersons implements signing.FacilityStore: the distinct people with at least
// one SignPending dose at the facility, in person_id (byte) order, after the person_id
// after ("" to start), at most limit (sparse index sign_pending).
func (s *Store) SignPendingPersons(ctx context.Context, facilityID, after string, limit int) ([]string, error) {
	if err := errors.Join(checkPart("facility_id", facilityID, true), checkLimit(limit)); err != nil {
		return nil, fmt.Errorf("awsddb: list people to sign: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Doses),
		IndexName:                 aws.String(IndexSignPending),
		KeyConditionExpression:    aws.String("#sp = :f"),
		ExpressionAttributeNames:  map[string]string{"#sp": doseitem.AttrSignPending},
		ExpressionAttributeValues: map[string]types.AttributeValue{":f": sAttr(facilityID)},
		// A person has a few doses: a page a little larger than limit usually ends it.
		Limit: pageSize(2*limit + 8),
	}
	if after != "" {
		in.KeyConditionExpression = aws.String("#sp = :f AND #p > :after")
		in.ExpressionAttributeNames["#p"] = doseitem.AttrPerson
		in.ExpressionAttributeValues[":after"] = sAttr(after)
	}
	var out []string
	err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
		p := str(item, doseitem.AttrPerson)
		if p == "" {
			return false, fmt.Errorf("%w: sign-pending index item without a person", ErrCorrupt)
		}
		if len(out) > 0 && out[len(out)-1] == p {
			return true, nil // the index is sorted by person: their doses are adjacent
		}
		if len(out) == limit {
			return false, nil
		}
		out = append(out, p)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: list people to sign: %w", err)
	}
	return out, nil
}

// PersonDoses implements signing.FacilityStore: every dose whose PersonID is personID, of
// every facility, in facility then source_id order (index by_person).
func (s *Store) PersonDoses(ctx context.Context, personID string) ([]vaxpass.Dose, error) {
	if err := checkPart("person_id", personID, true); err != nil {
		return nil, fmt.Errorf("awsddb: doses of a person: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Doses),
		IndexName:                 aws.String(IndexByPerson),
		KeyConditionExpression:    aws.String("#p = :p"),
		ExpressionAttributeNames:  map[string]string{"#p": doseitem.AttrPerson},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": sAttr(personID)},
	}
	var out []vaxpass.Dose
	err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
		d, err := doseFrom(item)
		if err != nil {
			return false, err
		}
		out = append(out, d)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: doses of a person: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FacilityID != out[j].FacilityID {
			return out[i].FacilityID < out[j].FacilityID
		}
		return out[i].SourceID < out[j].SourceID
	})
	return out, nil
}
