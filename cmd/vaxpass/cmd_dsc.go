package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

func init() {
	register("dsc", "certify the DSC with the offline CSCA: dsc publish --csca-dir DIR [--data DIR | --backend aws --stack NAME]", runDSC)
}

// The stack outputs dsc publish needs (template.yaml).
const (
	outputDSCKey      = "DscKeyArn"
	outputTrustBucket = "TrustBucket"
)

// dscDefaultDays is a new DSC's validity: two years, as on the embedded backend
// (filekeys.DSCValidityYears).
const dscDefaultDays = 730

const dscUsage = `usage: vaxpass dsc publish --csca-dir DIR [--data DIR | --backend aws [--stack NAME]] [--valid-days N]

Embedded backend (--data DIR): certifies a new DSC key of the data directory with the
CSCA of DIR (made by vaxpass csca create), archives the current DSC (it stays on the trust
list while valid) and writes the CSCA's certificate, never its key, to the data directory.
Restart the server to sign with the new DSC. A data directory started without a DSC has a
one-time demo CSCA whose key was discarded: publish once with a real CSCA before use.

AWS (--backend aws): certifies the deployed stack's DSC key (its KMS key, output
` + outputDSCKey + `) with the CSCA of DIR and publishes the DSC and the trust list to the stack's
trust bucket (output ` + outputTrustBucket + `): dsc.pem, the DSC central signing uses, and
trustlist.pem, every DSC published so far plus the new one. The functions see them within
their cache time.

Run it once after the first deploy, and again to roll the DSC over before it gets too
short: a certificate is valid 12 months and never outlives the DSC that signed it, so a
DSC must have 13 months left to be published. Earlier DSCs stay on the trust list, so the
certificates they signed still verify.

The stack is --stack, else $` + awsstack.EnvStack + `. Credentials, region and endpoint come from the
AWS SDK's environment (AWS_ENDPOINT_URL for an emulator). The CSCA key is read locally and
never sent anywhere. Exit 0 published, 1 failure, 2 usage error.
`

// runDSC is `vaxpass dsc publish --backend aws --stack NAME --csca-dir DIR [--valid-days N]`.
func runDSC(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "publish" {
		fmt.Fprint(e.stderr, dscUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("dsc publish", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	cscaDir := fs.String("csca-dir", "", "directory of "+cscaCertFile+" and "+cscaKeyFile+" (vaxpass csca create)")
	validDays := fs.Int("valid-days", dscDefaultDays, "validity of the new DSC in days (cut to the CSCA's end)")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, dscUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "dsc publish: "+format+"\n", a...)
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "dsc publish: "+format+"\n", a...)
		return 1
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case g.backend != "aws" && g.backend != "embedded":
		return usageErr("--backend must be embedded or aws, not %q", g.backend)
	case *cscaDir == "":
		return usageErr("--csca-dir DIR is required (make one with: vaxpass csca create --out DIR)")
	case *validDays < 1 || *validDays > 3660:
		return usageErr("--valid-days must be 1 to 3660")
	}
	now := time.Now().UTC()
	if need := filekeys.DSCMinRemaining(now); now.Add(-cscaBackdate).AddDate(0, 0, *validDays).Before(need) {
		return usageErr("--valid-days %d is too short: a DSC must outlive the 12 months of every certificate it signs, "+
			"plus a month to roll over (end after %s)", *validDays, need.Format(time.DateOnly))
	}
	if g.backend == "embedded" {
		if inside, err := dirWithin(*cscaDir, g.dataDir); err != nil {
			return fail("%v", err)
		} else if inside {
			return usageErr("--csca-dir %s is inside the data directory %s: keep the CSCA offline, outside it", *cscaDir, g.dataDir)
		}
	}
	stack := ""
	if g.backend == "aws" {
		var err error
		if stack, err = awsstack.StackName(g.stack, os.Getenv); err != nil {
			return usageErr("%v", err)
		}
	}

	// Everything local is checked before the first AWS call.
	csca, cscaKey, err := loadCSCADir(*cscaDir)
	if err != nil {
		return fail("CSCA: %v", err)
	}
	opt, err := dscValidity(csca, now, *validDays)
	if err != nil {
		return fail("%v", err)
	}
	if g.backend == "embedded" {
		c, err := filekeys.PublishDSC(g.dataDir, csca, cscaKey, opt, now)
		if err != nil {
			return fail("data directory %s: %v", g.dataDir, err)
		}
		fmt.Fprintf(e.stdout, "published DSC kid %s, valid %s to %s, to %s; restart the server to use it\n",
			base64.StdEncoding.EncodeToString(trust.KID(c.DSC.Raw)), c.DSC.NotBefore.Format(time.DateOnly),
			c.DSC.NotAfter.Format(time.DateOnly), g.dataDir)
		fmt.Fprintf(e.stdout, "trust list: %d DSC(s); roll the DSC over (run this again) before %s\n",
			c.TrustList.Len(), rollOverBy(c.DSC.NotAfter).Format(time.DateOnly))
		return 0
	}

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fail("AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return fail("no AWS region: set AWS_REGION (or a profile with a region)")
	}
	outputs, err := awsstack.Outputs(ctx, cloudformation.NewFromConfig(cfg), stack)
	if err != nil {
		return fail("%v", err)
	}
	keyID, bucket := outputs[outputDSCKey], outputs[outputTrustBucket]
	if keyID == "" || bucket == "" {
		return fail("stack %q has no %s or %s output: is it a vaxpass stack?", stack, outputDSCKey, outputTrustBucket)
	}
	signer, err := awskms.NewSigner(kms.NewFromConfig(cfg), keyID, awskms.Options{})
	if err != nil {
		return fail("DSC key %s: %v", keyID, err)
	}
	pub, err := signer.PublicKey(ctx)
	if err != nil {
		return fail("DSC key %s: %v", keyID, err)
	}
	out, err := cloud.PublishDSC(ctx, s3.NewFromConfig(cfg), bucket, pub, csca, cscaKey, opt)
	if err != nil {
		return fail("stack %q: %v", stack, err)
	}
	fmt.Fprintf(e.stdout, "published DSC kid %s of %s, valid %s to %s, to s3://%s\n",
		base64.StdEncoding.EncodeToString(trust.KID(out.DSC.Raw)), keyID,
		out.DSC.NotBefore.Format(time.DateOnly), out.DSC.NotAfter.Format(time.DateOnly), bucket)
	fmt.Fprintf(e.stdout, "trust list: %d DSC(s); roll the DSC over (run this again) before %s\n",
		out.TrustList.Len(), rollOverBy(out.DSC.NotAfter).Format(time.DateOnly))
	return 0
}

// dscValidity is the new DSC's subject (the CSCA's country) and validity: from an hour
// ago (clocks slightly behind; not before the CSCA) for days days, cut to the CSCA's end.
// A DSC that would not cover a certificate issued now plus a month
// (filekeys.DSCMinRemaining, as on the embedded backend) is refused: signing with it
// would soon fail.
func dscValidity(csca *x509.Certificate, now time.Time, days int) (trust.DSCOptions, error) {
	var opt trust.DSCOptions
	if now.Before(csca.NotBefore) || !now.Before(csca.NotAfter) {
		return opt, fmt.Errorf("the CSCA %q is valid %s to %s, not now", csca.Subject.CommonName,
			csca.NotBefore.Format(time.RFC3339), csca.NotAfter.Format(time.RFC3339))
	}
	if len(csca.Subject.Country) != 1 {
		return opt, fmt.Errorf("the CSCA %q has %d subject countries, want one", csca.Subject.CommonName, len(csca.Subject.Country))
	}
	nb := now.Add(-cscaBackdate)
	if nb.Before(csca.NotBefore) {
		nb = csca.NotBefore
	}
	na := nb.AddDate(0, 0, days)
	need := filekeys.DSCMinRemaining(now)
	if na.Before(need) {
		return opt, fmt.Errorf("a DSC of %d days would end %s, before %s: a DSC must outlive the 12 months of every certificate it signs, plus a month to roll over",
			days, na.Format(time.DateOnly), need.Format(time.DateOnly))
	}
	if na.After(csca.NotAfter) {
		na = csca.NotAfter
	}
	if na.Before(need) {
		return opt, fmt.Errorf("the CSCA %q ends %s, too soon for a DSC that must last until %s: make a new CSCA (vaxpass csca create)",
			csca.Subject.CommonName, csca.NotAfter.Format(time.DateOnly), need.Format(time.DateOnly))
	}
	country := csca.Subject.Country[0]
	opt.Subject = pkix.Name{Country: []string{country}, CommonName: country + " DGC DSC"}
	opt.NotBefore, opt.NotAfter = nb, na
	return opt, nil
}

// rollOverBy is the last day a DSC ending notAfter still covers a new certificate with
// the margin dsc publish asks for.
func rollOverBy(notAfter time.Time) time.Time {
	return notAfter.AddDate(0, -13, 0)
}
