package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// PDFPath is where the printable passport of a certificate is served (the UVCI travels
// as in QRPath).
func PDFPath(uvci string) string {
	return "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte(uvci)) + "/passport.pdf"
}

// getPDF serves the passport as one A4 page. Like the QR image, it is reached by the
// path the lookup answered, after the details were checked.
func (p *Public) getPDF(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	raw, err := base64.RawURLEncoding.DecodeString(apigw.PathParameter(req, "uvci"))
	if err != nil || len(raw) == 0 || len(raw) > 80 {
		return apigw.FieldError(http.StatusBadRequest, "uvci", "invalid_format", "not a passport path"), nil
	}
	cert, err := p.Lookup.ByUVCI(ctx, string(raw))
	if err == nil && cert.Status != vaxpass.CertIssued {
		err = vaxpass.ErrNotFound
	}
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	page, err := lookup.PageOf(cert)
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	pdf, err := p.RenderPDF(page)
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	resp := apigw.Bytes(http.StatusOK, "application/pdf", pdf)
	resp.Headers["Content-Disposition"] = `attachment; filename="vaccine-passport.pdf"`
	resp.Headers["Cache-Control"] = "private, max-age=300"
	return resp, nil
}
