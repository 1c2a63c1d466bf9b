// Package contract holds the API contract test: the embedded system runs in-process behind
// its real HTTP front (the API Gateway bridge), every endpoint is called with good and bad
// requests, and every answer -- status, headers, content type and body -- is validated
// against the repository's openapi.yaml with an OpenAPI validator (kin-openapi). An answer the
// document does not allow fails the test, and so does a route registered in the router that
// the document lacks, or the reverse.
package contract
