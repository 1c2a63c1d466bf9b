package wire

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// facilityID is what a facility ID may be: it names key files and KMS aliases.
var facilityID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// AddFacility registers a vaccination site, creates its signing key and returns its API
// key. Only the key's SHA-256 is stored: the caller shows the key once.
func (l *Local) AddFacility(ctx context.Context, id, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case !facilityID.MatchString(id):
		return "", fmt.Errorf("%w: facility id must be 1-64 of A-Z a-z 0-9 _ -", vaxpass.ErrInvalid)
	case name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name):
		return "", fmt.Errorf("%w: facility name must be 1-200 characters", vaxpass.ErrInvalid)
	}
	apiKey, hash, err := newAPIKey(l.opt.Rand)
	if err != nil {
		return "", err
	}
	// EnsureFacilityKey, not Create: a retry after a failed store write reuses the key.
	keyID, _, err := l.Keys.EnsureFacilityKey(id)
	if err != nil {
		return "", fmt.Errorf("facility signing key: %w", err)
	}
	f := vaxpass.Facility{ID: id, Name: name, APIKeyHash: hash, KeyID: keyID, CreatedAt: l.opt.Now().UTC()}
	if err := l.Store.AddFacility(ctx, f); err != nil {
		return "", err
	}
	return apiKey, nil
}

// newAPIKey makes a 256-bit API key and its SHA-256.
func newAPIKey(rand io.Reader) (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", nil, fmt.Errorf("api key: %w", err)
	}
	key = "vxp_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return key, sum[:], nil
}
