package main

// pstest 0.56 drops every message that is neither acked nor leased 10 minutes
// after it was published (a package variable, retentionDuration), whatever the
// subscription's message_retention_duration says. The service keeps unacked
// messages for the subscription's retention, 7 days by default: a run that
// retries for longer than 10 minutes (a long soak, a backlog) would see
// messages vanish that the service would still deliver. The harness sets
// pstest's variable to the service's default before any message exists.

import (
	"time"
	_ "unsafe" // go:linkname

	_ "cloud.google.com/go/pubsub/pstest"
)

//go:linkname pstestRetention cloud.google.com/go/pubsub/pstest.retentionDuration
var pstestRetention time.Duration

// serviceRetention: Pub/Sub's default message_retention_duration.
const serviceRetention = 7 * 24 * time.Hour

func init() {
	pstestRetention = serviceRetention
}
