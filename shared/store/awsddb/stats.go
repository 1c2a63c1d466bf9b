package awsddb

// The dashboard's counters (shared/stage/stats), kept in the Certificates table and
// updated in the same TransactWriteItems as the write that changes what they count.
//
//	counter item   pk "STATS#"+NN (NN: statsPartitions buckets, a hash of the sk)
//	               sk "S#"+scope+"#"+shard
//	               d_<STATUS>, r, m_<YYYY-MM> (issued, by expiry month), i_<YYYY-MM-DD>
//	               (issuance, country only): numbers, added to with ADD
//	commune item   pk as a counter item, sk "C#m:"+province+"/"+commune+"#"+shard
//	               d_<STATUS> (stats_communes.go: read per province, not by StatCounters)
//	day item       pk as its counter item, sk "D#"+YYYY-MM+"#"+scope+"#"+shard
//	               x_<YYYY-MM-DD>: issued certificates by expiry day in that month
//	person metrics pk "PERSON#"+person_id  sk "STATS"
//	               ver (N), fac (SS: facilities holding a signature for the person),
//	               s_<metric> (N: the person's stats.PersonMetrics)
//
// scope is "c" (the country), "p:"+province or "f:"+facility ID.
//
// Sharding: every write adds to one of Options.StatsShards counter items of a country or
// province row (Options.StatsFacilityShards of a facility row), chosen by a hash of the
// record's key, and each (scope, shard) item lives under one of statsPartitions
// partition keys. A national backlog of thousands of writes a second thus spreads over
// many partitions (each takes ~1,000 WCU/s; an item in a transaction costs 2 WCU per KB)
// and, because concurrent transactions on one item cancel each other
// (TransactionConflict), over many items. A read sums every item: it queries the
// statsPartitions partitions, counter items always, day items only for the months asked.
//
// The person metrics item is what makes a facility's first signature for a person add the
// person's earlier certificates to the facility's row, as the dashboard counts them (a
// certificate counts at every facility holding a signature for its person). Certificate
// writes and new signatures update it conditionally on its version, so a signature and a
// certificate written concurrently for one person never miss each other: the loser of
// the race reads it again and retries.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

const (
	pkStats   = "STATS#"
	skStats   = "STATS"
	skCounter = "S#"
	skDay     = "D#"
	skCommune = "C#"

	// statsPartitions is how many partition keys the counters spread over. Reads query
	// all of them: changing it moves every counter (RebuildStats).
	statsPartitions = 64

	// Default shards per row (Options).
	defaultStatsShards         = 32
	defaultStatsFacilityShards = 8

	attrStatsVersion    = "ver"
	attrStatsFacilities = "fac"
	// Prefixes of counter attributes.
	attrDosePrefix    = "d_"
	attrRevoked       = "r"
	attrMonthPrefix   = "m_"
	attrIssuedPrefix  = "i_"
	attrDayPrefix     = "x_"
	attrMetricsPrefix = "s_"

	// maxTxAttempts bounds the retries of a transaction canceled by a concurrent one or by
	// a person's metrics changed since they were read.
	maxTxAttempts = 10
)

// scopeText renders a row scope for a sort key.
func scopeText(sc stats.Scope) string {
	switch sc.Kind {
	case stats.InProvince:
		return "p:" + sc.ID
	case stats.AtFacility:
		return "f:" + sc.ID
	case stats.InCommune:
		return "m:" + sc.ID
	}
	return "c"
}

func parseScope(s string) (stats.Scope, error) {
	switch {
	case s == "c":
		return stats.Scope{Kind: stats.Country}, nil
	case strings.HasPrefix(s, "p:"):
		return stats.Scope{Kind: stats.InProvince, ID: s[2:]}, nil
	case strings.HasPrefix(s, "f:"):
		return stats.Scope{Kind: stats.AtFacility, ID: s[2:]}, nil
	case strings.HasPrefix(s, "m:"):
		return stats.Scope{Kind: stats.InCommune, ID: s[2:]}, nil
	}
	return stats.Scope{}, fmt.Errorf("%w: counter scope %q", ErrCorrupt, s)
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// counterSK is the sort key part naming a row's shard; statsPK its partition.
func counterSK(sc stats.Scope, shard uint32) string {
	return scopeText(sc) + "#" + strconv.FormatUint(uint64(shard), 10)
}

func statsPK(rowShard string) string {
	return fmt.Sprintf("%s%02d", pkStats, hash32(rowShard)%statsPartitions)
}

// counterItems renders delta as ADD updates of counter and day items, in the shards a
// hash of seed (the written record's key) and attempt picks: a retry after a conflict
// picks other items.
func (s *Store) counterItems(delta stats.Delta, seed string, attempt int) []txItem {
	type key struct{ pk, sk string }
	adds := map[key]map[string]int64{}
	add := func(k key, attr string, n int64) {
		if adds[k] == nil {
			adds[k] = map[string]int64{}
		}
		adds[k][attr] += n
	}
	pick := hash32(seed + "#" + strconv.Itoa(attempt))
	for k, n := range delta {
		shards := uint32(s.statsShards)
		if k.Scope.Kind == stats.AtFacility || k.Scope.Kind == stats.InCommune {
			shards = uint32(s.statsFacilityShards)
		}
		row := counterSK(k.Scope, pick%shards)
		item := key{statsPK(row), skCounter + row}
		if k.Scope.Kind == stats.InCommune {
			// Apart from the rows StatCounters reads (stats_communes.go).
			item = key{statsPK(row), skCommune + row}
		}
		switch k.Metric.Kind {
		case stats.DoseStatus:
			add(item, attrDosePrefix+k.Metric.Arg, n)
		case stats.Revoked:
			add(item, attrRevoked, n)
		case stats.IssuedOn:
			add(item, attrIssuedPrefix+k.Metric.Arg, n)
		case stats.ExpiresOn:
			month := stats.MonthOf(k.Metric.Arg)
			add(item, attrMonthPrefix+month, n)
			add(key{item.pk, skDay + month + "#" + row}, attrDayPrefix+k.Metric.Arg, n)
		}
	}
	keys := make([]key, 0, len(adds))
	for k := range adds {
		keys = append(keys, k)
	}
	// A fixed order: the same write sends the same request.
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.pk+a.sk, b.pk+b.sk) })
	var out []txItem
	for _, k := range keys {
		names, values := map[string]string{}, map[string]types.AttributeValue{}
		var parts []string
		attrs := make([]string, 0, len(adds[k]))
		for a := range adds[k] {
			attrs = append(attrs, a)
		}
		slices.Sort(attrs)
		for i, a := range attrs {
			if adds[k][a] == 0 {
				continue
			}
			n, v := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
			names[n], values[v] = a, nAttr(adds[k][a])
			parts = append(parts, n+" "+v)
		}
		if len(parts) == 0 {
			continue
		}
		out = append(out, txItem{stats: true, item: types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(s.tables.Certificates),
			Key:                       itemKey(k.pk, k.sk),
			UpdateExpression:          aws.String("ADD " + strings.Join(parts, ", ")),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}}})
	}
	return out
}

// personStats is a person's metrics item as read.
type personStats struct {
	person     string
	exists     bool
	version    int64
	facilities []string
	metrics    stats.PersonMetrics
}

func (p *personStats) has(facility string) bool { return slices.Contains(p.facilities, facility) }

// readPersonStats reads a person's metrics item (strongly consistent).
func (s *Store) readPersonStats(ctx context.Context, person string) (personStats, error) {
	p := personStats{person: person, metrics: stats.PersonMetrics{}}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Certificates), Key: itemKey(pkPerson+person, skStats), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return p, fmt.Errorf("read dashboard metrics of a person: %w", err)
	}
	if len(out.Item) == 0 {
		return p, nil
	}
	return personStatsFrom(person, out.Item)
}

func personStatsFrom(person string, item map[string]types.AttributeValue) (personStats, error) {
	p := personStats{person: person, exists: true, metrics: stats.PersonMetrics{}}
	var err error
	if p.version, err = num(item, attrStatsVersion); err != nil {
		return p, err
	}
	if ss, ok := item[attrStatsFacilities].(*types.AttributeValueMemberSS); ok {
		p.facilities = slices.Sorted(slices.Values(ss.Value))
	}
	for name := range item {
		if !strings.HasPrefix(name, attrMetricsPrefix) {
			continue
		}
		m, err := stats.DecodeMetric(name[len(attrMetricsPrefix):])
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		n, err := num(item, name)
		if err != nil {
			return p, err
		}
		if n != 0 {
			p.metrics[m] = n
		}
	}
	return p, nil
}

// update is the transaction member writing p's metrics changed by rows and, when
// facility is not "", the facility added; conditional on p being as read. ok is false
// when nothing changes.
func (s *Store) personStatsUpdate(p personStats, rows map[stats.Metric]int64, facility string) (txItem, bool) {
	if len(rows) == 0 && (facility == "" || p.has(facility)) {
		return txItem{}, false
	}
	names := map[string]string{"#ver": attrStatsVersion}
	values := map[string]types.AttributeValue{":nv": nAttr(p.version + 1)}
	set := []string{"#ver = :nv"}
	var remove []string
	metrics := slices.SortedFunc(maps.Keys(rows), func(a, b stats.Metric) int {
		return strings.Compare(stats.EncodeMetric(a), stats.EncodeMetric(b))
	})
	for i, m := range metrics {
		n := "#m" + strconv.Itoa(i)
		names[n] = attrMetricsPrefix + stats.EncodeMetric(m)
		if v := p.metrics[m] + rows[m]; v != 0 {
			values[":m"+strconv.Itoa(i)] = nAttr(v)
			set = append(set, n+" = :m"+strconv.Itoa(i))
		} else {
			remove = append(remove, n)
		}
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	if facility != "" && !p.has(facility) {
		names["#fac"] = attrStatsFacilities
		values[":fac"] = &types.AttributeValueMemberSS{Value: []string{facility}}
		expr += " ADD #fac :fac"
	}
	cond := "#ver = :v"
	if p.exists {
		values[":v"] = nAttr(p.version)
	} else {
		cond = "attribute_not_exists(#pk)"
		names["#pk"] = attrPK
	}
	return txItem{stats: true, item: types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(s.tables.Certificates),
		Key:                       itemKey(pkPerson+p.person, skStats),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}}, true
}

// certStatsItems are the members that count certificate changes of one person, whose
// metrics item p was read before: the person's metrics and the counters of the province,
// of the person's facilities and of the country's issuance.
func (s *Store) certStatsItems(p personStats, seed string, attempt int, changes ...stats.CertChange) []txItem {
	delta := stats.Delta{}
	rows := map[stats.Metric]int64{}
	for _, c := range changes {
		delta.AddCertificate(c, p.facilities)
		for m, n := range c.Rows {
			rows[m] += n
		}
	}
	for m, n := range rows {
		if n == 0 {
			delete(rows, m)
		}
	}
	var out []txItem
	if it, ok := s.personStatsUpdate(p, rows, ""); ok {
		out = append(out, it)
	}
	return append(out, s.counterItems(delta, seed, attempt)...)
}

// txItem is one member of a transaction: the record written (what describes its failed
// condition) or one of the dashboard's items (stats).
type txItem struct {
	item  types.TransactWriteItem
	what  string
	stats bool
}

// txRefused is a transaction canceled by the condition of a record written (not of the
// dashboard's items).
type txRefused struct {
	items   []txItem
	reasons []types.CancellationReason
}

// failed reports whether member i's condition failed, with the stored item when the
// member asked for it.
func (r *txRefused) failed(i int) (bool, map[string]types.AttributeValue) {
	if i >= len(r.reasons) || aws.ToString(r.reasons[i].Code) != "ConditionalCheckFailed" {
		return false, nil
	}
	return true, r.reasons[i].Item
}

// describe names the first failed record.
func (r *txRefused) describe() string {
	for i, it := range r.items {
		if ok, _ := r.failed(i); ok && !it.stats {
			return it.what + ": ConditionalCheckFailed"
		}
	}
	return "canceled"
}

// transact runs the transaction build returns (none: nothing to write), rebuilding and retrying it (with a
// jittered backoff) while it is canceled only by a concurrent transaction
// (TransactionConflict, on any member: the retry reads again and decides again) or by a
// dashboard item's condition (a person's metrics changed since read). A record's failed
// condition is returned as refused, for the caller to interpret; any other failure as
// err.
func (s *Store) transact(ctx context.Context, build func(attempt int) ([]txItem, error)) (refused *txRefused, err error) {
	for attempt := 0; ; attempt++ {
		members, err := build(attempt)
		if err != nil || len(members) == 0 {
			return nil, err
		}
		if len(members) > maxTransactItems {
			return nil, fmt.Errorf("%w: a write of %d items with its dashboard counters, more than the %d of a transaction", vaxpass.ErrInvalid, len(members), maxTransactItems)
		}
		items := make([]types.TransactWriteItem, len(members))
		for i, m := range members {
			items[i] = m.item
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil, nil
		}
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return nil, err
		}
		r := &txRefused{items: members, reasons: canceled.CancellationReasons}
		retry, conflictOn := true, ""
		for i, reason := range r.reasons {
			switch code := aws.ToString(reason.Code); {
			case code == "" || code == "None":
			case code == "ConditionalCheckFailed" && i < len(members) && !members[i].stats:
				return r, nil
			case code == "ConditionalCheckFailed", code == "TransactionConflict", code == "ThrottlingError":
				if i < len(members) && !members[i].stats && conflictOn == "" {
					conflictOn = members[i].what
				}
			default:
				retry = false
			}
		}
		if !retry {
			return nil, err
		}
		if attempt+1 == maxTxAttempts {
			if conflictOn != "" {
				return nil, fmt.Errorf("%w: %s: concurrent transactions, %d attempts", vaxpass.ErrConflict, conflictOn, maxTxAttempts)
			}
			return nil, fmt.Errorf("%w: dashboard counters contended, %d attempts: %w", vaxpass.ErrUnavailable, maxTxAttempts, err)
		}
		// Full jitter: concurrent losers spread out instead of colliding again.
		wait := time.Duration(rand.Int64N(int64(min(10*time.Millisecond<<attempt, time.Second)) + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// StatCounters implements stats.Counters: every counter summed over its shards, with
// issued certificates by expiry day for the days from..to (inclusive; days of the
// months in between are read whole and filtered). It queries every counter partition
// (strongly consistent), Options.Concurrency at a time.
func (s *Store) StatCounters(ctx context.Context, from, to string) (*stats.Tally, error) {
	if !stats.ValidDay(from) || !stats.ValidDay(to) {
		return nil, fmt.Errorf("awsddb: dashboard counters: %w: days %q..%q", vaxpass.ErrInvalid, from, to)
	}
	t := stats.NewTally()
	var mu sync.Mutex
	err := forEach(ctx, statsPartitions, s.concurrency, func(ctx context.Context, i int) error {
		pk := fmt.Sprintf("%s%02d", pkStats, i)
		var items []map[string]types.AttributeValue
		collect := func(item map[string]types.AttributeValue) (bool, error) {
			items = append(items, item)
			return true, nil
		}
		err := s.queryAll(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Certificates),
			KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :s)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sAttr(pk), ":s": sAttr(skCounter)},
			ConsistentRead:            aws.Bool(true),
		}, collect)
		if err == nil && from <= to {
			// "#" < "$": every day item of the months from..to, and only those.
			err = s.queryAll(ctx, &dynamodb.QueryInput{
				TableName:                aws.String(s.tables.Certificates),
				KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :a AND :b"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sAttr(pk),
					":a": sAttr(skDay + stats.MonthOf(from) + "#"), ":b": sAttr(skDay + stats.MonthOf(to) + "$")},
				ConsistentRead: aws.Bool(true),
			}, collect)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, item := range items {
			if err := addCounterItem(t, item, from, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("awsddb: dashboard counters: %w", err)
	}
	return t, nil
}

// addCounterItem adds a counter or day item to t.
func addCounterItem(t *stats.Tally, item map[string]types.AttributeValue, from, to string) error {
	sk := str(item, attrSK)
	var rest string
	day := false
	switch {
	case strings.HasPrefix(sk, skCounter):
		rest = sk[len(skCounter):]
	case strings.HasPrefix(sk, skDay) && len(sk) > len(skDay)+len("2006-01#"):
		rest, day = sk[len(skDay)+len("2006-01#"):], true
	default:
		return fmt.Errorf("%w: counter item %q", ErrCorrupt, sk)
	}
	i := strings.LastIndexByte(rest, '#')
	if i < 0 {
		return fmt.Errorf("%w: counter item %q", ErrCorrupt, sk)
	}
	scope, err := parseScope(rest[:i])
	if err != nil {
		return err
	}
	for name := range item {
		if name == attrPK || name == attrSK {
			continue
		}
		n, err := num(item, name)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		var row *stats.Row
		if scope.Kind != stats.Country {
			row = t.Row(scope)
		}
		switch {
		case day && strings.HasPrefix(name, attrDayPrefix) && row != nil:
			if d := name[len(attrDayPrefix):]; d >= from && d <= to {
				row.ExpiryDays[d] += n
			}
		case day:
			return fmt.Errorf("%w: day item %q attribute %q", ErrCorrupt, sk, name)
		case strings.HasPrefix(name, attrIssuedPrefix) && scope.Kind == stats.Country:
			t.Issuance[name[len(attrIssuedPrefix):]] += n
		case row == nil:
			return fmt.Errorf("%w: country counter %q", ErrCorrupt, name)
		case strings.HasPrefix(name, attrDosePrefix):
			row.Doses[match.Status(name[len(attrDosePrefix):])] += n
		case name == attrRevoked:
			row.Revoked += n
		case strings.HasPrefix(name, attrMonthPrefix):
			row.ExpiryMonths[name[len(attrMonthPrefix):]] += n
		default:
			return fmt.Errorf("%w: counter item %q attribute %q", ErrCorrupt, sk, name)
		}
	}
	return nil
}
