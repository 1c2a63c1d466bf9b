package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/dcc"
	"github.com/vaxpass/vaxpass/shared/hcert"
	"github.com/vaxpass/vaxpass/shared/qr"
	"github.com/vaxpass/vaxpass/shared/trust"
)

func init() {
	register("verify", "decode and verify an HC1 string or QR image; print a JSON verdict", runVerify)
}

// verifyTrustListFile is the trust list of the embedded backend, inside the data directory.
const verifyTrustListFile = "trustlist.pem"

// verifyMaxTrustListBytes bounds the trust list file; the EU gateway's full list is ~2 MB.
const verifyMaxTrustListBytes = 16 << 20

// verifyVerdict is what `vaxpass verify` prints: one JSON object.
//
// Step names the check that failed (see verifyStep); reason is the full message.
// The decoded fields are present once the signature has verified, also when a
// later check failed (an expired certificate still shows when it expired); content
// that no trusted key vouches for is never shown.
type verifyVerdict struct {
	Valid     bool            `json:"valid"`
	Step      string          `json:"step,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	KID       string          `json:"kid,omitempty"` // base64, as on trust lists
	Algorithm string          `json:"alg,omitempty"`
	Issuer    string          `json:"issuer,omitempty"`
	IssuedAt  string          `json:"issued_at,omitempty"`
	ExpiresAt string          `json:"expires_at,omitempty"`
	Type      string          `json:"type,omitempty"` // vaccination, test or recovery
	DCC       json.RawMessage `json:"dcc,omitempty"`
}

// verifySteps maps the verifier's sentinel errors to the step names of the
// verdict, most specific first.
var verifySteps = []struct {
	err  error
	step string
}{
	{hcert.ErrPrefix, "prefix"},
	{hcert.ErrBase45, "base45"},
	{hcert.ErrInflate, "inflate"},
	{hcert.ErrCOSE, "cose"},
	{hcert.ErrTrust, "trust"},
	{hcert.ErrUnknownKID, "unknown_kid"},
	{hcert.ErrSignature, "signature"},
	{hcert.ErrClaims, "claims"},
	{hcert.ErrNotYetValid, "not_yet_valid"},
	{hcert.ErrExpired, "expired"},
	{hcert.ErrDSCValidity, "dsc_validity"},
	{hcert.ErrExpiration, "expiration"},
	{hcert.ErrKeyUsage, "key_usage"},
	{dcc.ErrSchema, "schema"},
	{dcc.ErrValueSet, "value_set"},
	{hcert.ErrPayload, "payload"},
	{hcert.ErrDCC, "dcc"},
}

func verifyStep(err error) string {
	for _, s := range verifySteps {
		if errors.Is(err, s.err) {
			return s.step
		}
	}
	return "verify"
}

// verifyPayload is the DCC content check: the official JSON schema, then the value sets.
func verifyPayload(doc []byte) error {
	if err := dcc.ValidateJSON(doc); err != nil {
		return err
	}
	return dcc.CheckValueSets(doc)
}

// runVerify is `vaxpass verify [--trust FILE.pem] [--qr FILE.png] [--at RFC3339] HC1|-`.
func runVerify(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	trustFile := fs.String("trust", "", "trust list: a PEM bundle of DSCs, or the JSON of GET /v1/trustlist (default: <data>/"+verifyTrustListFile+")")
	qrFile := fs.String("qr", "", "read the HC1 string from the QR code in this PNG or JPEG image")
	at := fs.String("at", "", "verify as at this time (RFC 3339) instead of now")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass verify [--trust FILE.pem] [--at RFC3339] HC1|-\n"+
			"       vaxpass verify [--trust FILE.pem] [--at RFC3339] --qr FILE.png\n\n"+
			"Decodes and verifies an HC1 string (the argument, or stdin for -) or the QR code\n"+
			"in an image, and prints a JSON verdict. Without --trust the trust list is\n"+
			"<data>/%s. Exit status: 0 valid, 1 not valid (or the check could not run),\n"+
			"2 usage error.\n\n", verifyTrustListFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "verify: "+format+"\n", a...)
		return 2
	}
	if g.backend != "embedded" && g.backend != "aws" {
		return usageErr("--backend must be embedded or aws, not %q", g.backend)
	}
	switch {
	case *qrFile != "" && fs.NArg() > 0:
		return usageErr("give either --qr FILE or an HC1 argument, not both")
	case *qrFile == "" && fs.NArg() == 0:
		fs.Usage()
		return 2
	case fs.NArg() > 1:
		return usageErr("unexpected argument %q (quote the HC1 string: it may contain spaces)", fs.Arg(1))
	}
	now := time.Now
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageErr("--at: %v", err)
		}
		now = func() time.Time { return t }
	}
	path := *trustFile
	if path == "" {
		if g.backend == "aws" {
			return usageErr("--backend aws has no local trust list; pass --trust FILE.pem")
		}
		path = filepath.Join(g.dataDir, verifyTrustListFile)
	}

	// The trust list is the verifier's own setup: when it is missing or broken no
	// verdict can be given, so this is an error on stderr, not an invalid verdict.
	list, err := verifyLoadTrustList(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "verify: %v\n", err)
		return 1
	}

	v := verifyVerdict{}
	hc1, step, err := verifyReadHC1(e.stdin, fs.Arg(0), *qrFile)
	if err == nil {
		verifier := hcert.Verifier{Trust: list, Now: now, CheckPayload: verifyPayload}
		var res *hcert.Result
		res, err = verifier.Verify(ctx, hc1)
		step = verifyStep(err)
		if res != nil {
			v.fill(res, hc1)
		}
	}
	if err == nil {
		v.Valid = true
	} else {
		v.Step, v.Reason = step, err.Error()
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false) // "<" in fnt/gnt stays readable
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(e.stderr, "verify: write verdict: %v\n", err)
		return 1
	}
	if !v.Valid {
		return 1
	}
	return 0
}

// fill copies the decoded fields of a Result whose signature verified.
func (v *verifyVerdict) fill(r *hcert.Result, hc1 string) {
	v.KID = base64.StdEncoding.EncodeToString(r.KID)
	v.Algorithm = r.Algorithm.String()
	v.Issuer = r.Issuer
	if !r.IssuedAt.IsZero() {
		v.IssuedAt = r.IssuedAt.UTC().Format(time.RFC3339)
	}
	if !r.ExpiresAt.IsZero() {
		v.ExpiresAt = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if r.Type.Valid() {
		v.Type = r.Type.String()
	}
	doc := r.DCC
	if doc == nil {
		// The verifier stops at the first failed check (expiry, say) before
		// converting the DCC; the signature has verified, so show the content.
		doc = verifyDecodeDCC(hc1)
	}
	if json.Valid(doc) {
		v.DCC = doc
	}
}

// verifyDecodeDCC runs the decoding steps again to get the DCC JSON; nil when any fails.
func verifyDecodeDCC(hc1 string) []byte {
	text, err := hcert.Unprefix(hc1)
	if err != nil {
		return nil
	}
	z, err := hcert.DecodeBase45(text)
	if err != nil {
		return nil
	}
	raw, err := hcert.Inflate(z)
	if err != nil {
		return nil
	}
	msg, err := hcert.ParseCOSE(raw)
	if err != nil {
		return nil
	}
	cwt, err := hcert.ParseClaims(msg.Payload)
	if err != nil {
		return nil
	}
	doc, err := hcert.DCCToJSON(cwt.DCC)
	if err != nil {
		return nil
	}
	return doc
}

// verifyReadHC1 returns the HC1 text from the argument, from stdin ("-": one trailing
// newline is dropped, nothing else; spaces are Base45 symbols) or from a QR image.
// Failures are verdicts: the step is "input" or "qr".
func verifyReadHC1(stdin io.Reader, arg, qrFile string) (hc1, step string, err error) {
	if qrFile != "" {
		text, err := qr.DecodeFile(qrFile)
		if err != nil {
			return "", "qr", err
		}
		return text, "", nil
	}
	if arg != "-" {
		return arg, "", nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, hcert.MaxHC1Length+3))
	if err != nil {
		return "", "input", fmt.Errorf("read stdin: %w", err)
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, "", nil
}

// verifyLoadTrustList reads a PEM bundle of DSCs, or a JSON trust list in the contract
// shape (told apart by the first non-space byte).
func verifyLoadTrustList(path string) (*trust.List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust list: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, verifyMaxTrustListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("trust list %s: %w", path, err)
	}
	if len(data) > verifyMaxTrustListBytes {
		return nil, fmt.Errorf("trust list %s: larger than %d bytes", path, verifyMaxTrustListBytes)
	}
	var list *trust.List
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		list, err = trust.ParseJSON(data)
	} else {
		list, err = trust.ParsePEM(data)
	}
	if err != nil {
		return nil, fmt.Errorf("trust list %s: %w", path, err)
	}
	return list, nil
}
