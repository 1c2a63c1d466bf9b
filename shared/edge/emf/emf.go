// Package emf writes and reads CloudWatch metrics in the embedded metric format (EMF): a
// function counts what it did in a Recorder and flushes it to stdout as JSON log lines;
// CloudWatch Logs turns each line into metrics (no PutMetricData call, no extra
// permission, no added latency). Where nothing extracts the metrics (the emulator),
// Parse and Sum read the same lines back.
//
// A document follows the specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
//
//	{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"vaxpass",
//	  "Dimensions":[["Function","Purpose"]],"Metrics":[{"Name":"KMSSign","Unit":"Count"}]}]},
//	 "Function":"vaxpass-CentralSigning","Purpose":"central","KMSSign":12}
//
// CloudWatch aggregates per unique dimension set: KMSSign with {Function, Purpose} is a
// different metric from KMSSign with {Function}, and an alarm or a graph names the exact
// set. So every metric below is always recorded with the same dimensions: Function (the
// Lambda function's name) and, for the KMS metrics, Purpose. Adding a dimension later
// starts a new metric, it does not refine the old one.
//
// In a function: one Recorder per process, New(Namespace, map[string]string{DimFunction:
// os.Getenv("AWS_LAMBDA_FUNCTION_NAME")}); count during an invocation and Flush(os.Stdout)
// before the handler returns (Lambda may freeze the process after). With LogFormat JSON,
// Lambda still passes a Go function's own stdout lines through unchanged (it formats only
// its system logs for custom runtimes), which is what CloudWatch needs: the line must be
// the document.
package emf

// Namespace is the CloudWatch namespace of vaxpass's metrics (template.yaml's alarms read
// it).
const Namespace = "vaxpass"

// Metric names. The KMS metrics carry the dimensions Function and Purpose; the others
// Function only.
const (
	// KMSSign counts KMS Sign calls that returned a signature.
	KMSSign = "KMSSign"
	// KMSThrottle counts KMS Sign calls that were throttled (by KMS or the SDK's client
	// retry quota); they signed nothing and are not counted in KMSSign.
	KMSThrottle = "KMSThrottle"
	// KMSSignFailed counts KMS Sign calls that failed otherwise (transient or not).
	KMSSignFailed = "KMSSignFailed"
	// CertificatesIssued counts certificates signed and stored by central signing.
	CertificatesIssued = "CertificatesIssued"
	// CertificatesRenewed counts certificates re-issued by the renewal run.
	CertificatesRenewed = "CertificatesRenewed"
	// PeopleFacilitySigned counts people whose doses a facility signature covered.
	PeopleFacilitySigned = "PeopleFacilitySigned"
	// BudgetWaitMillis is the time spent waiting for the KMS rate budget (Milliseconds).
	BudgetWaitMillis = "BudgetWaitMillis"
)

// Dimension names and the values of Purpose.
const (
	// DimFunction is the Lambda function's name (AWS_LAMBDA_FUNCTION_NAME).
	DimFunction = "Function"
	// DimPurpose is what a KMS key signed for: PurposeFacility, PurposeCentral or
	// PurposeRenewal.
	DimPurpose      = "Purpose"
	PurposeFacility = "facility"
	PurposeCentral  = "central"
	PurposeRenewal  = "renewal"
)

// Unit is a CloudWatch metric unit (the StandardUnit values).
type Unit string

// The units vaxpass uses; any other StandardUnit string is valid too.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
	UnitSeconds      Unit = "Seconds"
	UnitNone         Unit = "None"
)

// Limits of the specification and of CloudWatch.
const (
	// MaxMetrics is the most metric definitions in one directive; Flush also keeps a
	// whole document within it.
	MaxMetrics = 100
	// MaxValues is the most values of one metric in one document.
	MaxValues = 100
	// MaxDimensions is the most dimension keys in one dimension set.
	MaxDimensions = 30
	// maxName bounds namespaces, metric and dimension names; maxDimValue dimension values.
	maxName     = 255
	maxDimValue = 1024
)
