package lookup_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

type certs map[string]vaxpass.Certificate

func (c certs) ActiveCertificate(_ context.Context, personID string) (vaxpass.Certificate, error) {
	if v, ok := c[personID]; ok {
		return v, nil
	}
	return vaxpass.Certificate{}, vaxpass.ErrNotFound
}

func (c certs) CertificateByUVCI(_ context.Context, uvci string) (vaxpass.Certificate, error) {
	for _, v := range c {
		if v.UVCI == uvci {
			return v, nil
		}
	}
	return vaxpass.Certificate{}, vaxpass.ErrNotFound
}

func TestFind(t *testing.T) {
	store := certs{"001088012345": {UVCI: "URN:UVCI:01:VN:ABC#1", PersonID: "001088012345", NameKey: vnname.Key("Nguyễn Văn An"), DOB: "1988-03-14"}}
	svc := &lookup.Service{Certs: store}
	ctx := context.Background()
	for _, q := range []lookup.Query{
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-03-14"},
		{IDNumber: "001.088.012.345", FullName: "NGUYEN VAN AN", DOB: "1988-03-14"},                  // typed as people type
		{IDNumber: "001088012345", FullName: "Nguye\u0302\u0303n Va\u0306n An", DOB: " 1988-03-14 "}, // NFD
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "14/03/1988"},                     // as printed on the CCCD
	} {
		if c, err := svc.Find(ctx, q); err != nil || c.UVCI != "URN:UVCI:01:VN:ABC#1" {
			t.Errorf("Find(%+v) = %v, %v", q, c.UVCI, err)
		}
	}
	// Every way of being wrong is the same not-found.
	for _, q := range []lookup.Query{
		{IDNumber: "001088012346", FullName: "Nguyễn Văn An", DOB: "1988-03-14"},
		{IDNumber: "001088012345", FullName: "Nguyễn Văn Anh", DOB: "1988-03-14"},
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988"},
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "1988-03-15"},
		{IDNumber: "001088012345", FullName: "Nguyễn Văn An", DOB: "03/14/1988"}, // never read month first
		{IDNumber: "abc", FullName: "Nguyễn Văn An", DOB: "1988-03-14"},
		{IDNumber: "", FullName: "", DOB: ""},
	} {
		if _, err := svc.Find(ctx, q); !errors.Is(err, vaxpass.ErrNotFound) {
			t.Errorf("Find(%+v) = %v, want ErrNotFound", q, err)
		}
	}
}

func TestQueryValidateNamesFields(t *testing.T) {
	errs := lookup.Query{IDNumber: " ", FullName: "x", DOB: "1988/03/14"}.Validate()
	if len(errs) != 2 || errs[0].Field != "id_number" || errs[1].Field != "dob" {
		t.Fatalf("Validate = %+v", errs)
	}
}
