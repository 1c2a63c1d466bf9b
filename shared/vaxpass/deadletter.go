package vaxpass

import "time"

// DeadLetter is one message a consumer gave up on, as ops see it: identifiers and times,
// never the body (a facility signature holds a name, a date of birth and an ID number).
type DeadLetter struct {
	Queue string `json:"queue"`
	// ID is the message ID (central; on AWS the matcher's failure message too, one batch)
	// or the change's sequence number (the embedded matcher).
	ID           string    `json:"id"`
	FacilityID   string    `json:"facility_id,omitempty"`
	SourceID     string    `json:"source_id,omitempty"`
	ReceiveCount int       `json:"receive_count,omitempty"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	DeadAt       time.Time `json:"dead_at"`
	// Reason is why the consumer gave up (its error); the API leaves it out.
	Reason string `json:"reason,omitempty"`
}

// The dead-letter queues ops list and redrive.
const (
	// DeadCentral: facility signatures central signing gave up on (the SQS DLQ on AWS).
	DeadCentral = "central"
	// DeadMatcher: dose changes the matcher gave up on (the stream's on-failure
	// destination on AWS).
	DeadMatcher = "matcher"
)
