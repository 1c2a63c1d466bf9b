package filekeys_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
)

// A facility's key signs what the facility vouches for; central signing verifies it with
// the facility's public key.
func ExampleStore() {
	ctx := context.Background()
	data, _ := os.MkdirTemp("", "filekeys-example")
	defer os.RemoveAll(data)

	keys, err := filekeys.Open(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	keyID, err := keys.CreateFacilityKey("hcm-q1-01")
	if err != nil {
		fmt.Println(err)
		return
	}
	signer, _ := keys.FacilitySigner(ctx, "hcm-q1-01")
	payload, sig, err := facilitysig.Sign(ctx, signer, facilitysig.Content{
		PersonID: "079190001234", FacilityID: "hcm-q1-01", SignedAt: time.Date(2021, 9, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, _ := keys.FacilityPublicKey(ctx, "hcm-q1-01")
	_, err = facilitysig.Verify(pub, payload, sig)
	fmt.Println(keyID, "verifies:", err == nil)
	// Output: keys/facility-hcm-q1-01.pem verifies: true
}

// The first start certifies a DSC with a one-time demo CSCA (its key discarded) and writes
// the trust list; later starts load them.
func ExampleEnsureCentral() {
	data, _ := os.MkdirTemp("", "filekeys-example")
	defer os.RemoveAll(data)

	c, err := filekeys.EnsureCentral(data, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := filekeys.EnsureCentral(data, time.Now())
	fmt.Println("DSCs on the trust list:", c.TrustList.Len())
	fmt.Println("same DSC after a restart:", string(again.DSC.Raw) == string(c.DSC.Raw))
	for _, name := range []string{filekeys.TrustListPEMFile, filekeys.TrustListJSONFile, filepath.Join(filekeys.KeysDir, filekeys.DSCKeyFile)} {
		_, err := os.Stat(filepath.Join(data, name))
		fmt.Println(name, err == nil)
	}
	// Output:
	// DSCs on the trust list: 1
	// same DSC after a restart: true
	// trustlist.pem true
	// trustlist.json true
	// keys/dsc-key.pem true
}
