package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
)

// Crypto is the crypto-only bound: the rate of the bare operations a certificate needs,
// each run on Workers goroutines (every core, as the pipeline uses them) over the payloads
// the run produced.
type Crypto struct {
	Workers int `json:"workers"`
	// Seconds each operation was measured, in slices taken in turn (the median counts).
	Seconds float64 `json:"seconds_per_operation"`
	// Operations per second over all workers: ES256 of a facility's signed content,
	// its verification, ES256 of an HC1 Sig_structure (the COSE ToBeSigned).
	FacilitySignPerSec   float64 `json:"facility_sign_per_second"`
	FacilityVerifyPerSec float64 `json:"facility_verify_per_second"`
	CentralSignPerSec    float64 `json:"central_sign_per_second"`
	PayloadBytes         int     `json:"facility_payload_bytes"`
	ToBeSignedBytes      int     `json:"hc1_to_be_signed_bytes"`
	// CertificatesPerSec is the bound: certificates a second if each took exactly one
	// facility signature, one verification and one central signature and nothing else.
	CertificatesPerSec float64 `json:"certificates_per_second"`
	// RunMixPerSec is the bound for the operations this run actually needed (people
	// vaccinated at two sites have two facility signatures; a second signature can
	// re-issue a certificate): certificates / (their crypto time alone).
	RunMixPerSec float64 `json:"run_mix_certificates_per_second"`
}

// finish fills the bounds from the rates and the run's operation counts.
func (c *Crypto) finish(facilitySigs, centralSigs, certificates int) {
	if c.FacilitySignPerSec <= 0 || c.FacilityVerifyPerSec <= 0 || c.CentralSignPerSec <= 0 {
		return
	}
	c.CertificatesPerSec = 1 / (1/c.FacilitySignPerSec + 1/c.FacilityVerifyPerSec + 1/c.CentralSignPerSec)
	secs := float64(facilitySigs)/c.FacilitySignPerSec + float64(facilitySigs)/c.FacilityVerifyPerSec + float64(centralSigs)/c.CentralSignPerSec
	if secs > 0 {
		c.RunMixPerSec = float64(certificates) / secs
	}
}

// measureCrypto times the three operations with the run's own keys over a real facility
// payload and a real certificate's Sig_structure taken from the store.
func (r *runner) measureCrypto(ctx context.Context) (Crypto, error) {
	c := Crypto{Workers: r.cfg.Workers, Seconds: r.cfg.CryptoDuration.Seconds()}
	certs, _, err := r.sys.Store.ListCertificates(ctx, "", 1)
	if err != nil {
		return c, err
	}
	if len(certs) == 0 {
		return c, errors.New("crypto bound: no certificate was issued to take payloads from")
	}
	sigs, err := r.sys.Store.FacilitySignatures(ctx, certs[0].PersonID)
	if err != nil || len(sigs) == 0 {
		return c, fmt.Errorf("crypto bound: facility signature of a certified person: %v", err)
	}
	fsig := sigs[0]
	tbs, err := toBeSigned(certs[0].HC1)
	if err != nil {
		return c, fmt.Errorf("crypto bound: %w", err)
	}
	c.PayloadBytes, c.ToBeSignedBytes = len(fsig.Payload), len(tbs)

	signer, err := r.sys.Keys.FacilitySigner(ctx, fsig.FacilityID)
	if err != nil {
		return c, err
	}
	pub, err := r.sys.Keys.FacilityPublicKey(ctx, fsig.FacilityID)
	if err != nil {
		return c, err
	}
	central := r.sys.Central.Signer

	ops := []func() error{
		func() error {
			_, err := signer.Sign(ctx, fsig.Payload)
			return err
		},
		func() error {
			// What central signing does with each facility signature (a page's batch
			// signature and the person's inclusion proof).
			_, err := signing.SignedOf(fsig).Verify(pub)
			return err
		},
		func() error {
			_, err := central.Sign(ctx, tbs)
			return err
		},
	}
	// Other work on the machine comes and goes: each operation is measured in
	// cryptoRounds slices taken in turn, and the median slice counts.
	rates := make([][]float64, len(ops))
	for range cryptoRounds {
		for i, op := range ops {
			v, err := r.rate(ctx, op, r.cfg.CryptoDuration/cryptoRounds)
			if err != nil {
				return c, err
			}
			rates[i] = append(rates[i], v)
		}
	}
	c.FacilitySignPerSec, c.FacilityVerifyPerSec, c.CentralSignPerSec = median(rates[0]), median(rates[1]), median(rates[2])
	return c, nil
}

// cryptoRounds is how many slices each crypto-only operation is measured in.
const cryptoRounds = 5

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// rate runs op on every worker for d and answers operations/s.
func (r *runner) rate(ctx context.Context, op func() error, d time.Duration) (float64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := op(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(firstErr, ctx.Err()); err != nil {
		return 0, err
	}
	return float64(n.Load()) / elapsed.Seconds(), nil
}

// toBeSigned recovers the COSE Sig_structure an HC1 string's signature covers.
func toBeSigned(hc1 string) ([]byte, error) {
	msg, err := hcert.Open(hc1)
	if err != nil {
		return nil, err
	}
	return msg.SigStructure(), nil
}
