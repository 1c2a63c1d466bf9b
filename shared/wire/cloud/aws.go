package cloud

// The AWS wiring: Open assembles the same use cases and handlers as OpenLocal over the
// AWS adapters -- DynamoDB (awsddb, awsregistry), SQS (awssqs), KMS (awskms) and the trust
// bucket on S3 -- from the environment the SAM template gives every function. Each Lambda
// (functions/<name>/main.go) opens it and starts one of its handlers. Nothing here knows
// whether AWS or an emulator answers: the SDK's own configuration (AWS_ENDPOINT_URL
// included) decides.

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/emf"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/security"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/awsbudget"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/store/awsops"
	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/store/awssqs"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
)

// Environment variables of the functions (set by template.yaml's Globals).
const (
	EnvDosesTable        = "DOSES_TABLE"
	EnvCertificatesTable = "CERTIFICATES_TABLE"
	EnvFacilitiesTable   = "FACILITIES_TABLE"
	EnvRegistryTable     = "REGISTRY_TABLE"
	EnvOpsTable          = "OPS_TABLE"
	EnvCentralQueueURL   = "CENTRAL_QUEUE_URL"
	EnvCentralDLQURL     = "CENTRAL_DLQ_URL"
	EnvWorkQueueURL      = "WORK_QUEUE_URL"
	EnvMatcherFailureURL = "MATCHER_FAILURE_QUEUE_URL"
	EnvDSCKeyID          = "DSC_KEY_ID"
	EnvTrustBucket       = "TRUST_BUCKET"
	EnvFacilityKeyTag    = "FACILITY_KEY_TAG"
	EnvRenewalWindowDays = "RENEWAL_WINDOW_DAYS"
	// EnvKMSSignsPerSecond is the stack's one KMS budget (template parameter
	// KmsSignsPerSecond): every signer's pace is taken from it.
	EnvKMSSignsPerSecond = "KMS_SIGNS_PER_SECOND"
	// EnvSigningQueueURL is facility signing's fan-out queue (a facility's signing run,
	// page by page); EnvCentralBulkQueueURL central signing's queue for bulk work (the
	// backlog, reprocessing), read after the interactive CENTRAL_QUEUE_URL;
	// EnvRenewalQueueURL renewal's fan-out queue (a run's key ranges).
	EnvSigningQueueURL     = "SIGNING_QUEUE_URL"
	EnvCentralBulkQueueURL = "CENTRAL_BULK_QUEUE_URL"
	EnvRenewalQueueURL     = "RENEWAL_QUEUE_URL"
	// EnvLambdaLogLevel is set by Lambda from the function's ApplicationLogLevel.
	EnvLambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"
)

// Tags of the KMS keys the stack's functions may use: facility keys are created at
// registration (CreateFacilityKey), so the template grants by tag, not by ARN.
const (
	TagStack       = "vaxpass:stack"
	TagUse         = "vaxpass:use"
	TagUseFacility = "facility"
)

// ErrConfig reports missing or malformed AWS wiring configuration.
var ErrConfig = errors.New("aws configuration")

// Config configures Open.
type Config struct {
	Tables        awsddb.Tables
	RegistryTable string
	// OpsTable holds renewal runs and their audit entries (awsops).
	OpsTable string
	// CentralQueueURL is the central signing queue; CentralDLQURL its dead-letter queue
	// (only ops' redrive reads it).
	CentralQueueURL string
	CentralDLQURL   string
	// WorkQueueURL is the ops function's work queue (reprocessing runs); MatcherFailureURL
	// the matcher stream's on-failure queue (its dead letters).
	WorkQueueURL      string
	MatcherFailureURL string
	// DSCKeyID is the KMS key (ID, ARN or alias) the DSC certifies.
	DSCKeyID string
	// TrustBucket holds dsc.pem and trustlist.pem (see PublishDSC).
	TrustBucket string
	// FacilityKeyTag is the vaxpass:stack tag value of the facility keys (the stack name).
	FacilityKeyTag string
	// RenewalWindow is the renewal run's window.
	RenewalWindow time.Duration
	// KMSSignsPerSecond is the stack's KMS Sign budget (DefaultKMSSignsPerSecond when 0).
	KMSSignsPerSecond int
	// SigningQueueURL, CentralBulkQueueURL and RenewalQueueURL: see the Env constants.
	SigningQueueURL     string
	CentralBulkQueueURL string
	RenewalQueueURL     string
	// LookupRate limits the public endpoints per client within one function instance
	// (default 20/s, burst 40); the API stage's throttling is the global limit.
	LookupRate apigw.RateLimit
	// TrustTTL is how long the DSC and trust list are cached (default 5 minutes).
	TrustTTL time.Duration

	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger
	// SDK is the AWS SDK configuration: LambdaSDK in a function; an operator's tools and
	// tests load the SDK's default one (config.LoadDefaultConfig).
	SDK *aws.Config
}

// ConfigFromEnv reads the configuration the template sets; getenv is os.Getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Tables: awsddb.Tables{
			Doses: getenv(EnvDosesTable), Certificates: getenv(EnvCertificatesTable), Facilities: getenv(EnvFacilitiesTable),
		},
		RegistryTable:       getenv(EnvRegistryTable),
		OpsTable:            getenv(EnvOpsTable),
		CentralQueueURL:     getenv(EnvCentralQueueURL),
		CentralDLQURL:       getenv(EnvCentralDLQURL),
		WorkQueueURL:        getenv(EnvWorkQueueURL),
		MatcherFailureURL:   getenv(EnvMatcherFailureURL),
		SigningQueueURL:     getenv(EnvSigningQueueURL),
		CentralBulkQueueURL: getenv(EnvCentralBulkQueueURL),
		RenewalQueueURL:     getenv(EnvRenewalQueueURL),
		DSCKeyID:            getenv(EnvDSCKeyID),
		TrustBucket:         getenv(EnvTrustBucket),
		FacilityKeyTag:      getenv(EnvFacilityKeyTag),
	}
	var missing []string
	for _, v := range []struct{ name, value string }{
		{EnvDosesTable, c.Tables.Doses}, {EnvCertificatesTable, c.Tables.Certificates}, {EnvFacilitiesTable, c.Tables.Facilities},
		{EnvRegistryTable, c.RegistryTable}, {EnvOpsTable, c.OpsTable}, {EnvCentralQueueURL, c.CentralQueueURL}, {EnvDSCKeyID, c.DSCKeyID},
		{EnvTrustBucket, c.TrustBucket}, {EnvFacilityKeyTag, c.FacilityKeyTag},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("%w: environment variables not set: %s", ErrConfig, strings.Join(missing, ", "))
	}
	if s := getenv(EnvRenewalWindowDays); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days < 1 || days > 366 {
			return c, fmt.Errorf("%w: %s=%q: want whole days 1..366", ErrConfig, EnvRenewalWindowDays, s)
		}
		c.RenewalWindow = time.Duration(days) * 24 * time.Hour
	}
	if s := getenv(EnvKMSSignsPerSecond); s != "" {
		rate, err := strconv.Atoi(s)
		if err != nil || rate < 1 || rate > 100000 {
			return c, fmt.Errorf("%w: %s=%q: want a whole number of signs per second, 1..100000", ErrConfig, EnvKMSSignsPerSecond, s)
		}
		c.KMSSignsPerSecond = rate
	}
	c.Log = LambdaLogger(getenv(EnvLambdaLogLevel))
	return c, nil
}

// LambdaLogger logs JSON lines to stderr (the functions' LogFormat is JSON, so CloudWatch
// keeps the fields and filters on "level"), at the function's ApplicationLogLevel.
func LambdaLogger(level string) *slog.Logger {
	lv := slog.LevelInfo
	switch strings.ToUpper(level) {
	case "TRACE", "DEBUG":
		lv = slog.LevelDebug
	case "WARN":
		lv = slog.LevelWarn
	case "ERROR", "FATAL":
		lv = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// Stack is the system over the AWS services of a deployed stack: the AWS ports and the one wiring (Sys) built over
// them. Each function asks it for its own handler.
type Stack struct {
	cfg      Config
	Store    *awsddb.Store
	Registry *awsregistry.Registry
	Ops      *awsops.Store
	Keys     *KMSFacilityKeys
	Trust    *s3Trust
	Queue    *awssqs.CentralQueue
	// BulkQueue is central signing's queue for bulk work (nil without CENTRAL_BULK_QUEUE_URL).
	BulkQueue *awssqs.CentralQueue
	sqs       *sqs.Client
	kms       *kms.Client
	// workQueue carries the ops function's reprocessing runs (nil without WORK_QUEUE_URL).
	workQueue *awssqs.Sender

	Sys *wire.System
	// Security records the security events of the function's handlers (counted in the
	// ops table, and as the EMF metric SecurityEvent by Kind).
	Security *security.Recorder

	recorder *emf.Recorder

	ddb                           *dynamodb.Client
	budget                        *awsbudget.Budget
	budgetOnce                    sync.Once
	bulkBudget, interactiveBudget awskms.Budget
}

// Open assembles the system. It makes no network call: a function that never needs the
// DSC (the facility API) starts even before the DSC is provisioned.
// Option adds a port that only some of a stack's users need, so that the others do not
// link its adapter (deadletters.Option: the ops function and the operator's CLI).
type Option func(s *Stack, p *wire.Ports) error

// SQS is the stack's SQS client (for the options' adapters).
func (a *Stack) SQS() *sqs.Client { return a.sqs }

// Config is the configuration the stack was opened with.
func (a *Stack) Config() Config { return a.cfg }

func Open(ctx context.Context, cfg Config, opts ...Option) (*Stack, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if cfg.TrustTTL == 0 {
		cfg.TrustTTL = 5 * time.Minute
	}
	if cfg.SDK == nil {
		return nil, fmt.Errorf("%w: no AWS SDK configuration (LambdaSDK in a function, config.LoadDefaultConfig elsewhere)", ErrConfig)
	}
	ddb := dynamodb.NewFromConfig(*cfg.SDK)
	kmsClient := kms.NewFromConfig(*cfg.SDK)
	a := &Stack{cfg: cfg, sqs: sqs.NewFromConfig(*cfg.SDK), kms: kmsClient, ddb: ddb}
	var err error
	if a.Store, err = awsddb.New(ddb, cfg.Tables, awsddb.Options{}); err != nil {
		return nil, err
	}
	if a.Registry, err = awsregistry.New(ddb, cfg.RegistryTable); err != nil {
		return nil, err
	}
	if a.Ops, err = awsops.New(ddb, cfg.OpsTable, cfg.Now); err != nil {
		return nil, err
	}
	if a.Queue, err = awssqs.NewCentralQueue(a.sqs, cfg.CentralQueueURL); err != nil {
		return nil, err
	}
	var background wire.RunStarter
	if cfg.WorkQueueURL != "" {
		if a.workQueue, err = awssqs.NewSender(a.sqs, cfg.WorkQueueURL); err != nil {
			return nil, err
		}
		background = sqsRunStarter{work: a.workQueue}
	}
	if cfg.CentralBulkQueueURL != "" {
		if a.BulkQueue, err = awssqs.NewCentralQueue(a.sqs, cfg.CentralBulkQueueURL); err != nil {
			return nil, err
		}
	}
	var signingQueue signing.RunQueue
	if cfg.SigningQueueURL != "" {
		q, err := awssqs.NewSender(a.sqs, cfg.SigningQueueURL)
		if err != nil {
			return nil, err
		}
		signingQueue = sqsSigningQueue{q}
	}
	a.Keys = &KMSFacilityKeys{KMS: kmsClient, Facilities: a.Store, StackTag: cfg.FacilityKeyTag,
		Options: awskms.Options{Budget: priorityBudget{a}, Observe: a.observeKMS(emf.PurposeFacility)}}
	a.Trust = newS3Trust(s3.NewFromConfig(*cfg.SDK), cfg.TrustBucket, cfg.TrustTTL, cfg.Now)
	sealer := &kmsSealer{kms: kmsClient, keyID: cfg.DSCKeyID, trust: a.Trust, budget: priorityBudget{a},
		observeSeal: a.observeKMS(emf.PurposeCentral), observeReseal: a.observeKMS(emf.PurposeRenewal)}

	a.Security = &security.Recorder{Store: a.Ops, Log: cfg.Log, Now: cfg.Now, Metric: func(kind string) {
		if m := a.metrics(); m != nil {
			m.With(DimKind, kind).Count(MetricSecurityEvent, 1)
		}
	}}
	ports := wire.Ports{
		Now: cfg.Now, Rand: cfg.Rand, Log: cfg.Log,
		// Failed lookups are counted in the ops table: one count for every instance.
		LookupAttempts: a.Ops, SecurityEvents: a.Security, Reports: a.Ops,
		Store: a.Store, Registry: a.Registry, Keys: a.Keys, Queue: a.Queue,
		SigningRuns: a.Ops, SigningQueue: signingQueue,
		Sealer: sealer, Resealer: sealer,
		Trust: a.Trust, TrustListJSON: a.Trust.TrustListJSON,
		RenewalRuns: a.Ops, Audit: a.Ops, Revocations: a.Ops, ReprocessRuns: a.Ops, OpsKeys: a.Ops, AccessKeys: a.Ops,
		Background: background,
		Stats:      &stats.Service{Counters: a.Store, Now: cfg.Now, Security: security.Flushed{Recorder: a.Security, Reader: a.Ops}},
		LookupRate: cfg.LookupRate,
		// A facility signs a page of 500 people with one KMS call; reading their doses is
		// what takes the time (a DynamoDB query each, ~5-10 ms), so 32 are read at once.
		// The KMS budget, not this, bounds the signatures.
		FacilityWorkers: 32,
		// A central signing batch (10 messages) is issued 10 at a time: an instance waits on
		// KMS and DynamoDB, not on CPU.
		CentralConcurrency: 10,
	}
	if a.BulkQueue != nil {
		ports.BulkQueue = a.BulkQueue
	}
	for _, o := range opts {
		if err := o(a, &ports); err != nil {
			return nil, err
		}
	}
	// Start's option has set the recorder by now.
	if a.recorder != nil {
		rec := a.recorder
		ports.OnSigningPage = func(p signing.PageResult) { rec.Count(emf.PeopleFacilitySigned, int64(p.Signed)) }
	}
	if a.Sys, err = wire.New(ports); err != nil {
		return nil, err
	}
	return a, nil
}

// Log is the system's logger.
func (a *Stack) Log() *slog.Logger { return a.cfg.Log }

// APIHandler serves an API Gateway HTTP API (payload 2.0) request.
type APIHandler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// APIOr is the handler of a function that serves API routes and other events: API Gateway
// requests go to api, everything else to other. (The routes are the function's main's to
// build, so a function without routes links none.)
func APIOr(api APIHandler, other func(ctx context.Context, ev json.RawMessage) (any, error)) func(ctx context.Context, ev json.RawMessage) (any, error) {
	return func(ctx context.Context, ev json.RawMessage) (any, error) {
		var probe struct {
			RouteKey string `json:"routeKey"`
		}
		if err := json.Unmarshal(ev, &probe); err != nil {
			return nil, fmt.Errorf("%w: event is not a JSON object: %w", ErrOpsRequest, err)
		}
		if probe.RouteKey == "" {
			return other(ctx, ev)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(ev, &req); err != nil {
			return nil, fmt.Errorf("API event: %w", err)
		}
		return api(ctx, req)
	}
}

// AddFacility registers a vaccination site (wire.System.AddFacility): a KMS key of its
// own, tagged for this stack, and the facility record. It runs with an operator's
// credentials, not in a function.
func (a *Stack) AddFacility(ctx context.Context, id, name string) (string, error) {
	return a.Sys.AddFacility(ctx, id, name)
}

// LoadRegistry loads a registry extract into the registry table.
func (a *Stack) LoadRegistry(ctx context.Context, people func(yield func(match.Person) bool)) (int, error) {
	return a.Registry.Load(ctx, people)
}

// KMSFacilityKeys are the facility keys in KMS: one ECC_NIST_P256 key per facility,
// named by the facility record's KeyID (the key ARN). It implements signing.FacilityKeys
// and signing.FacilityPublicKeys; signers (and their cached public keys) are kept per key.
type KMSFacilityKeys struct {
	KMS interface {
		awskms.API
		CreateKey(ctx context.Context, in *kms.CreateKeyInput, opts ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
		CreateAlias(ctx context.Context, in *kms.CreateAliasInput, opts ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
		DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	}
	Facilities interface {
		GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	}
	// StackTag is the vaxpass:stack tag value given to new keys.
	StackTag string
	// Options of the signers (budget, retries).
	Options awskms.Options

	mu      sync.Mutex
	signers map[string]*awskms.Signer   // by key ID
	pubs    map[string]*ecdsa.PublicKey // by facility ID
}

// EnsureFacilityKey implements wire.FacilityKeys: the key behind the facility's alias
// when a registration that failed after creating it is retried, else a new one.
func (k *KMSFacilityKeys) EnsureFacilityKey(ctx context.Context, facilityID string) (string, error) {
	out, err := k.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.alias(facilityID))})
	var nf *kmstypes.NotFoundException
	switch {
	case err == nil && out.KeyMetadata != nil:
		return aws.ToString(out.KeyMetadata.Arn), nil
	case err != nil && !errors.As(err, &nf):
		return "", fmt.Errorf("describe KMS key of facility %s: %w", facilityID, err)
	}
	return k.CreateFacilityKey(ctx, facilityID)
}

func (k *KMSFacilityKeys) alias(facilityID string) string {
	return "alias/" + k.StackTag + "/facility/" + facilityID
}

// CreateFacilityKey creates the facility's key, tagged for this stack, with the alias
// alias/<stack>/facility/<id>, and returns its ARN.
func (k *KMSFacilityKeys) CreateFacilityKey(ctx context.Context, facilityID string) (string, error) {
	out, err := k.KMS.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     kmstypes.KeySpecEccNistP256,
		KeyUsage:    kmstypes.KeyUsageTypeSignVerify,
		Description: aws.String(fmt.Sprintf("%s facility %s signing key", k.StackTag, facilityID)),
		Tags: []kmstypes.Tag{
			{TagKey: aws.String(TagStack), TagValue: aws.String(k.StackTag)},
			{TagKey: aws.String(TagUse), TagValue: aws.String(TagUseFacility)},
			{TagKey: aws.String("vaxpass:facility"), TagValue: aws.String(facilityID)},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create KMS key of facility %s: %w", facilityID, err)
	}
	arn := aws.ToString(out.KeyMetadata.Arn)
	if _, err := k.KMS.CreateAlias(ctx, &kms.CreateAliasInput{
		AliasName: aws.String(k.alias(facilityID)), TargetKeyId: out.KeyMetadata.KeyId,
	}); err != nil {
		return "", fmt.Errorf("alias KMS key of facility %s: %w", facilityID, err)
	}
	return arn, nil
}

// signer reads the facility's record at each call (one GetItem per signed page) so that a
// rotated or revoked key is left at once; signers are cached by key.
func (k *KMSFacilityKeys) signer(ctx context.Context, facilityID string) (*awskms.Signer, error) {
	f, err := k.Facilities.GetFacility(ctx, facilityID)
	if err != nil {
		return nil, err
	}
	if f.KeyID == "" {
		return nil, fmt.Errorf("facility %s has no signing key: %w", facilityID, vaxpass.ErrNotFound)
	}
	k.mu.Lock()
	s, ok := k.signers[f.KeyID]
	k.mu.Unlock()
	if ok {
		return s, nil
	}
	if s, err = awskms.NewSigner(k.KMS, f.KeyID, k.Options); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.signers == nil {
		k.signers = map[string]*awskms.Signer{}
	}
	k.signers[f.KeyID] = s
	k.mu.Unlock()
	return s, nil
}

// FacilitySigner implements signing.FacilityKeys.
func (k *KMSFacilityKeys) FacilitySigner(ctx context.Context, facilityID string) (facilitysig.Signer, error) {
	return k.signer(ctx, facilityID)
}

// FacilityPublicKey implements signing.FacilityPublicKeys: the key stored with the
// facility's record (read once an instance), else KMS's GetPublicKey (facilities
// registered before the record kept it).
func (k *KMSFacilityKeys) FacilityPublicKey(ctx context.Context, facilityID string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	pub, ok := k.pubs[facilityID]
	k.mu.Unlock()
	if ok {
		return pub, nil
	}
	f, err := k.Facilities.GetFacility(ctx, facilityID)
	if err != nil {
		return nil, err
	}
	if len(f.PublicKey) > 0 {
		parsed, err := x509.ParsePKIXPublicKey(f.PublicKey)
		ec, isEC := parsed.(*ecdsa.PublicKey)
		if err != nil || !isEC {
			return nil, fmt.Errorf("facility %s: stored public key is not an ECDSA key: %v", facilityID, err)
		}
		pub = ec
	} else {
		s, err := k.signer(ctx, facilityID)
		if err != nil {
			return nil, err
		}
		if pub, err = s.PublicKey(ctx); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	if k.pubs == nil {
		k.pubs = map[string]*ecdsa.PublicKey{}
	}
	k.pubs[facilityID] = pub
	k.mu.Unlock()
	return pub, nil
}

// PublicKeyOf implements wire.PublicKeyReader: KMS's GetPublicKey of a key, at a
// facility's registration.
func (k *KMSFacilityKeys) PublicKeyOf(ctx context.Context, keyID string) (*ecdsa.PublicKey, error) {
	s, err := awskms.NewSigner(k.KMS, keyID, k.Options)
	if err != nil {
		return nil, err
	}
	return s.PublicKey(ctx)
}

// kmsSealer is central signing's Sealer: signing.HC1Sealer over the DSC key in KMS and
// the DSC read from the trust bucket. A new DSC (a roll-over) is picked up within the
// trust cache's TTL; the KMS key's public key is checked against each DSC before use.
type kmsSealer struct {
	kms    awskms.API
	keyID  string
	trust  *s3Trust
	budget awskms.Budget
	// The DSC key signs certificates (central) and renews them (renewal): counted apart.
	observeSeal, observeReseal func(awskms.Outcome)

	mu       sync.Mutex
	dscRaw   []byte
	sealer   *signing.HC1Sealer
	resealer *renewal.HC1Resealer
}

// Seal implements signing.Sealer.
func (s *kmsSealer) Seal(ctx context.Context, c *dcc.Certificate, issuedAt time.Time) (string, time.Time, string, error) {
	dsc, err := s.trust.DSC(ctx)
	if err != nil {
		return "", time.Time{}, "", err
	}
	sealer, err := s.sealerFor(dsc)
	if err != nil {
		return "", time.Time{}, "", err
	}
	return sealer.Seal(ctx, c, issuedAt)
}

// Reseal implements renewal.Sealer with the same DSC key and certificate.
func (s *kmsSealer) Reseal(ctx context.Context, dccCBOR []byte, issuedAt time.Time) (string, time.Time, string, error) {
	dsc, err := s.trust.DSC(ctx)
	if err != nil {
		return "", time.Time{}, "", err
	}
	if _, err := s.sealerFor(dsc); err != nil {
		return "", time.Time{}, "", err
	}
	s.mu.Lock()
	resealer := s.resealer
	s.mu.Unlock()
	return resealer.Reseal(ctx, dccCBOR, issuedAt)
}

func (s *kmsSealer) sealerFor(dsc *x509.Certificate) (*signing.HC1Sealer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealer != nil && string(s.dscRaw) == string(dsc.Raw) {
		return s.sealer, nil
	}
	signer, err := awskms.NewDSCSigner(s.kms, s.keyID, dsc.Raw, awskms.Options{Budget: s.budget, Observe: s.observeSeal})
	if err != nil {
		return nil, err
	}
	resigner, err := awskms.NewDSCSigner(s.kms, s.keyID, dsc.Raw, awskms.Options{Budget: s.budget, Observe: s.observeReseal})
	if err != nil {
		return nil, err
	}
	s.dscRaw, s.sealer, s.resealer = dsc.Raw, &signing.HC1Sealer{Signer: signer, DSC: dsc}, &renewal.HC1Resealer{Signer: resigner, DSC: dsc}
	return s.sealer, nil
}

// metrics is the function's EMF recorder (Start sets it and flushes it after each
// invocation); nil in an operator's process, where counts go nowhere.
func (a *Stack) metrics() *emf.Recorder { return a.recorder }

// observeKMS counts a signer's KMS calls by purpose (emf.PurposeFacility, ...).
func (a *Stack) observeKMS(purpose string) func(awskms.Outcome) {
	return func(o awskms.Outcome) {
		m := a.metrics()
		if m == nil {
			return
		}
		m = m.With(emf.DimPurpose, purpose)
		switch {
		case o.Throttled:
			m.Count(emf.KMSThrottle, 1)
		case o.Err != nil:
			m.Count(emf.KMSSignFailed, 1)
		default:
			m.Count(emf.KMSSign, 1)
		}
		if o.Waited > 0 {
			m.Record(emf.BudgetWaitMillis, emf.UnitMilliseconds, float64(o.Waited.Milliseconds()))
		}
	}
}

// DefaultKMSSignsPerSecond is the KMS budget when KMS_SIGNS_PER_SECOND is unset: the
// default ECC_NIST_P256 request quota of an account and region.
const DefaultKMSSignsPerSecond = 300

// kmsBudget is the stack's KMS Sign budget per second.
func (a *Stack) kmsBudget() int {
	if a.cfg.KMSSignsPerSecond > 0 {
		return a.cfg.KMSSignsPerSecond
	}
	return DefaultKMSSignsPerSecond
}

// BulkBudget paces bulk signing (backlog, renewal, reprocessing): it may use the budget
// less the share kept for interactive issuance.
func (a *Stack) BulkBudget() awskms.Budget {
	a.budgetOnce.Do(a.makeBudgets)
	return a.bulkBudget
}

// InteractiveBudget paces interactive signing (a facility's call, central signing of it).
func (a *Stack) InteractiveBudget() awskms.Budget {
	a.budgetOnce.Do(a.makeBudgets)
	return a.interactiveBudget
}

// makeBudgets builds the KMS budget shared by every instance of every function: a
// per-second count in the ops table (awsbudget), bulk work kept below the share owed to
// interactive work. Each process leases tokens for its concurrent signers at once.
func (a *Stack) makeBudgets() {
	q := a.kmsBudget()
	reserve := max(1, q-int(float64(q)*BulkShare))
	if q < 2 {
		reserve = 0
	}
	b, err := awsbudget.New(a.ddb, awsbudget.Config{Table: a.cfg.OpsTable, PerSecond: q, Reserve: reserve})
	if err != nil {
		// The configuration was checked when it was read; a budget that cannot be built
		// is a programming error, and a signer without one must not run unpaced.
		panic(fmt.Sprintf("KMS budget: %v", err))
	}
	a.budget = b
	a.bulkBudget, a.interactiveBudget = b.For(awsbudget.Bulk), b.For(awsbudget.Interactive)
}

// Fatal logs why a function cannot start and exits: Lambda reports the init error and
// retries the cold start.
func Fatal(err error) {
	LambdaLogger(os.Getenv(EnvLambdaLogLevel)).Error("function start failed", "err", err)
	os.Exit(1)
}

// ConfigFromOutputs is the configuration of a deployed stack as its operators and the
// deployed tests see it: the stack's outputs (template.yaml), keyed by output name.
func ConfigFromOutputs(out map[string]string) (Config, error) {
	c := Config{
		Tables:              awsddb.Tables{Doses: out["DosesTable"], Certificates: out["CertificatesTable"], Facilities: out["FacilitiesTable"]},
		RegistryTable:       out["RegistryTable"],
		OpsTable:            out["OpsTable"],
		CentralQueueURL:     out["CentralQueueUrl"],
		CentralDLQURL:       out["CentralDeadLetterQueueUrl"],
		WorkQueueURL:        out["WorkQueueUrl"],
		MatcherFailureURL:   out["MatcherFailureQueueUrl"],
		SigningQueueURL:     out["SigningQueueUrl"],
		CentralBulkQueueURL: out["CentralBulkQueueUrl"],
		RenewalQueueURL:     out["RenewalQueueUrl"],
		DSCKeyID:            out["DscKeyArn"],
		TrustBucket:         out["TrustBucket"],
		FacilityKeyTag:      out["StackName"],
	}
	var missing []string
	for _, k := range []string{"DosesTable", "CertificatesTable", "FacilitiesTable", "RegistryTable", "OpsTable", "CentralQueueUrl", "DscKeyArn", "TrustBucket", "StackName"} {
		if out[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("%w: stack outputs missing: %s", ErrConfig, strings.Join(missing, ", "))
	}
	return c, nil
}

// Start is a function's main: it opens the stack from the environment the template sets,
// asks handler for the function's own handler (so the binary links only that part) and
// hands it to the Lambda runtime. A function that cannot start exits: Lambda reports the
// init error and retries the cold start.
func Start(handler func(*Stack) (any, error), opts ...Option) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		Fatal(err)
	}
	sdk := LambdaSDK(os.Getenv)
	cfg.SDK = &sdk
	rec := emf.New(emf.Namespace, map[string]string{emf.DimFunction: os.Getenv("AWS_LAMBDA_FUNCTION_NAME")})
	opts = append([]Option{func(s *Stack, _ *wire.Ports) error { s.recorder = rec; return nil }}, opts...)
	s, err := Open(context.Background(), cfg, opts...)
	if err != nil {
		Fatal(err)
	}
	h, err := handler(s)
	if err != nil {
		Fatal(err)
	}
	lambda.Start(flushing{inner: lambda.NewHandler(h), rec: rec, log: cfg.Log, sec: s.Security})
}

// The security events' EMF metric: a count per event, with the dimensions Function and
// Kind (security.Kinds).
const (
	MetricSecurityEvent = "SecurityEvent"
	DimKind             = "Kind"
)

// flushing writes the invocation's metrics as one EMF line to stdout before the answer
// leaves (Lambda may freeze the process right after), so CloudWatch turns them into
// metrics.
type flushing struct {
	inner lambda.Handler
	rec   *emf.Recorder
	log   *slog.Logger
	sec   *security.Recorder
}

func (f flushing) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := f.inner.Invoke(ctx, payload)
	// The tail of a burst of security events (a failure is logged by the recorder).
	_ = f.sec.FlushDue(ctx)
	if ferr := f.rec.Flush(os.Stdout); ferr != nil {
		f.log.Warn("metrics not written", "err", ferr)
	}
	return out, err
}

// LambdaSDK is the AWS SDK configuration of a function, from the environment Lambda gives
// it: the role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
// AWS_REGION, and AWS_ENDPOINT_URL when an emulator runs the function. It is not
// config.LoadDefaultConfig because that links every credential source (SSO, STS, IMDS,
// shared files): about a megabyte a function that Lambda never uses.
func LambdaSDK(getenv func(string) string) aws.Config {
	c := aws.Config{
		Region:      cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		Credentials: credentials.NewStaticCredentialsProvider(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")),
	}
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" {
		c.BaseEndpoint = aws.String(ep)
	}
	return c
}
