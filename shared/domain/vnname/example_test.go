package vnname_test

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/domain/vnname"
)

func Example() {
	family, given := vnname.Split("  Nguyễn   Văn An ")
	fmt.Println(family, "|", given)
	fmt.Println(vnname.ICAO(family), vnname.ICAO(given))
	fmt.Println(vnname.Key("NGUYEN VAN AN") == vnname.Key("Nguyễn Văn An"))
	// Output:
	// Nguyễn | Văn An
	// NGUYEN VAN<AN
	// true
}
