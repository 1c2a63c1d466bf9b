package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
)

func init() {
	register("verify", "decode and verify an HC1 string or QR image; print a JSON verdict", runVerify)
}

// verifyTrustListFile is the trust list of the embedded backend, inside the data directory.
const verifyTrustListFile = "trustlist.pem"

// verifyMaxTrustListBytes bounds the trust list file; the EU gateway's full list is ~2 MB.
const verifyMaxTrustListBytes = 16 << 20

// runVerify is `vaxpass verify [--trust FILE.pem] [--qr FILE.png] [--at RFC3339] HC1|-`.
func runVerify(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	trustFile := fs.String("trust", "", "trust list: a PEM bundle of DSCs, or the JSON of GET /v1/trustlist (default: <data>/"+verifyTrustListFile+")")
	qrFile := fs.String("qr", "", "read the HC1 string from the QR code in this PNG or JPEG image")
	at := fs.String("at", "", "verify as at this time (RFC 3339) instead of now")
	revFile := fs.String("revocations", "", "revocation list (the JSON of GET /v1/revocations) (default: "+verifyRevocationsFile+" beside the trust list, when present)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass verify [--trust FILE.pem] [--revocations FILE] [--at RFC3339] HC1|-\n"+
			"       vaxpass verify [--trust FILE.pem] [--revocations FILE] [--at RFC3339] --qr FILE.png\n\n"+
			"Decodes and verifies an HC1 string (the argument, or stdin for -) or the QR code\n"+
			"in an image, and prints a JSON verdict. Without --trust the trust list is\n"+
			"<data>/%s; the revocation list %s beside it (or --revocations FILE)\n"+
			"is checked when present, and a listed certificate's reason is \"revoked\".\n"+
			"With --backend aws --stack NAME they are the stack's published lists: the trust\n"+
			"list of its trust bucket and the revocation list GET /v1/revocations serves.\n"+
			"Exit status: 0 valid, 1 not valid (or the check could not run), 2 usage error.\n\n",
			verifyTrustListFile, verifyRevocationsFile)
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
	if err := g.check(); err != nil {
		return usageErr("%v", err)
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
	// The trust and revocation lists are the verifier's own setup: when one is missing
	// or broken no verdict can be given, so this is an error on stderr, not an invalid
	// verdict.
	var list *trust.List
	var revoked *revocation.Set
	var err error
	if g.backend == backendAWS && *trustFile == "" {
		list, revoked, err = verifyStackLists(ctx, g, *revFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "verify: stack %q: %v\n", g.stack, err)
			return 1
		}
	} else {
		path := *trustFile
		if path == "" {
			path = filepath.Join(g.dataDir, verifyTrustListFile)
		}
		if list, err = verifyLoadTrustList(path); err != nil {
			fmt.Fprintf(e.stderr, "verify: %v\n", err)
			return 1
		}
		revPath, revRequired := *revFile, true
		if revPath == "" {
			revPath, revRequired = filepath.Join(filepath.Dir(path), verifyRevocationsFile), false
		}
		if revoked, err = verifyLoadRevocations(revPath, revRequired); err != nil {
			fmt.Fprintf(e.stderr, "verify: %v\n", err)
			return 1
		}
	}

	hc1, step, err := verifyReadHC1(e.stdin, fs.Arg(0), *qrFile)
	var v verification.Verdict
	if err != nil {
		v = verification.Invalid(step, err)
	} else {
		svc := verification.Service{Trust: list, Now: now}
		if revoked != nil {
			svc.Revocations = revoked
		}
		v = svc.Verify(ctx, hc1)
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

// verifyStackLists reads a deployed stack's published trust list and revocation list (or
// the revocation list of revFile, when given).
func verifyStackLists(ctx context.Context, g globalFlags, revFile string) (*trust.List, *revocation.Set, error) {
	a, err := admin.Open(ctx, g.stack)
	if err != nil {
		return nil, nil, err
	}
	list, err := a.TrustList(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("trust list: %w", err)
	}
	if revFile != "" {
		set, err := verifyLoadRevocations(revFile, true)
		return list, set, err
	}
	set, err := a.Revocations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("revocation list: %w", err)
	}
	return list, set, nil
}

// verifyRevocationsFile is the published revocation list, beside the trust list.
const verifyRevocationsFile = "revocations.json"

// verifyLoadRevocations reads a published revocation list; a missing file that was not
// asked for by name is no list (nil), not an error.
func verifyLoadRevocations(path string, required bool) (*revocation.Set, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, revocation.MaxListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("revocation list %s: %w", path, err)
	}
	set, err := revocation.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("revocation list %s: %w", path, err)
	}
	return set, nil
}

// verifyReadHC1 returns the HC1 text from the argument, from stdin ("-": one trailing
// newline is dropped, nothing else; spaces are Base45 symbols) or from a QR image.
// Failures are verdicts: the step is "input" or "qr".
func verifyReadHC1(stdin io.Reader, arg, qrFile string) (hc1, step string, err error) {
	if qrFile != "" {
		text, err := qrscan.DecodeFile(qrFile)
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
