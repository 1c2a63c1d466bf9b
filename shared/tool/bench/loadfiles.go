package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// Files WriteLoadFiles writes for the lookup load run (tests/perf/load): one request a line.
const (
	LookupBodiesFile = "lookups.jsonl" // POST /v1/passports/lookup bodies
	QRPathsFile      = "qr_paths.txt"  // GET paths of the QR images
)

// LoadFiles says where WriteLoadFiles put its files and how many people they cover.
type LoadFiles struct {
	Lookups string `json:"lookups"`
	QRPaths string `json:"qr_paths"`
	People  int    `json:"people"`
}

// WriteLoadFiles writes, for up to max distinct people holding an active certificate,
// the lookup body a citizen would send (ID number, name and date of birth as the registry
// has them) and their QR image's path, so a load run asks for different people each time.
// The people are synthetic (shared/tool/synth), never real ones.
func WriteLoadFiles(ctx context.Context, sys *local.Local, dir string, max int) (LoadFiles, error) {
	lf := LoadFiles{Lookups: filepath.Join(dir, LookupBodiesFile), QRPaths: filepath.Join(dir, QRPathsFile)}
	// Owner-only: the lookups hold ID numbers and dates of birth (synthetic ones, but the
	// tool treats them as it would real ones).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return lf, err
	}
	lk, err := os.OpenFile(lf.Lookups, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return lf, err
	}
	defer lk.Close()
	qr, err := os.OpenFile(lf.QRPaths, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return lf, err
	}
	defer qr.Close()
	lw, qw := bufio.NewWriter(lk), bufio.NewWriter(qr)
	reg := sys.DB.Registry()
	cursor := ""
	for lf.People < max {
		certs, next, err := sys.Store.ListCertificates(ctx, cursor, scanPage)
		if err != nil {
			return lf, fmt.Errorf("list certificates: %w", err)
		}
		for _, c := range certs {
			if c.Status != vaxpass.CertIssued || lf.People >= max {
				continue
			}
			p, found, err := reg.Lookup(c.PersonID)
			if err != nil {
				return lf, fmt.Errorf("registry: %w", err)
			}
			if !found {
				continue
			}
			body, err := json.Marshal(lookup.Query{IDNumber: p.IDNumber, FullName: p.FullName, DOB: p.DOB})
			if err != nil {
				return lf, err
			}
			lw.Write(append(body, '\n'))
			qw.WriteString(httpapi.QRPath(c.UVCI) + "\n")
			lf.People++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if err := lw.Flush(); err != nil {
		return lf, err
	}
	if err := qw.Flush(); err != nil {
		return lf, err
	}
	if err := lk.Close(); err != nil {
		return lf, err
	}
	return lf, qr.Close()
}
