package awsddb

// Doses listed by commune (a commune clerk's worklists): the sparse index by_commune,
// partition commune_status = commune_code + "#" + status, sort fac_src = facility_id + "#"
// + source_id (doseitem.CommuneStatus, doseitem.FacilitySource). Every write of a dose
// item (doseItem: ingest, matcher, corrections, signing marks) carries both attributes
// when the record has a commune code, so the index follows the dose's status as by_status
// does. A partition is one commune's doses of one status: a commune has up to ~30,000
// people, a few doses each, far below what a partition holds and serves (a clerk's
// worklist reads are paged and rare next to its 3,000 RCU/s).

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// ListByCommune lists the doses whose record's commune_code is commune and whose stored
// match status is status, of every facility, in (facility_id, source_id) (byte) order,
// strictly after the dose key after (the zero DoseKey to start), at most limit (index
// by_commune; eventually consistent, as every GSI read).
func (s *Store) ListByCommune(ctx context.Context, commune string, status match.Status, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, error) {
	if err := errors.Join(checkPart("commune", commune, true), checkPart("status", string(status), true),
		checkPart("after.facility_id", after.FacilityID, false), checkPart("after.source_id", after.SourceID, false),
		checkLimit(limit)); err != nil {
		return nil, fmt.Errorf("awsddb: list doses by commune: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Doses),
		IndexName:                 aws.String(IndexByCommune),
		KeyConditionExpression:    aws.String("#cs = :cs"),
		ExpressionAttributeNames:  map[string]string{"#cs": doseitem.AttrCommuneStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":cs": sAttr(doseitem.CommuneStatus(commune, status))},
		Limit:                     pageSize(limit),
	}
	if after != (vaxpass.DoseKey{}) {
		in.KeyConditionExpression = aws.String("#cs = :cs AND #fs > :after")
		in.ExpressionAttributeNames["#fs"] = doseitem.AttrFacilitySource
		in.ExpressionAttributeValues[":after"] = sAttr(doseitem.FacilitySource(after.FacilityID, after.SourceID))
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
		return nil, fmt.Errorf("awsddb: list doses by commune: %w", err)
	}
	return out, nil
}

// checkCommune rejects a commune code that cannot be part of a key, and a dose whose
// by_commune sort value would pass DynamoDB's 1,024-byte sort key limit.
func checkCommune(d *vaxpass.Dose) error {
	if err := checkPart("commune_code", d.CommuneCode, false); err != nil {
		return err
	}
	if n := len(doseitem.FacilitySource(d.FacilityID, d.SourceID)); d.CommuneCode != "" && n > maxKeyPart {
		return fmt.Errorf("%w: facility_id and source_id of a dose with a commune code are %d bytes, more than %d", vaxpass.ErrInvalid, n, maxKeyPart)
	}
	return nil
}

// BackfillCommuneIndex adds the by_commune attributes to the dose items written before
// the index existed (a table deployed earlier: adding a GSI indexes only the attributes
// items already carry), and returns how many items it updated. It scans the table for
// items without commune_status and updates those whose record has a commune code, each
// conditional on its version (a dose written meanwhile carries the attributes already), so
// it can run while the stack serves, and running it again resumes the work. Each update
// is a MODIFY stream record; the matcher's filter passes only doses that wait for it
// anyway.
func (s *Store) BackfillCommuneIndex(ctx context.Context) (int, error) {
	var pending []vaxpass.Dose
	updated := 0
	flush := func() error {
		done := make([]bool, len(pending))
		err := forEach(ctx, len(pending), s.concurrency, func(ctx context.Context, i int) error {
			// The whole item again, in today's layout, at the same version: the same
			// dose, now with the index attributes (PutItem: the store's API has no
			// UpdateItem).
			item, err := doseItem(&pending[i])
			if err != nil {
				return err
			}
			_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
				TableName:                 aws.String(s.tables.Doses),
				Item:                      item,
				ConditionExpression:       aws.String("#v = :v AND attribute_not_exists(#cs)"),
				ExpressionAttributeNames:  map[string]string{"#v": doseitem.AttrVersion, "#cs": doseitem.AttrCommuneStatus},
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(pending[i].Version)},
			})
			var failed *types.ConditionalCheckFailedException
			if errors.As(err, &failed) {
				return nil // rewritten meanwhile, with the attributes
			}
			done[i] = err == nil
			return err
		})
		for _, ok := range done {
			if ok {
				updated++
			}
		}
		pending = pending[:0]
		return err
	}
	err := s.scanAll(ctx, &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.Doses),
		FilterExpression:         aws.String("attribute_not_exists(#cs)"),
		ProjectionExpression:     aws.String("#doc, #v"),
		ExpressionAttributeNames: map[string]string{"#cs": doseitem.AttrCommuneStatus, "#doc": doseitem.AttrDoc, "#v": doseitem.AttrVersion},
	}, func(item map[string]types.AttributeValue) error {
		d, err := doseFrom(item)
		if err != nil {
			return err
		}
		if d.CommuneCode == "" {
			return nil
		}
		if err := checkCommune(&d); err != nil {
			return nil // not indexable: refused at its next write until corrected
		}
		// The item's version attribute is the condition: the doc's copy is the same.
		if d.Version, err = num(item, doseitem.AttrVersion); err != nil {
			return err
		}
		pending = append(pending, d)
		if len(pending) == maxTransactItems {
			return flush()
		}
		return nil
	})
	if err == nil && len(pending) > 0 {
		err = flush()
	}
	if err != nil {
		return updated, fmt.Errorf("awsddb: backfill the by_commune index: %w", err)
	}
	return updated, nil
}
