package awstest

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/vaxpass/vaxpass/shared/edge/emf"
)

// LogsAPI is the part of the CloudWatch Logs client EMFTotals reads with
// (*cloudwatchlogs.Client implements it).
type LogsAPI interface {
	DescribeLogGroups(ctx context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// filterPageLimit is the most events FilterLogEvents returns at once (AWS's maximum, and
// ministack's).
const filterPageLimit = 10000

// EMFTotals sums the metrics of namespace emf.Namespace that the functions wrote as EMF
// documents (emf.Parse) to the log groups whose names start with groupPrefix (e.g.
// "/aws/lambda/vaxpass-"), from since on. The keys are emf.Sum's: "KMSSign",
// "KMSSign/Purpose=central", "CertificatesIssued/Function=...". It is what CloudWatch
// would have extracted from the same lines, for an emulator that extracts nothing.
func EMFTotals(ctx context.Context, client LogsAPI, groupPrefix string, since time.Time) (map[string]float64, error) {
	docs, err := EMFDocuments(ctx, client, groupPrefix, since)
	if err != nil {
		return nil, err
	}
	return emf.Sum(docs), nil
}

// EMFDocuments returns the EMF documents of namespace emf.Namespace in the log groups
// under groupPrefix from since on (documents of other namespaces are left out).
func EMFDocuments(ctx context.Context, client LogsAPI, groupPrefix string, since time.Time) ([]emf.Document, error) {
	if groupPrefix == "" {
		return nil, fmt.Errorf("awstest: EMF totals: a log group prefix is required")
	}
	var groups []string
	in := &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(groupPrefix)}
	for {
		out, err := client.DescribeLogGroups(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("awstest: log groups %s*: %w", groupPrefix, err)
		}
		for _, g := range out.LogGroups {
			groups = append(groups, aws.ToString(g.LogGroupName))
		}
		if out.NextToken == nil || aws.ToString(out.NextToken) == aws.ToString(in.NextToken) {
			break
		}
		in.NextToken = out.NextToken
	}
	var docs []emf.Document
	for _, g := range groups {
		err := filterEvents(ctx, client, g, since, func(msg string) {
			d, ok := emf.Parse([]byte(msg))
			if !ok {
				return
			}
			var own []emf.Metric
			for _, m := range d.Metrics {
				if m.Namespace == emf.Namespace {
					own = append(own, m)
				}
			}
			if len(own) > 0 {
				d.Metrics = own
				docs = append(docs, d)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// filterEvents calls fn with the message of every event of group from since on. It pages
// with nextToken (AWS). ministack returns at most one page and no token; a full page
// without a token is continued from its last timestamp (startTime is inclusive),
// skipping the events of that millisecond already read: its order is stable.
func filterEvents(ctx context.Context, client LogsAPI, group string, since time.Time, fn func(msg string)) error {
	in := &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(group),
		StartTime:    aws.Int64(since.UnixMilli()),
		Limit:        aws.Int32(filterPageLimit),
	}
	var lastTS int64 = -1
	atLast := 0 // events read with timestamp lastTS
	skip := 0   // events of lastTS to skip after a restart
	for {
		out, err := client.FilterLogEvents(ctx, in)
		if err != nil {
			return fmt.Errorf("awstest: log events of %s: %w", group, err)
		}
		fresh := 0
		for _, e := range out.Events {
			ts := aws.ToInt64(e.Timestamp)
			if skip > 0 && ts == lastTS {
				skip--
				continue
			}
			skip = 0
			if ts == lastTS {
				atLast++
			} else {
				lastTS, atLast = ts, 1
			}
			fresh++
			fn(aws.ToString(e.Message))
		}
		switch {
		case out.NextToken != nil:
			in.NextToken = out.NextToken
		case len(out.Events) >= filterPageLimit:
			if fresh == 0 {
				return fmt.Errorf("awstest: log events of %s: more than %d events at %d ms, cannot page past them", group, filterPageLimit, lastTS)
			}
			in.NextToken, in.StartTime, skip = nil, aws.Int64(lastTS), atLast
		default:
			return nil
		}
	}
}
