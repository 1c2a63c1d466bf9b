package awsddb

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// StatCommunes implements stats.CommuneCounters: the commune rows of one province. Their
// items share the counter partitions (a province's dose writes spread as the other
// rows' do) under their own sort key prefix, so the read queries every partition for
// that prefix (strongly consistent), Options.Concurrency at a time, and reads only the
// province's communes.
func (s *Store) StatCommunes(ctx context.Context, province string) (*stats.Tally, error) {
	if province == "" || strings.ContainsAny(province, "/#") {
		return nil, fmt.Errorf("awsddb: commune counters: %w: province %q", vaxpass.ErrInvalid, province)
	}
	prefix := skCommune + scopeText(stats.Scope{Kind: stats.InCommune, ID: stats.CommuneScopeID(province, "")})
	t := stats.NewTally()
	var mu sync.Mutex
	err := forEach(ctx, statsPartitions, s.concurrency, func(ctx context.Context, i int) error {
		var items []map[string]types.AttributeValue
		err := s.queryAll(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Certificates),
			KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :p)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sAttr(fmt.Sprintf("%s%02d", pkStats, i)), ":p": sAttr(prefix)},
			ConsistentRead:            aws.Bool(true),
		}, func(item map[string]types.AttributeValue) (bool, error) {
			items = append(items, item)
			return true, nil
		})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, item := range items {
			if err := addCommuneItem(t, item); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: commune counters of province %q: %w", province, err)
	}
	return t, nil
}

// addCommuneItem adds a commune item (d_<STATUS> attributes) to t.
func addCommuneItem(t *stats.Tally, item map[string]types.AttributeValue) error {
	sk := str(item, attrSK)
	rest := strings.TrimPrefix(sk, skCommune)
	i := strings.LastIndexByte(rest, '#')
	if i < 0 || rest == sk {
		return fmt.Errorf("%w: commune counter item %q", ErrCorrupt, sk)
	}
	scope, err := parseScope(rest[:i])
	if err != nil || scope.Kind != stats.InCommune {
		return fmt.Errorf("%w: commune counter item %q", ErrCorrupt, sk)
	}
	row := t.Row(scope)
	for name := range item {
		if name == attrPK || name == attrSK {
			continue
		}
		status, ok := strings.CutPrefix(name, attrDosePrefix)
		if !ok {
			return fmt.Errorf("%w: commune counter item %q attribute %q", ErrCorrupt, sk, name)
		}
		n, err := num(item, name)
		if err != nil {
			return err
		}
		row.Doses[match.Status(status)] += n
	}
	return nil
}

var _ stats.CommuneCounters = (*Store)(nil)
