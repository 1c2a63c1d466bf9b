package awsddb_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

func TestFacilityKeysContract(t *testing.T) {
	client := dynamodb.NewFromConfig(awstest.Config(t))
	storetest.RunFacilityKeys(t, func(t *testing.T) storetest.FacilityKeyStore {
		s, _ := openStore(t, client, awsddb.Options{})
		return s
	})
}
