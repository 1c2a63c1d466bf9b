package routes

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
)

// maxWebResponse bounds what httpRoute passes back (Lambda's response limit is 6 MB,
// base64 included); the page's files are a few KB.
const maxWebResponse = 4 << 20

// HTTPRoute runs an http.Handler for an API Gateway HTTP API (payload 2.0) event: the
// request is rebuilt from the event (method, decoded path, query, headers, body) and the
// handler's answer becomes the response event, binary bodies base64-encoded.
func HTTPRoute(h http.Handler) apigw.Handler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := httpRequest(ctx, ev)
		if err != nil {
			return apigw.Error(http.StatusBadRequest, apigw.CodeInvalidPath, "the request cannot be read"), nil
		}
		rec := &responseRecorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		return rec.event(), nil
	}
}

func httpRequest(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	// RawPath is percent-decoded by API Gateway; URL.Path holds the decoded form too.
	u := &url.URL{Path: ev.RawPath, RawQuery: ev.RawQueryString}
	if u.Path == "" {
		u.Path = "/"
	}
	var body []byte
	if ev.Body != "" {
		if ev.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(ev.Body)
			if err != nil {
				return nil, err
			}
			body = b
		} else {
			body = []byte(ev.Body)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.Host = ev.RequestContext.DomainName
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	return req, nil
}

// responseRecorder collects an http.Handler's answer.
type responseRecorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (r *responseRecorder) Header() http.Header { return r.header }

func (r *responseRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(b) > maxWebResponse {
		r.overflow = true
		return 0, http.ErrContentLength
	}
	return r.body.Write(b)
}

func (r *responseRecorder) event() events.APIGatewayV2HTTPResponse {
	if r.overflow {
		return apigw.InternalError()
	}
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusNotFound {
		// Errors everywhere are the contract's JSON error, pages included.
		return apigw.NotFound()
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range r.header {
		if k == "Set-Cookie" {
			out.Cookies = append(out.Cookies, vs...)
			continue
		}
		out.Headers[k] = strings.Join(vs, ", ")
	}
	if r.body.Len() == 0 {
		return out
	}
	if apigw.IsTextContentType(r.header.Get("Content-Type")) {
		out.Body = r.body.String()
	} else {
		out.Body = base64.StdEncoding.EncodeToString(r.body.Bytes())
		out.IsBase64Encoded = true
	}
	return out
}
