// Command dsc certifies a deployed stack's DSC key and publishes it: it reads the KMS
// key's public key, issues a DSC for it with a CSCA, and writes dsc.pem and trustlist.pem
// to the stack's trust bucket (wire.PublishDSC), where the functions read them.
//
// The CSCA is read from --csca-dir (csca.pem and csca.key, PEM). With --create-csca and an
// empty directory a new self-signed CSCA is made there: for the emulator and test stacks
// only -- a real CSCA's key lives offline, and its certificate is what other countries
// trust.
//
//	go run ./.ci/emulator/dsc --bucket BUCKET --key KEY_ARN --csca-dir DIR [--create-csca]
//
// It uses the AWS SDK's default configuration (AWS_ENDPOINT_URL for an emulator).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/store/awskms"
	"github.com/vaxpass/vaxpass/shared/wire"
)

func main() {
	bucket := flag.String("bucket", "", "the stack's trust bucket (output TrustBucket)")
	keyID := flag.String("key", "", "the DSC's KMS key (output DscKeyArn)")
	dir := flag.String("csca-dir", "", "directory of csca.pem and csca.key")
	create := flag.Bool("create-csca", false, "create a self-signed CSCA in --csca-dir if it has none (test stacks only)")
	years := flag.Int("years", 2, "DSC validity in years (it must outlive every certificate it signs: 12 months + renewals)")
	flag.Parse()
	if *bucket == "" || *keyID == "" || *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *bucket, *keyID, *dir, *create, *years); err != nil {
		fmt.Fprintln(os.Stderr, "dsc:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bucket, keyID, dir string, create bool, years int) error {
	csca, cscaKey, err := loadCSCA(dir, create)
	if err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	signer, err := awskms.NewSigner(kms.NewFromConfig(cfg), keyID, awskms.Options{})
	if err != nil {
		return err
	}
	pub, err := signer.PublicKey(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Add(-time.Minute)
	notAfter := now.AddDate(years, 0, 0)
	if notAfter.After(csca.NotAfter) {
		notAfter = csca.NotAfter
	}
	out, err := wire.PublishDSC(ctx, s3.NewFromConfig(cfg), bucket, pub, csca, cscaKey, trust.DSCOptions{NotBefore: now, NotAfter: notAfter})
	if err != nil {
		return err
	}
	fmt.Printf("published DSC kid %s (valid to %s); trust list holds %d DSC(s)\n",
		base64.StdEncoding.EncodeToString(trust.KID(out.DSC.Raw)), out.DSC.NotAfter.Format(time.DateOnly), out.TrustList.Len())
	return nil
}

func loadCSCA(dir string, create bool) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, "csca.pem"), filepath.Join(dir, "csca.key")
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) && create {
		return createCSCA(dir, certPath, keyPath)
	}
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", keyPath)
	}
	return cert, key, nil
}

func createCSCA(dir, certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	nb := time.Now().UTC().Add(-time.Hour)
	cert, err := trust.CreateCSCA(key, trust.CSCAOptions{NotBefore: nb, NotAfter: nb.AddDate(4, 0, 0)})
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, nil, err
	}
	fmt.Printf("created test CSCA %s\n", certPath)
	return cert, key, nil
}
