package awsops

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var _ report.Store = (*Store)(nil)

// Citizens' reports (report.Store):
//
//	report             pk "REPORT#"+reference        sk "REPORT"              doc S (JSON of report.Report)
//	facility's list    pk "REPORTS#F#"+facility ID   sk report.Cursor         doc S
//	commune's list     pk "REPORTS#C#"+commune code  sk report.Cursor         doc S
//
// The three are written in one transaction, the first on condition that the reference is
// new; a report is never changed after, so the copies in the lists cannot go stale. A
// list is one partition per facility or commune: reports come a few a day per commune
// (and at most 5 an hour per ID number), far below a partition's limits.
const (
	pkReport      = "REPORT#"
	skReport      = "REPORT"
	pkReportsFac  = "REPORTS#F#"
	pkReportsComm = "REPORTS#C#"
)

func reportListPK(sc report.Scope) string {
	if sc.FacilityID != "" {
		return pkReportsFac + sc.FacilityID
	}
	return pkReportsComm + sc.CommuneCode
}

// PutReport implements report.Store.
func (st *Store) PutReport(ctx context.Context, r report.Report) error {
	if r.Reference == "" || r.FacilityID == "" || r.CommuneCode == "" {
		return fmt.Errorf("awsops: put report: %w: reference, facility and commune are required", vaxpass.ErrInvalid)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("awsops: put report: %w", err)
	}
	item := func(pk, sk string) map[string]types.AttributeValue {
		it := key(pk, sk)
		it[attrDoc] = s(string(doc))
		return it
	}
	cur := report.Cursor(r)
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: aws.String(st.table), Item: item(pkReport+r.Reference, skReport),
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}},
		{Put: &types.Put{TableName: aws.String(st.table), Item: item(reportListPK(report.Scope{FacilityID: r.FacilityID}), cur)}},
		{Put: &types.Put{TableName: aws.String(st.table), Item: item(reportListPK(report.Scope{CommuneCode: r.CommuneCode}), cur)}},
	}})
	if conditionFailed(err) {
		return fmt.Errorf("awsops: put report: %w: reference taken", vaxpass.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("awsops: put report: %w", err)
	}
	return nil
}

// GetReport implements report.Store.
func (st *Store) GetReport(ctx context.Context, reference string) (report.Report, error) {
	if reference == "" {
		return report.Report{}, fmt.Errorf("awsops: report: %w", vaxpass.ErrNotFound)
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pkReport+reference, skReport), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return report.Report{}, fmt.Errorf("awsops: report: %w", err)
	}
	if out.Item == nil {
		return report.Report{}, fmt.Errorf("awsops: report: %w", vaxpass.ErrNotFound)
	}
	return reportOf(out.Item)
}

func reportOf(it map[string]types.AttributeValue) (report.Report, error) {
	var r report.Report
	doc, ok := it[attrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return r, fmt.Errorf("%w: report without doc", ErrCorrupt)
	}
	if err := json.Unmarshal([]byte(doc.Value), &r); err != nil {
		return r, fmt.Errorf("%w: report: %w", ErrCorrupt, err)
	}
	return r, nil
}

// ListReports implements report.Store.
func (st *Store) ListReports(ctx context.Context, sc report.Scope, after string, limit int) ([]report.Report, error) {
	if (sc.FacilityID == "") == (sc.CommuneCode == "") || limit < 1 {
		return nil, fmt.Errorf("awsops: list reports: %w: one scope and a positive limit", vaxpass.ErrInvalid)
	}
	names := map[string]string{"#pk": attrPK}
	values := map[string]types.AttributeValue{":pk": s(reportListPK(sc))}
	cond := "#pk = :pk"
	if after != "" {
		cond += " AND #sk > :after"
		names["#sk"], values[":after"] = attrSK, s(after)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(st.table), KeyConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values, ConsistentRead: aws.Bool(true),
	}
	var out []report.Report
	err := st.queryAll(ctx, in, func(it map[string]types.AttributeValue) (bool, error) {
		r, err := reportOf(it)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return len(out) < limit, nil
	}, func() int32 { return int32(limit - len(out)) })
	if err != nil {
		return nil, fmt.Errorf("awsops: list reports: %w", err)
	}
	return out, nil
}
