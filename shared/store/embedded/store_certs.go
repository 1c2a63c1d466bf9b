package embedded

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RevokedSuperseded is the RevokedReason of a certificate that a new one replaced.
const RevokedSuperseded = "superseded"

// PutFacilitySignature implements signing.CentralStore: it keeps, per person and
// facility, the signature with the newest SignedAt (an older or equal one replaces
// nothing newer; re-storing the same one is a no-op).
func (s *Store) PutFacilitySignature(ctx context.Context, sig vaxpass.FacilitySignature) error {
	if err := errors.Join(storeCheckPart("person_id", sig.PersonID, true), storeCheckPart("facility_id", sig.FacilityID, true)); err != nil {
		return fmt.Errorf("embedded: put facility signature: %w", err)
	}
	v, err := json.Marshal(sig)
	if err != nil {
		return fmt.Errorf("embedded: put facility signature: %w", err)
	}
	err = s.storeBatch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(storeBucketFacilitySigs)
		k := storeKey(sig.PersonID, sig.FacilityID)
		if old := b.Get(k); old != nil {
			var prev vaxpass.FacilitySignature
			if err := json.Unmarshal(old, &prev); err != nil {
				return fmt.Errorf("%w: facility signature: %w", storeErrCorrupt, err)
			}
			if prev.SignedAt.After(sig.SignedAt) {
				return nil
			}
		} else if err := statsFirstSignature(tx, sig.PersonID, sig.FacilityID); err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("embedded: put facility signature of facility %s: %w", sig.FacilityID, err)
	}
	return nil
}

// FacilitySignatures implements signing.CentralStore: the person's stored signatures,
// one per facility, in facility order (none: an empty slice).
func (s *Store) FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error) {
	if err := storeCheckPart("person_id", personID, true); err != nil {
		return nil, fmt.Errorf("embedded: facility signatures: %w", err)
	}
	out := []vaxpass.FacilitySignature{}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		prefix := storePrefix(personID)
		c := tx.Bucket(storeBucketFacilitySigs).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sig vaxpass.FacilitySignature
			if err := json.Unmarshal(v, &sig); err != nil {
				return fmt.Errorf("%w: facility signature: %w", storeErrCorrupt, err)
			}
			out = append(out, sig)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: facility signatures: %w", err)
	}
	return out, nil
}

// ActiveCertificate implements signing.CentralStore, lookup.CertReader and
// api.CertReader: the person's certificate in status issued, or vaxpass.ErrNotFound.
func (s *Store) ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error) {
	var c vaxpass.Certificate
	if err := storeCheckPart("person_id", personID, true); err != nil {
		return c, fmt.Errorf("embedded: active certificate: %w", err)
	}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(storeBucketCertActive).Get([]byte(personID))
		if id == nil {
			return vaxpass.ErrNotFound
		}
		var found bool
		var err error
		c, found, err = storeGetCert(tx, id)
		if err == nil && !found {
			err = fmt.Errorf("%w: active certificate pointer to a missing certificate", storeErrCorrupt)
		}
		return err
	})
	if err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("embedded: active certificate: %w", err)
	}
	return c, nil
}

// CertificateByUVCI implements lookup.CertReader: the certificate (in any status) whose
// UVCI is uvci, compared case-insensitively, or vaxpass.ErrNotFound.
func (s *Store) CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error) {
	var c vaxpass.Certificate
	if err := storeCheckPart("uvci", uvci, true); err != nil {
		return c, fmt.Errorf("embedded: certificate by UVCI: %w", err)
	}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		var found bool
		var err error
		c, found, err = storeGetCert(tx, storeCertKey(uvci))
		if err == nil && !found {
			err = vaxpass.ErrNotFound
		}
		return err
	})
	if err != nil {
		return vaxpass.Certificate{}, fmt.Errorf("embedded: certificate by UVCI: %w", err)
	}
	return c, nil
}

// ReplaceCertificate implements signing.CentralStore in one transaction. next must be in
// status issued. With prev nil the person must have no active certificate; with prev set,
// prev must still be the person's active certificate at prev.Version. Otherwise, and when
// next's UVCI is already taken, the answer is vaxpass.ErrConflict and nothing is written.
//
// A next with a UVCI other than prev's supersedes it: prev is stored with status revoked,
// RevokedReason RevokedSuperseded, RevokedAt next.IssuedAt and Version+1, and next
// (Version as given, at least 1) becomes active. A next with prev's UVCI is a renewal of
// the same certificate (same UVCI, new iat/exp): it is stored in prev's place with
// prev.Version+1 and stays active.
func (s *Store) ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error {
	err := errors.Join(storeCheckPart("next.uvci", next.UVCI, true), storeCheckPart("next.person_id", next.PersonID, true))
	if err == nil && next.Status != vaxpass.CertIssued {
		err = fmt.Errorf("%w: next.status is %q, want %q", vaxpass.ErrInvalid, next.Status, vaxpass.CertIssued)
	}
	if err == nil && prev != nil && prev.PersonID != next.PersonID {
		err = fmt.Errorf("%w: prev and next belong to different people", vaxpass.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("embedded: replace certificate: %w", err)
	}
	nextKey := storeCertKey(next.UVCI)
	err = s.storeBatch(ctx, func(tx *bolt.Tx) error {
		active := tx.Bucket(storeBucketCertActive)
		cur := active.Get([]byte(next.PersonID))
		if prev == nil {
			if cur != nil {
				return fmt.Errorf("%w: the person already has an active certificate", vaxpass.ErrConflict)
			}
			return storeInsertActive(tx, next, nextKey)
		}
		if cur == nil || !bytes.Equal(cur, storeCertKey(prev.UVCI)) {
			return fmt.Errorf("%w: the certificate to replace is no longer the active one", vaxpass.ErrConflict)
		}
		stored, found, err := storeGetCert(tx, bytes.Clone(cur))
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: active certificate pointer to a missing certificate", storeErrCorrupt)
		}
		if stored.Version != prev.Version {
			return fmt.Errorf("%w: the certificate to replace is at version %d, not %d", vaxpass.ErrConflict, stored.Version, prev.Version)
		}
		if bytes.Equal(nextKey, cur) { // renewal in place
			renewed := next
			renewed.Version = stored.Version + 1
			return storePutCert(tx, &stored, &renewed)
		}
		revoked := stored
		revoked.Status = vaxpass.CertRevoked
		revoked.RevokedReason = RevokedSuperseded
		revoked.RevokedAt = next.IssuedAt
		revoked.Version = stored.Version + 1
		if err := storePutCert(tx, &stored, &revoked); err != nil {
			return err
		}
		return storeInsertActive(tx, next, nextKey)
	})
	if err != nil {
		return fmt.Errorf("embedded: replace certificate: %w", err)
	}
	return nil
}

// storeInsertActive stores a new certificate and makes it its person's active one.
func storeInsertActive(tx *bolt.Tx, c vaxpass.Certificate, key []byte) error {
	if tx.Bucket(storeBucketCerts).Get(key) != nil {
		return fmt.Errorf("%w: the UVCI is already taken", vaxpass.ErrConflict)
	}
	if c.Version < 1 {
		c.Version = 1
	}
	if err := storePutCert(tx, nil, &c); err != nil {
		return err
	}
	return tx.Bucket(storeBucketCertActive).Put([]byte(c.PersonID), key)
}

// RevokeCertificate revokes c (ops): conditional on c being stored in status issued at
// c.Version (vaxpass.ErrNotFound, vaxpass.ErrConflict otherwise), it is stored revoked
// with reason and at, Version+1, and the person has no active certificate any more.
func (s *Store) RevokeCertificate(ctx context.Context, c vaxpass.Certificate, reason string, at time.Time) error {
	if err := storeCheckPart("uvci", c.UVCI, true); err != nil {
		return fmt.Errorf("embedded: revoke certificate: %w", err)
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("embedded: revoke certificate: %w: empty reason", vaxpass.ErrInvalid)
	}
	key := storeCertKey(c.UVCI)
	err := s.storeUpdate(ctx, func(tx *bolt.Tx) error {
		stored, found, err := storeGetCert(tx, key)
		switch {
		case err != nil:
			return err
		case !found:
			return vaxpass.ErrNotFound
		case stored.Version != c.Version:
			return fmt.Errorf("%w: stored version %d, read version %d", vaxpass.ErrConflict, stored.Version, c.Version)
		case stored.Status != vaxpass.CertIssued:
			return fmt.Errorf("%w: certificate is %s", vaxpass.ErrConflict, stored.Status)
		}
		revoked := stored
		revoked.Status = vaxpass.CertRevoked
		revoked.RevokedReason = reason
		revoked.RevokedAt = at
		revoked.Version = stored.Version + 1
		if err := storePutCert(tx, &stored, &revoked); err != nil {
			return err
		}
		active := tx.Bucket(storeBucketCertActive)
		if bytes.Equal(active.Get([]byte(stored.PersonID)), key) {
			return active.Delete([]byte(stored.PersonID))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: revoke certificate: %w", err)
	}
	return nil
}

// CertificatesExpiringBefore lists the certificates in status issued whose ExpiresAt is
// before t, by ExpiresAt then UVCI, at most limit, from cursor ("" to start; otherwise
// the next of a previous call). next is "" when there are no more.
func (s *Store) CertificatesExpiringBefore(ctx context.Context, t time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	return s.CertificatesExpiringBetween(ctx, time.Time{}, t, cursor, limit)
}

// CertificatesExpiringBetween is CertificatesExpiringBefore(to) from from on: the
// certificates in status issued with from <= ExpiresAt < to (from zero: no lower bound).
func (s *Store) CertificatesExpiringBetween(ctx context.Context, from, to time.Time, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	if err := storeCheckLimit(limit); err != nil {
		return nil, "", fmt.Errorf("embedded: certificates expiring: %w", err)
	}
	var start []byte
	if cursor != "" {
		if start, err = base64.RawURLEncoding.DecodeString(cursor); err != nil || len(start) < 8 {
			return nil, "", fmt.Errorf("embedded: certificates expiring: %w: malformed cursor", vaxpass.ErrInvalid)
		}
	}
	end := storeTimeKey(to)
	var lower []byte
	if !from.IsZero() {
		lower = storeTimeKey(from)
	}
	err = s.storeView(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(storeBucketCertExpiry).Cursor()
		var k []byte
		switch {
		case start != nil && (lower == nil || bytes.Compare(start, lower) >= 0):
			if k, _ = c.Seek(start); bytes.Equal(k, start) {
				k, _ = c.Next()
			}
		case lower != nil:
			k, _ = c.Seek(lower)
		default:
			k, _ = c.First()
		}
		var last []byte
		for ; k != nil && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
			if len(certs) == limit {
				next = base64.RawURLEncoding.EncodeToString(last)
				return nil
			}
			cert, found, err := storeGetCert(tx, k[8:])
			if err == nil && !found {
				err = fmt.Errorf("%w: expiry index points to a missing certificate", storeErrCorrupt)
			}
			if err != nil {
				return err
			}
			certs = append(certs, cert)
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("embedded: certificates expiring: %w", err)
	}
	return certs, next, nil
}

// LatestExpiryBefore is the latest ExpiresAt of a certificate in status issued that
// expires before t (false: none).
func (s *Store) LatestExpiryBefore(ctx context.Context, t time.Time) (latest time.Time, found bool, err error) {
	end := storeTimeKey(t)
	err = s.storeView(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(storeBucketCertExpiry).Cursor()
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		}
		for ; k != nil && bytes.Compare(k[:8], end) >= 0; k, _ = c.Prev() {
		}
		if k == nil {
			return nil
		}
		cert, ok, err := storeGetCert(tx, k[8:])
		if err == nil && !ok {
			err = fmt.Errorf("%w: expiry index points to a missing certificate", storeErrCorrupt)
		}
		if err != nil {
			return err
		}
		latest, found = cert.ExpiresAt, true
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("embedded: latest expiry: %w", err)
	}
	return latest, found, nil
}

// ListCertificates lists every stored certificate (any status) by upper-case UVCI, at
// most limit, from cursor ("" to start; otherwise the next of a previous call). next is
// "" when there are no more.
func (s *Store) ListCertificates(ctx context.Context, cursor string, limit int) (certs []vaxpass.Certificate, next string, err error) {
	if err := storeCheckLimit(limit); err != nil {
		return nil, "", fmt.Errorf("embedded: list certificates: %w", err)
	}
	err = s.storeView(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(storeBucketCerts).Cursor()
		k, v := storeSeekAfter(c, nil, cursor)
		for ; k != nil; k, v = c.Next() {
			if len(certs) == limit {
				next = string(storeCertKey(certs[len(certs)-1].UVCI))
				return nil
			}
			cert, err := storeDecodeCert(v)
			if err != nil {
				return err
			}
			certs = append(certs, cert)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("embedded: list certificates: %w", err)
	}
	return certs, next, nil
}

// CertificateCounts counts the stored certificates by status as seen at now:
// vaxpass.CertIssued (issued and not expired), vaxpass.CertExpired (issued, expired at
// now) and vaxpass.CertRevoked. Counting the expired ones reads the expiry index up to now.
func (s *Store) CertificateCounts(ctx context.Context, now time.Time) (map[string]int, error) {
	counts := map[string]int{vaxpass.CertIssued: 0, vaxpass.CertExpired: 0, vaxpass.CertRevoked: 0}
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(storeBucketMeta)
		issued := int(storeReadCounter(meta, storeCertCounter(vaxpass.CertIssued)))
		counts[vaxpass.CertRevoked] = int(storeReadCounter(meta, storeCertCounter(vaxpass.CertRevoked)))
		// Expired at now: ExpiresAt <= now, i.e. keys before now+1ns.
		end := storeTimeKey(now.Add(1))
		c := tx.Bucket(storeBucketCertExpiry).Cursor()
		expired := 0
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
			expired++
			if expired%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		counts[vaxpass.CertExpired] = expired
		counts[vaxpass.CertIssued] = issued - expired
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: certificate counts: %w", err)
	}
	return counts, nil
}

// storePutCert writes c (old is the stored version it replaces, nil for a new one) and
// keeps the expiry index, the status counters and the dashboard's counters in step.
func storePutCert(tx *bolt.Tx, old, c *vaxpass.Certificate) error {
	if err := statsCountCert(tx, old, c); err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode certificate: %w", err)
	}
	key := storeCertKey(c.UVCI)
	if err := tx.Bucket(storeBucketCerts).Put(key, v); err != nil {
		return err
	}
	expiry := tx.Bucket(storeBucketCertExpiry)
	if old != nil {
		if old.Status == vaxpass.CertIssued {
			if err := expiry.Delete(append(storeTimeKey(old.ExpiresAt), key...)); err != nil {
				return err
			}
		}
		if err := storeCounter(tx, storeCertCounter(old.Status), -1); err != nil {
			return err
		}
	}
	if c.Status == vaxpass.CertIssued {
		if err := expiry.Put(append(storeTimeKey(c.ExpiresAt), key...), nil); err != nil {
			return err
		}
	}
	return storeCounter(tx, storeCertCounter(c.Status), 1)
}

func storeCertCounter(status string) string { return "certs_" + status }

// storeCertKey is the key of a UVCI: upper case, so lookups ignore case.
func storeCertKey(uvci string) []byte { return []byte(strings.ToUpper(uvci)) }

func storeGetCert(tx *bolt.Tx, key []byte) (c vaxpass.Certificate, found bool, err error) {
	v := tx.Bucket(storeBucketCerts).Get(key)
	if v == nil {
		return c, false, nil
	}
	c, err = storeDecodeCert(v)
	return c, err == nil, err
}

func storeDecodeCert(v []byte) (vaxpass.Certificate, error) {
	var c vaxpass.Certificate
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("%w: certificate: %w", storeErrCorrupt, err)
	}
	return c, nil
}
