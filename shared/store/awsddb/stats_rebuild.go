package awsddb

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
)

// RebuildReport says what RebuildStats counted and wrote.
type RebuildReport struct {
	Doses, Certificates int
	// People is how many person metrics items were written, Items how many counter and
	// day items.
	People, Items int
}

// RebuildStats recounts the dashboard's counters from the records, for tables written
// before the counters existed (or counters damaged by hand): it scans the Doses and the
// Certificates tables, deletes every counter and person metrics item, and writes them
// again from the count. It is an ops action for a maintenance window: writes made while it
// runs may be counted twice or not at all, so every writer (ingest, matcher, signing,
// renewal, ops) must be stopped first. The writes are transactions of up to 100 items,
// not one: a failure leaves partial counters, and running it again repairs them.
func (s *Store) RebuildStats(ctx context.Context) (RebuildReport, error) {
	var rep RebuildReport
	delta := stats.Delta{}
	err := s.scanAll(ctx, &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.Doses),
		ProjectionExpression:     aws.String("#doc"),
		ExpressionAttributeNames: map[string]string{"#doc": attrDoc},
	}, func(item map[string]types.AttributeValue) error {
		d, err := doseFrom(item)
		if err != nil {
			return err
		}
		delta.AddDose(nil, &d)
		rep.Doses++
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("awsddb: rebuild dashboard counters: scan doses: %w", err)
	}

	people := map[string]*personStats{}
	person := func(id string) *personStats {
		if people[id] == nil {
			people[id] = &personStats{person: id, metrics: stats.PersonMetrics{}}
		}
		return people[id]
	}
	var changes []stats.CertChange
	var owners []string
	var stale []map[string]types.AttributeValue
	err = s.scanAll(ctx, &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.Certificates),
		ProjectionExpression:     aws.String("#pk, #sk, #doc"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK, "#doc": attrDoc},
	}, func(item map[string]types.AttributeValue) error {
		pk, sk := str(item, attrPK), str(item, attrSK)
		switch {
		case strings.HasPrefix(pk, pkStats), strings.HasPrefix(pk, pkPerson) && sk == skStats:
			stale = append(stale, itemKey(pk, sk))
		case strings.HasPrefix(pk, pkPerson) && strings.HasPrefix(sk, skSig):
			p := person(pk[len(pkPerson):])
			p.facilities = append(p.facilities, sk[len(skSig):])
		case strings.HasPrefix(pk, pkCert) && sk == skCert:
			c, err := certFrom(item)
			if err != nil {
				return err
			}
			changes = append(changes, stats.CertificateChange(nil, &c))
			owners = append(owners, c.PersonID)
			rep.Certificates++
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("awsddb: rebuild dashboard counters: scan certificates: %w", err)
	}
	// Facilities are known only once the scan is over: count certificates after it.
	for i, c := range changes {
		p := person(owners[i])
		delta.AddCertificate(c, p.facilities)
		p.metrics.Apply(c)
	}

	var deletes []types.TransactWriteItem
	for _, key := range stale {
		deletes = append(deletes, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.tables.Certificates), Key: key}})
	}
	if err := s.writeChunks(ctx, deletes); err != nil {
		return rep, fmt.Errorf("awsddb: rebuild dashboard counters: delete the old ones: %w", err)
	}
	var writes []types.TransactWriteItem
	for _, it := range s.counterItems(delta, "rebuild", 0) {
		writes = append(writes, it.item)
	}
	rep.Items = len(writes)
	for _, id := range slices.Sorted(maps.Keys(people)) {
		if id == "" {
			continue
		}
		p := people[id]
		item := itemKey(pkPerson+id, skStats)
		item[attrStatsVersion] = nAttr(1)
		if len(p.facilities) > 0 {
			item[attrStatsFacilities] = &types.AttributeValueMemberSS{Value: p.facilities}
		}
		for m, n := range p.metrics {
			item[attrMetricsPrefix+stats.EncodeMetric(m)] = nAttr(n)
		}
		writes = append(writes, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.tables.Certificates), Item: item}})
		rep.People++
	}
	if err := s.writeChunks(ctx, writes); err != nil {
		return rep, fmt.Errorf("awsddb: rebuild dashboard counters: write: %w", err)
	}
	return rep, nil
}

// writeChunks writes items (distinct keys) in transactions of at most 100.
func (s *Store) writeChunks(ctx context.Context, items []types.TransactWriteItem) error {
	for chunk := range slices.Chunk(items, maxTransactItems) {
		if _, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: chunk}); err != nil {
			return err
		}
	}
	return nil
}
