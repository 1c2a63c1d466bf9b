package identity_test

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
)

func Example() {
	id, err := identity.Parse("001.188.456 789")
	if err != nil {
		panic(err)
	}
	year, _ := id.BirthYear()
	fmt.Println(id.Number, id.Kind, id.ProvinceName(), id.Gender(), year)

	err = id.CheckRecord(dose.Male, dose.PartialDate{Year: 1988})
	fmt.Println(identity.Codes(err))

	_, err = identity.Parse("00118845678")
	fmt.Println(identity.Code(err))
	// Output:
	// 001188456789 CCCD Hà Nội female 1988
	// [ID_GENDER_CENTURY]
	// ID_LENGTH
}
