package vaxpass

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

// DetailsHash fingerprints the personal details the matcher judges (not the dose itself),
// so that a re-sent or re-signed record is not matched again but a corrected one is.
func DetailsHash(r *dose.Record) string {
	h := sha256.New()
	for _, s := range []string{r.FullName, r.DOB, r.Gender, r.IDNumber} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
