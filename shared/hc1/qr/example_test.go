package qr_test

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
)

func ExamplePNG() {
	hc1 := "HC1:NCFOXN%TS3DH0RGPJB/IB-OM7533LR5OV5JTK7VN2RHQ3HK61A8CJ0$O+N3+*0J$PX%4B$3:Q9P0"
	png, err := qr.PNG(hc1, qr.ModulePixels(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := qrscan.DecodeBytes(png)
	fmt.Println(back == hc1, err)

	sym, _ := qr.Encode(hc1, qr.LevelQ)
	fmt.Println(sym.Version, sym.Level, sym.Segments[0].Mode)
	// Output:
	// true <nil>
	// 5 Q alphanumeric
}
