package awsddb

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RevokedSuperseded is the RevokedReason of a certificate that a new one replaced (the
// embedded store's value: the same contract).
const RevokedSuperseded = "superseded"

// Item keys of the Certificates table (see the package doc).
const (
	pkCert        = "CERT#"
	pkPerson      = "PERSON#"
	skCert        = "CERT"
	skActive      = "ACTIVE"
	skSig         = "SIG#"
	pkShardList   = "SHARDS#LIST"
	pkShardExpiry = "SHARDS#EXPIRY"
	// listShardLen is the length of a list shard: len("URN:UVCI:01:VN:") + 1.
	listShardLen = 16
)

func certKey(uvci string) string { return strings.ToUpper(uvci) }

// expiryShards is how many by_expiry partitions a month of expiries is spread over, by a
// hash of the UVCI: a renewal slice's page then reads one of them (a Query reads a whole
// partition on the emulator, which ignores Limit until after filtering), and a month's
// new certificates write to 16 partitions, not one hot one (~1,000 WCU/s each on AWS).
const expiryShards = 16

// expiryPartition is a certificate's by_expiry partition (exp_month): its expiry month,
// "#" and its shard, one hex digit. Items written before the sharding have the month
// alone: they are read as one more partition of their month (ExpiryShards), and move to
// their shard when next written (a renewal rewrites the item).
func expiryPartition(month, key string) string {
	return month + "#" + strconv.FormatUint(uint64(hash32(key)%expiryShards), 16)
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: sAttr(pk), attrSK: sAttr(sk)}
}

// listShard is the by_uvci partition of a certificate: a prefix of its key, so that
// shard order then key order is key order.
func listShard(key string) string {
	if len(key) > listShardLen {
		return key[:listShardLen]
	}
	return key
}

// certItem renders a certificate item, and the shards it needs registered.
func certItem(c *vaxpass.Certificate) (map[string]types.AttributeValue, []shard, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return nil, nil, fmt.Errorf("encode certificate: %w", err)
	}
	exp, err := timeKey(c.ExpiresAt)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate expiry: %w", err)
	}
	key := certKey(c.UVCI)
	item := map[string]types.AttributeValue{
		attrPK: sAttr(pkCert + key), attrSK: sAttr(skCert),
		attrUVCI: sAttr(key), attrListShard: sAttr(listShard(key)),
		attrStatus: sAttr(c.Status), attrVersion: nAttr(c.Version), attrPerson: sAttr(c.PersonID),
		attrExpiresAt: sAttr(exp), attrDoc: sAttr(string(doc)),
	}
	shards := []shard{{pkShardList, listShard(key)}}
	if c.Status == vaxpass.CertIssued {
		part := expiryPartition(exp[:len("2006-01")], key)
		item[attrExpMonth] = sAttr(part)
		item[attrExpKey] = sAttr(exp + "#" + key)
		shards = append(shards, shard{pkShardExpiry, part})
	}
	return item, shards, nil
}

// activeItem renders a person's active pointer: a copy of their issued certificate.
func activeItem(c *vaxpass.Certificate) (map[string]types.AttributeValue, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode certificate: %w", err)
	}
	return map[string]types.AttributeValue{
		attrPK: sAttr(pkPerson + c.PersonID), attrSK: sAttr(skActive),
		attrUVCI: sAttr(certKey(c.UVCI)), attrVersion: nAttr(c.Version), attrDoc: sAttr(string(doc)),
	}, nil
}

func certFrom(item map[string]types.AttributeValue) (vaxpass.Certificate, error) {
	var c vaxpass.Certificate
	doc, ok := item[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return c, fmt.Errorf("%w: certificate item without %q", ErrCorrupt, attrDoc)
	}
	if err := json.Unmarshal([]byte(doc.Value), &c); err != nil {
		return c, fmt.Errorf("%w: certificate: %w", ErrCorrupt, err)
	}
	return c, nil
}

// shard is a shard registry entry (see the package doc).
type shard struct{ pk, sk string }

// registerShards writes the registry entries of shards not known to exist yet. An entry
// is written before the first item in its shard, and never deleted: an empty shard costs
// one empty query when listing.
func (s *Store) registerShards(ctx context.Context, shards []shard) error {
	for _, sh := range shards {
		if _, ok := s.shards.Load(sh); ok {
			continue
		}
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                aws.String(s.tables.Certificates),
			Item:                     itemKey(sh.pk, sh.sk),
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("register shard %s %s: %w", sh.pk, sh.sk, err)
		}
		s.shards.Store(sh, true)
	}
	return nil
}

// shardsFrom lists the registered shards of kind pk from the shard first (inclusive) to
// last (inclusive; "" for no end), in order.
func (s *Store) shardsFrom(ctx context.Context, pk, first, last string) ([]string, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Certificates),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sAttr(pk)},
		ConsistentRead:            aws.Bool(true),
	}
	if first != "" && last != "" && first > last {
		return nil, nil
	}
	// Key condition values cannot be empty strings: "" means no bound.
	switch {
	case first != "" && last != "":
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :first AND :last")
	case first != "":
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk >= :first")
	case last != "":
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk <= :last")
	}
	if first != "" {
		in.ExpressionAttributeValues[":first"] = sAttr(first)
	}
	if last != "" {
		in.ExpressionAttributeValues[":last"] = sAttr(last)
	}
	if first != "" || last != "" {
		in.ExpressionAttributeNames["#sk"] = attrSK
	}
	var out []string
	err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
		out = append(out, str(item, attrSK))
		return true, nil
	})
	return out, err
}

// PutFacilitySignature implements signing.CentralStore: it keeps, per person and
// facility, the signature with the newest SignedAt (an older one replaces nothing newer;
// re-storing the same one is a no-op), by a write conditional on signed_at.
func (s *Store) PutFacilitySignature(ctx context.Context, sig vaxpass.FacilitySignature) error {
	err := errors.Join(checkPart("person_id", sig.PersonID, true), checkPart("facility_id", sig.FacilityID, true))
	var at string
	if err == nil {
		at, err = timeKey(sig.SignedAt)
	}
	var doc []byte
	if err == nil {
		doc, err = json.Marshal(sig)
	}
	if err != nil {
		return fmt.Errorf("awsddb: put facility signature: %w", err)
	}
	item := itemKey(pkPerson+sig.PersonID, skSig+sig.FacilityID)
	item[attrSignedAt] = sAttr(at)
	item[attrDoc] = sAttr(string(doc))
	put := &types.Put{
		TableName:                 aws.String(s.tables.Certificates),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #at <= :at"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#at": attrSignedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": sAttr(at)},
	}
	counted, err := s.putFirstSignature(ctx, sig, put)
	if err == nil && !counted {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
			ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
		})
	}
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("awsddb: put facility signature of facility %s: %w", sig.FacilityID, err)
	}
	return nil
}

// putFirstSignature stores a facility's first signature for a person in one transaction
// with the dashboard's counters: the facility's row gains the person's certificates and
// the person's metrics item lists the facility. counted is false (and nothing written)
// when the metrics item lists the facility already: the signature replaces an older one.
func (s *Store) putFirstSignature(ctx context.Context, sig vaxpass.FacilitySignature, put *types.Put) (counted bool, err error) {
	withSig := true
	for {
		refused, err := s.transact(ctx, func(attempt int) ([]txItem, error) {
			counted = false
			p, err := s.readPersonStats(ctx, sig.PersonID)
			if err != nil || p.has(sig.FacilityID) {
				return nil, err
			}
			var items []txItem
			if withSig {
				items = append(items, txItem{what: "a newer signature is stored", item: types.TransactWriteItem{Put: put}})
			}
			update, _ := s.personStatsUpdate(p, nil, sig.FacilityID)
			delta := stats.Delta{}
			delta.AddFacility(sig.FacilityID, p.metrics)
			counted = true
			return append(append(items, update), s.counterItems(delta, sig.PersonID+"/"+sig.FacilityID, attempt)...), nil
		})
		if refused == nil || !withSig {
			return counted, err
		}
		// A newer signature of the facility is stored, from before the counters listed
		// it: it stays, and the facility is counted.
		withSig = false
	}
}

// FacilitySignatures implements signing.CentralStore: the person's stored signatures,
// one per facility, in facility order (none: an empty slice).
func (s *Store) FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error) {
	if err := checkPart("person_id", personID, true); err != nil {
		return nil, fmt.Errorf("awsddb: facility signatures: %w", err)
	}
	out := []vaxpass.FacilitySignature{}
	// "SIG#..." sorts right before "STATS": the same read brings the person's metrics item,
	// kept as a hint for the certificate write that follows (stats_hint.go).
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:                aws.String(s.tables.Certificates),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :sig AND :stats"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": sAttr(pkPerson + personID), ":sig": sAttr(skSig), ":stats": sAttr(skStats)},
		ConsistentRead: aws.Bool(true),
	}, func(item map[string]types.AttributeValue) (bool, error) {
		switch sk := str(item, attrSK); {
		case sk == skStats:
			p, err := personStatsFrom(personID, item)
			if err != nil {
				return false, err
			}
			s.hints.put(p)
			return true, nil
		case !strings.HasPrefix(sk, skSig):
			return true, nil
		}
		var sig vaxpass.FacilitySignature
		if err := json.Unmarshal([]byte(str(item, attrDoc)), &sig); err != nil {
			return false, fmt.Errorf("%w: facility signature: %w", ErrCorrupt, err)
		}
		out = append(out, sig)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: facility signatures: %w", err)
	}
	return out, nil
}

// ActiveCertificate implements signing.CentralStore, lookup.CertReader and
// api.CertReader: the person's certificate in status issued (one consistent GetItem of
// the active pointer), or vaxpass.ErrNotFound.
func (s *Store) ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error) {
	if err := checkPart("person_id", personID, true); err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("awsddb: active certificate: %w", err)
	}
	c, err := s.getCert(ctx, pkPerson+personID, skActive)
	if err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("awsddb: active certificate: %w", err)
	}
	return c, nil
}

// CertificateByUVCI implements lookup.CertReader: the certificate (in any status) whose
// UVCI is uvci, compared case-insensitively, or vaxpass.ErrNotFound.
func (s *Store) CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error) {
	if err := checkPart("uvci", uvci, true); err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("awsddb: certificate by UVCI: %w", err)
	}
	c, err := s.getCert(ctx, pkCert+certKey(uvci), skCert)
	if err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("awsddb: certificate by UVCI: %w", err)
	}
	return c, nil
}

func (s *Store) getCert(ctx context.Context, pk, sk string) (vaxpass.Certificate, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Certificates), Key: itemKey(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return vaxpass.Certificate{}, err
	}
	if len(out.Item) == 0 {
		return vaxpass.Certificate{}, vaxpass.ErrNotFound
	}
	return certFrom(out.Item)
}

// ReplaceCertificate implements signing.CentralStore in one transaction. next must be in
// status issued. With prev nil the person must have no active certificate; with prev set,
// prev must still be the person's active certificate at prev.Version. Otherwise, and when
// next's UVCI is already taken, the answer is vaxpass.ErrConflict and nothing is written.
//
// A next with a UVCI other than prev's supersedes it: prev is stored with status revoked,
// RevokedReason RevokedSuperseded, RevokedAt next.IssuedAt and Version+1, and next
// (Version as given, at least 1) becomes active. A next with prev's UVCI is a renewal of
// the same certificate (same UVCI, new iat/exp): it is stored in prev's place with
// prev.Version+1 and stays active.
func (s *Store) ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error {
	err := errors.Join(checkPart("next.uvci", next.UVCI, true), checkPart("next.person_id", next.PersonID, true))
	if err == nil && next.Status != vaxpass.CertIssued {
		err = fmt.Errorf("%w: next.status is %q, want %q", vaxpass.ErrInvalid, next.Status, vaxpass.CertIssued)
	}
	if err == nil && prev != nil && prev.PersonID != next.PersonID {
		err = fmt.Errorf("%w: prev and next belong to different people", vaxpass.ErrInvalid)
	}
	if err == nil {
		err = s.replace(ctx, next, prev)
	}
	if err != nil {
		return fmt.Errorf("awsddb: replace certificate: %w", err)
	}
	return nil
}

func (s *Store) replace(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error {
	if next.Version < 1 {
		next.Version = 1
	}
	refused, err := s.transact(ctx, func(attempt int) ([]txItem, error) {
		items, shards, changes, err := s.replaceItems(ctx, next, prev)
		if err != nil {
			return nil, err
		}
		if err := s.registerShards(ctx, shards); err != nil {
			return nil, err
		}
		// The dashboard's counters of the person's certificates (stats.go). A change that
		// moves no row counter (a renewal whose expiry stays on the same day) needs
		// neither the person's metrics nor their facilities: at most the country's
		// issuance moves, and a renewal saves a read.
		p := personStats{person: next.PersonID, metrics: stats.PersonMetrics{}}
		hint, hinted := s.hints.take(next.PersonID)
		if !movesRows(changes) {
			return append(items, s.certStatsItems(p, certKey(next.UVCI), attempt, changes...)...), nil
		}
		// The metrics item read with the person's signatures just before (stats_hint.go),
		// on a first attempt and where the transaction conditions on it; else read now.
		if hinted && attempt == 0 {
			if counted := s.certStatsItems(hint, certKey(next.UVCI), attempt, changes...); conditionsOnPerson(counted, next.PersonID) {
				return append(items, counted...), nil
			}
		}
		if p, err = s.readPersonStats(ctx, next.PersonID); err != nil {
			return nil, err
		}
		return append(items, s.certStatsItems(p, certKey(next.UVCI), attempt, changes...)...), nil
	})
	if refused != nil {
		return fmt.Errorf("%w: %s", vaxpass.ErrConflict, refused.describe())
	}
	return err
}

// movesRows reports whether changes move a row counter (and so the person's metrics).
func movesRows(changes []stats.CertChange) bool {
	for _, c := range changes {
		if len(c.Rows) > 0 {
			return true
		}
	}
	return false
}

// replaceItems are the items of a replacement, the shards they need registered and the
// certificate changes they make.
func (s *Store) replaceItems(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) ([]txItem, []shard, []stats.CertChange, error) {
	var (
		items   []txItem
		shards  []shard
		changes []stats.CertChange
	)
	add := func(desc string, put *types.Put, sh []shard) {
		put.TableName = aws.String(s.tables.Certificates)
		items = append(items, txItem{what: desc, item: types.TransactWriteItem{Put: put}})
		shards = append(shards, sh...)
	}
	names := map[string]string{"#pk": attrPK}
	versionNames := map[string]string{"#v": attrVersion}
	activeNames := map[string]string{"#u": attrUVCI, "#v": attrVersion}
	nextKey := certKey(next.UVCI)

	switch {
	case prev == nil: // a first certificate
		ptr, err := activeItem(&next)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, sh, err := certItem(&next)
		if err != nil {
			return nil, nil, nil, err
		}
		add("the person already has an active certificate", &types.Put{Item: ptr,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: names}, nil)
		add("the UVCI is already taken", &types.Put{Item: cert,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: names}, sh)
		changes = append(changes, stats.CertificateChange(nil, &next))

	case certKey(prev.UVCI) == nextKey: // renewal in place
		renewed := next
		renewed.Version = prev.Version + 1
		ptr, err := activeItem(&renewed)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, sh, err := certItem(&renewed)
		if err != nil {
			return nil, nil, nil, err
		}
		add("the certificate to renew is no longer the active one at its version", &types.Put{Item: ptr,
			ConditionExpression: aws.String("#u = :u AND #v = :v"), ExpressionAttributeNames: activeNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":u": sAttr(nextKey), ":v": nAttr(prev.Version)}}, nil)
		// The counters move from prev, without reading the stored certificate: the
		// condition holds the stored one to prev's version, status and expiry, what its
		// row counter depends on (renewal passes the copy it listed).
		prevExp, err := timeKey(prev.ExpiresAt)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: prev expiry: %w", vaxpass.ErrInvalid, err)
		}
		add("the certificate to renew changed", &types.Put{Item: cert,
			ConditionExpression:      aws.String("#v = :v AND #s = :issued AND #e = :e"),
			ExpressionAttributeNames: map[string]string{"#v": attrVersion, "#s": attrStatus, "#e": attrExpiresAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(prev.Version),
				":issued": sAttr(vaxpass.CertIssued), ":e": sAttr(prevExp)}}, sh)
		changes = append(changes, stats.CertificateChange(prev, &renewed))

	default: // supersede: revoke the stored prev, next becomes active
		prevKey := certKey(prev.UVCI)
		stored, err := s.getCert(ctx, pkPerson+next.PersonID, skActive)
		switch {
		case errors.Is(err, vaxpass.ErrNotFound):
			return nil, nil, nil, fmt.Errorf("%w: the person has no active certificate to replace", vaxpass.ErrConflict)
		case err != nil:
			return nil, nil, nil, err
		case certKey(stored.UVCI) != prevKey:
			return nil, nil, nil, fmt.Errorf("%w: the certificate to replace is no longer the active one", vaxpass.ErrConflict)
		case stored.Version != prev.Version:
			return nil, nil, nil, fmt.Errorf("%w: the certificate to replace is at version %d, not %d", vaxpass.ErrConflict, stored.Version, prev.Version)
		}
		revoked := stored
		revoked.Status = vaxpass.CertRevoked
		revoked.RevokedReason = RevokedSuperseded
		revoked.RevokedAt = next.IssuedAt
		revoked.Version = stored.Version + 1
		ptr, err := activeItem(&next)
		if err != nil {
			return nil, nil, nil, err
		}
		old, sh1, err := certItem(&revoked)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, sh2, err := certItem(&next)
		if err != nil {
			return nil, nil, nil, err
		}
		add("the certificate to replace is no longer the active one", &types.Put{Item: ptr,
			ConditionExpression: aws.String("#u = :u AND #v = :v"), ExpressionAttributeNames: activeNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":u": sAttr(prevKey), ":v": nAttr(prev.Version)}}, nil)
		add("the certificate to replace changed", &types.Put{Item: old,
			ConditionExpression: aws.String("#v = :v"), ExpressionAttributeNames: versionNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(prev.Version)}}, sh1)
		add("the UVCI is already taken", &types.Put{Item: cert,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: names}, sh2)
		changes = append(changes, stats.CertificateChange(&stored, &revoked), stats.CertificateChange(nil, &next))
	}
	return items, shards, changes, nil
}

// RevokeCertificate revokes c (ops): conditional on c being stored in status issued at
// c.Version (vaxpass.ErrNotFound, vaxpass.ErrConflict otherwise), it is stored revoked
// with reason and at, Version+1, and the person has no active certificate any more (in
// one transaction).
func (s *Store) RevokeCertificate(ctx context.Context, c vaxpass.Certificate, reason string, at time.Time) error {
	if err := checkPart("uvci", c.UVCI, true); err != nil {
		return fmt.Errorf("awsddb: revoke certificate: %w", err)
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("awsddb: revoke certificate: %w: empty reason", vaxpass.ErrInvalid)
	}
	if err := s.revoke(ctx, c, reason, at); err != nil {
		return fmt.Errorf("awsddb: revoke certificate: %w", err)
	}
	return nil
}

func (s *Store) revoke(ctx context.Context, c vaxpass.Certificate, reason string, at time.Time) error {
	key := certKey(c.UVCI)
	refused, err := s.transact(ctx, func(attempt int) ([]txItem, error) {
		stored, err := s.getCert(ctx, pkCert+key, skCert)
		switch {
		case err != nil:
			return nil, err
		case stored.Version != c.Version:
			return nil, fmt.Errorf("%w: stored version %d, read version %d", vaxpass.ErrConflict, stored.Version, c.Version)
		case stored.Status != vaxpass.CertIssued:
			return nil, fmt.Errorf("%w: certificate is %s", vaxpass.ErrConflict, stored.Status)
		}
		revoked := stored
		revoked.Status = vaxpass.CertRevoked
		revoked.RevokedReason = reason
		revoked.RevokedAt = at
		revoked.Version = stored.Version + 1
		item, _, err := certItem(&revoked)
		if err != nil {
			return nil, err
		}
		items := []txItem{{what: "the certificate changed", item: types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.tables.Certificates), Item: item,
			ConditionExpression:       aws.String("#v = :v AND #s = :issued"),
			ExpressionAttributeNames:  map[string]string{"#v": attrVersion, "#s": attrStatus},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(stored.Version), ":issued": sAttr(vaxpass.CertIssued)},
		}}}}
		// The pointer goes only if it still points here (an issued certificate is always the
		// active one; checking keeps a damaged pointer from blocking ops forever).
		ptr, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.tables.Certificates), Key: itemKey(pkPerson+stored.PersonID, skActive),
			ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("#u"),
			ExpressionAttributeNames: map[string]string{"#u": attrUVCI},
		})
		if err != nil {
			return nil, err
		}
		if str(ptr.Item, attrUVCI) == key {
			items = append(items, txItem{what: "the active certificate changed", item: types.TransactWriteItem{Delete: &types.Delete{
				TableName: aws.String(s.tables.Certificates), Key: itemKey(pkPerson+stored.PersonID, skActive),
				ConditionExpression:       aws.String("#u = :u"),
				ExpressionAttributeNames:  map[string]string{"#u": attrUVCI},
				ExpressionAttributeValues: map[string]types.AttributeValue{":u": sAttr(key)},
			}}})
		}
		// The dashboard's counters of the person's certificates (stats.go).
		p, err := s.readPersonStats(ctx, stored.PersonID)
		if err != nil {
			return nil, err
		}
		return append(items, s.certStatsItems(p, key, attempt, stats.CertificateChange(&stored, &revoked))...), nil
	})
	if refused != nil {
		return fmt.Errorf("%w: %s", vaxpass.ErrConflict, refused.describe())
	}
	return err
}

// CertificatesExpiringBefore lists the certificates in status issued whose ExpiresAt is
// before t, by ExpiresAt then UVCI, at most limit, from cursor ("" to start; otherwise
// the next of a previous call). next is "" when there are no more. It reads the index
// by_expiry month by month.
func (s *Store) CertificatesExpiringBefore(ctx context.Context, t time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	return s.CertificatesExpiringBetween(ctx, time.Time{}, t, cursor, limit)
}

// CertificatesExpiringBetween is CertificatesExpiringBefore(to) from from on: the
// certificates in status issued with from <= ExpiresAt < to (from zero: no lower bound),
// read from the months of by_expiry the range covers, each month's partitions merged
// (renewal's slices read one partition each: CertificatesExpiringInShard).
func (s *Store) CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	return s.expiring(ctx, func(string) bool { return true }, from, to, cursor, limit)
}

// ExpiryShards is how many partitions by_expiry has per month, for
// CertificatesExpiringInShard: expiryShards by a hash of the UVCI, and one more, the
// legacy partition (the month alone) of items written before the index was sharded.
func (s *Store) ExpiryShards() int { return expiryShards + 1 }

// CertificatesExpiringInShard is CertificatesExpiringBetween over one partition of each
// month (0 <= shard < ExpiryShards): a renewal slice's page reads 1/16 of a month.
func (s *Store) CertificatesExpiringInShard(ctx context.Context, shard int, from, to time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	if shard < 0 || shard >= s.ExpiryShards() {
		return nil, "", fmt.Errorf("awsddb: certificates expiring: %w: shard %d of %d", vaxpass.ErrInvalid, shard, s.ExpiryShards())
	}
	keep := func(part string) bool { return !strings.Contains(part, "#") } // legacy
	if shard < expiryShards {
		suffix := "#" + strconv.FormatUint(uint64(shard), 16)
		keep = func(part string) bool { return strings.HasSuffix(part, suffix) }
	}
	return s.expiring(ctx, keep, from, to, cursor, limit)
}

// expiring lists the issued certificates with from <= ExpiresAt < to in the by_expiry
// partitions keep selects (by their value, as registered), by exp_key from cursor.
func (s *Store) expiring(ctx context.Context, keep func(part string) bool, from, to time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	if err := checkLimit(limit); err != nil {
		return nil, "", fmt.Errorf("awsddb: certificates expiring: %w", err)
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !validExpKey(string(b)) {
			return nil, "", fmt.Errorf("awsddb: certificates expiring: %w: malformed cursor", vaxpass.ErrInvalid)
		}
		after = string(b)
	}
	// lower is the first key the range may hold: the cursor's (skipped below) or from's
	// time key, which sorts before every key of that time ("#UVCI" follows it).
	lower := after
	if !from.IsZero() {
		if fk := clampTimeKey(from); fk > lower {
			lower = fk
		}
	}
	end := clampTimeKey(to)
	firstMonth := ""
	if lower != "" {
		firstMonth = lower[:min(len(lower), len("2006-01"))]
	}
	if end <= lower {
		return nil, "", nil
	}
	months, err := s.expiryPartitions(ctx, firstMonth, end, keep)
	if err != nil {
		return nil, "", fmt.Errorf("awsddb: certificates expiring: %w", err)
	}
	type keyed struct {
		key  string
		item map[string]types.AttributeValue
	}
	var lastKey string
	for _, m := range months {
		// Each partition's first keys, merged: the month's keys in order.
		need := limit + 1 - len(certs)
		var found []keyed
		for _, part := range m.parts {
			in := &dynamodb.QueryInput{
				TableName:                aws.String(s.tables.Certificates),
				IndexName:                aws.String(IndexByExpiry),
				KeyConditionExpression:   aws.String("#m = :m AND #k < :end"),
				ExpressionAttributeNames: map[string]string{"#m": attrExpMonth, "#k": attrExpKey},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":m": sAttr(part), ":end": sAttr(end),
				},
				Limit: pageSize(need),
			}
			if lower != "" && m.month == firstMonth {
				// Keys never equal end (they carry "#UVCI"); BETWEEN is inclusive, so the
				// cursor's own item is skipped below.
				in.KeyConditionExpression = aws.String("#m = :m AND #k BETWEEN :lower AND :end")
				in.ExpressionAttributeValues[":lower"] = sAttr(lower)
			}
			n := 0
			err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
				k := str(item, attrExpKey)
				if after != "" && k == after {
					return true, nil
				}
				found = append(found, keyed{k, item})
				n++
				return n < need, nil
			})
			if err != nil {
				return nil, "", fmt.Errorf("awsddb: certificates expiring: %w", err)
			}
		}
		slices.SortFunc(found, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
		for _, f := range found {
			if len(certs) == limit {
				// One more exists: the page has a next.
				return certs, base64.RawURLEncoding.EncodeToString([]byte(lastKey)), nil
			}
			c, err := certFrom(f.item)
			if err != nil {
				return nil, "", fmt.Errorf("awsddb: certificates expiring: %w", err)
			}
			certs = append(certs, c)
			lastKey = f.key
		}
	}
	return certs, "", nil
}

// expiryMonth is a month of by_expiry and its registered partitions.
type expiryMonth struct {
	month string
	parts []string
}

// expiryPartitions lists the registered by_expiry partitions keep selects, of the months
// from first ("" for no bound) to end's, by month. A partition's value is its registry
// entry: the month alone (legacy) or month + "#" + shard.
func (s *Store) expiryPartitions(ctx context.Context, first, end string, keep func(part string) bool) ([]expiryMonth, error) {
	// "$" sorts after "#": every partition of end's month, and no later one.
	parts, err := s.shardsFrom(ctx, pkShardExpiry, first, end[:min(len(end), len("2006-01"))]+"$")
	if err != nil {
		return nil, err
	}
	var out []expiryMonth
	for _, p := range parts {
		if !keep(p) {
			continue
		}
		month := p[:min(len(p), len("2006-01"))]
		if len(out) == 0 || out[len(out)-1].month != month {
			out = append(out, expiryMonth{month: month})
		}
		out[len(out)-1].parts = append(out[len(out)-1].parts, p)
	}
	return out, nil
}

// LatestExpiryBefore is the latest ExpiresAt of a certificate in status issued that
// expires before t (false: none): by_expiry read backwards, month by month from t's,
// one item of each of the month's partitions.
func (s *Store) LatestExpiryBefore(ctx context.Context, t time.Time) (time.Time, bool, error) {
	end := clampTimeKey(t)
	months, err := s.expiryPartitions(ctx, "", end, func(string) bool { return true })
	if err != nil {
		return time.Time{}, false, fmt.Errorf("awsddb: latest expiry: %w", err)
	}
	for i := len(months) - 1; i >= 0; i-- {
		latest := ""
		for _, part := range months[i].parts {
			out, err := s.db.Query(ctx, &dynamodb.QueryInput{
				TableName:                aws.String(s.tables.Certificates),
				IndexName:                aws.String(IndexByExpiry),
				KeyConditionExpression:   aws.String("#m = :m AND #k < :end"),
				ExpressionAttributeNames: map[string]string{"#m": attrExpMonth, "#k": attrExpKey},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":m": sAttr(part), ":end": sAttr(end),
				},
				ScanIndexForward:     aws.Bool(false),
				Limit:                aws.Int32(1),
				ProjectionExpression: aws.String("#k"),
			})
			if err != nil {
				return time.Time{}, false, fmt.Errorf("awsddb: latest expiry: %w", err)
			}
			if len(out.Items) > 0 {
				latest = max(latest, str(out.Items[0], attrExpKey))
			}
		}
		if latest == "" {
			continue
		}
		if !validExpKey(latest) {
			return time.Time{}, false, fmt.Errorf("%w: exp_key %q", ErrCorrupt, latest)
		}
		at, err := time.Parse(timeKeyLayout, latest[:len(timeKeyLayout)])
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: exp_key %q", ErrCorrupt, latest)
		}
		return at, true, nil
	}
	return time.Time{}, false, nil
}

// validExpKey reports whether k has the form of an exp_key: a time key, "#", a UVCI.
func validExpKey(k string) bool {
	n := len(timeKeyLayout)
	if len(k) < n+2 || k[n] != '#' {
		return false
	}
	_, err := time.Parse(timeKeyLayout, k[:n])
	return err == nil
}

// ListCertificates lists every stored certificate (any status) by upper-case UVCI, at
// most limit, from cursor ("" to start; otherwise the next of a previous call). next is
// "" when there are no more. It reads the index by_uvci shard by shard.
func (s *Store) ListCertificates(ctx context.Context, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	if err := checkLimit(limit); err != nil {
		return nil, "", fmt.Errorf("awsddb: list certificates: %w", err)
	}
	after := cursor
	shards, err := s.shardsFrom(ctx, pkShardList, listShard(after), "")
	if err != nil {
		return nil, "", fmt.Errorf("awsddb: list certificates: %w", err)
	}
	for _, sh := range shards {
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Certificates),
			IndexName:                 aws.String(IndexByUVCI),
			KeyConditionExpression:    aws.String("#s = :s"),
			ExpressionAttributeNames:  map[string]string{"#s": attrListShard},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": sAttr(sh)},
			Limit:                     pageSize(limit + 1 - len(certs)),
		}
		if after != "" {
			in.KeyConditionExpression = aws.String("#s = :s AND #u > :after")
			in.ExpressionAttributeNames["#u"] = attrUVCI
			in.ExpressionAttributeValues[":after"] = sAttr(after)
		}
		full := false
		err := s.queryAll(ctx, in, func(item map[string]types.AttributeValue) (bool, error) {
			if len(certs) == limit {
				full = true
				return false, nil
			}
			c, err := certFrom(item)
			if err != nil {
				return false, err
			}
			certs = append(certs, c)
			return true, nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("awsddb: list certificates: %w", err)
		}
		if full {
			return certs, certKey(certs[len(certs)-1].UVCI), nil
		}
	}
	return certs, "", nil
}

// CertificateCounts counts the stored certificates by status as seen at now:
// vaxpass.CertIssued (issued and not expired), vaxpass.CertExpired (issued, expired at
// now) and vaxpass.CertRevoked. It scans the index by_uvci (status and expiry only).
func (s *Store) CertificateCounts(ctx context.Context, now time.Time) (map[string]int, error) {
	counts := map[string]int{vaxpass.CertIssued: 0, vaxpass.CertExpired: 0, vaxpass.CertRevoked: 0}
	nowKey := clampTimeKey(now)
	err := s.scanAll(ctx, &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.Certificates),
		IndexName:                aws.String(IndexByUVCI),
		ProjectionExpression:     aws.String("#s, #e"),
		ExpressionAttributeNames: map[string]string{"#s": attrStatus, "#e": attrExpiresAt},
	}, func(item map[string]types.AttributeValue) error {
		switch st := str(item, attrStatus); {
		case st == vaxpass.CertIssued && str(item, attrExpiresAt) <= nowKey:
			counts[vaxpass.CertExpired]++
		case st == vaxpass.CertIssued || st == vaxpass.CertRevoked:
			counts[st]++
		default:
			return fmt.Errorf("%w: certificate status %q", ErrCorrupt, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: certificate counts: %w", err)
	}
	return counts, nil
}
