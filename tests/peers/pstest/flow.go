package main

// flow.go — the service's server-side flow control, which pstest lacks. pubsub.proto,
// StreamingPullRequest.max_outstanding_messages: "When there are max_outstanding_messages
// currently sent to the streaming pull client that have not yet been acked or nacked, the
// server stops sending more messages." pstest sends a stream every message it has; a client
// whose own flow control stops reading then leaves them unread in its buffers while their
// leases run out, and pstest hands them to other subscribers while this one still has them
// to read: two deliveries at once, which the service does not make.
//
// Here a stream's sender waits while the messages sent to its client and still outstanding
// (not acked, not nacked, lease not expired; acks and modacks counted from the stream and
// from unary calls) number max_outstanding_messages. The count belongs to the client: the
// streams of one client_id on one subscription share it, as the service carries "state
// associated with the old stream" over to the new one (pubsub.proto, client_id); a stream
// without a client_id counts alone. A message whose lease ran out while it
// waited is not sent: pstest has made it available again.

import (
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
)

type flowControl struct {
	mu      sync.Mutex
	cond    *sync.Cond
	clients map[string]*flowClient            // subscription "\x00" client_id -> its count
	holder  map[string]map[string]*flowClient // subscription -> message id -> the client it went to
	ticker  *time.Ticker
	waits   int // sends that had to wait for room
}

// flowClient: one client's outstanding messages (under flowControl.mu).
type flowClient struct {
	maxOut int                  // max_outstanding_messages of its latest stream; 0: no limit
	out    map[string]time.Time // message id -> lease deadline
}

func newFlowControl() *flowControl {
	f := &flowControl{clients: map[string]*flowClient{}, holder: map[string]map[string]*flowClient{},
		ticker: time.NewTicker(100 * time.Millisecond)}
	f.cond = sync.NewCond(&f.mu)
	go func() { // leases expire with time: waiters look again every tick
		for range f.ticker.C {
			f.cond.Broadcast()
		}
	}()
	return f
}

// client: the count a stream's first request joins (sub, client_id, max_outstanding_messages).
func (f *flowControl) client(sub, clientID string, maxOut int) *flowClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	if clientID == "" {
		return &flowClient{maxOut: maxOut, out: map[string]time.Time{}}
	}
	key := sub + "\x00" + clientID
	c := f.clients[key]
	if c == nil {
		c = &flowClient{out: map[string]time.Time{}}
		f.clients[key] = c
	}
	c.maxOut = maxOut
	return c
}

// outstanding: the client's messages still outstanding now; expired ones are dropped. Under mu.
func (c *flowClient) outstanding(now time.Time) int {
	for id, d := range c.out {
		if now.After(d) {
			delete(c.out, id)
		}
	}
	return len(c.out)
}

// admit waits until the stream may be sent one more message (id), and records it. False: its
// lease ran out while it waited (do not send it), or the stream ended.
func (f *flowControl) admit(p *pullStream, sub, id string, lease time.Duration) bool {
	deadline := time.Now().Add(lease)
	f.mu.Lock()
	defer f.mu.Unlock()
	c := p.fc
	if c == nil { // no first request read yet: no limit known
		return true
	}
	waited := false
	for c.maxOut > 0 && c.outstanding(time.Now()) >= c.maxOut {
		if !waited {
			waited = true
			f.waits++
		}
		if p.Context().Err() != nil || time.Now().After(deadline) {
			return false
		}
		f.cond.Wait()
	}
	if time.Now().After(deadline) {
		return false
	}
	c.out[id] = deadline
	if f.holder[sub] == nil {
		f.holder[sub] = map[string]*flowClient{}
	}
	f.holder[sub][id] = c
	return true
}

// waitCount: how many sends have waited for room (the flowWaits counter).
func (f *flowControl) waitCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waits
}

// settle: acks (secs < 0) and modacks of ids on sub, from a stream or a unary call.
func (f *flowControl) settle(sub string, ids []string, secs []int32) {
	if len(ids) == 0 {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	hs := f.holder[sub]
	for i, id := range ids {
		p := hs[id]
		if p == nil { // an exactly-once ack id (service.go)
			id = messageOf(id)
			p = hs[id]
		}
		if p == nil {
			continue
		}
		if _, ok := p.out[id]; !ok {
			continue
		}
		if secs[i] > 0 {
			p.out[id] = now.Add(time.Duration(secs[i]) * time.Second)
			continue
		}
		delete(p.out, id)
		delete(hs, id)
	}
	f.cond.Broadcast()
}

// settleAcks: settle for acks.
func (f *flowControl) settleAcks(sub string, ids []string) {
	secs := make([]int32, len(ids))
	for i := range secs {
		secs[i] = -1
	}
	f.settle(sub, ids, secs)
}

// maxOutstanding: a StreamingPullRequest's max_outstanding_messages (7), which the 2020
// genproto struct lacks, from its unknown fields; 0 when absent.
func maxOutstanding(unknown []byte) int {
	buf := proto.NewBuffer(unknown)
	for {
		tag, err := buf.DecodeVarint()
		if err != nil {
			return 0
		}
		field, wt := tag>>3, tag&7
		switch wt {
		case 0:
			v, err := buf.DecodeVarint()
			if err != nil {
				return 0
			}
			if field == 7 {
				return int(v)
			}
		case 1:
			if _, err := buf.DecodeFixed64(); err != nil {
				return 0
			}
		case 2:
			if _, err := buf.DecodeRawBytes(false); err != nil {
				return 0
			}
		case 5:
			if _, err := buf.DecodeFixed32(); err != nil {
				return 0
			}
		default:
			return 0
		}
	}
}
