package main

// flow.go — the service's server-side flow control, which pstest lacks. pubsub.proto,
// StreamingPullRequest.max_outstanding_messages: "When there are max_outstanding_messages
// currently sent to the streaming pull client that have not yet been acked or nacked, the
// server stops sending more messages." pstest sends a stream every message it has; a client
// whose own flow control stops reading then leaves them unread in its buffers while their
// leases run out, and pstest hands them to other subscribers while this one still has them
// to read: two deliveries at once, which the service does not make.
//
// Here a stream's sender waits while the messages it was sent and that are still outstanding
// (not acked, not nacked, lease not expired; acks and modacks counted from the stream and
// from unary calls) number max_outstanding_messages. A message whose lease ran out while it
// waited is not sent: pstest has made it available again.

import (
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
)

type flowControl struct {
	mu     sync.Mutex
	cond   *sync.Cond
	holder map[string]map[string]*pullStream // subscription -> message id -> the stream it went to
	ticker *time.Ticker
}

func newFlowControl() *flowControl {
	f := &flowControl{holder: map[string]map[string]*pullStream{}, ticker: time.NewTicker(100 * time.Millisecond)}
	f.cond = sync.NewCond(&f.mu)
	go func() { // leases expire with time: waiters look again every tick
		for range f.ticker.C {
			f.cond.Broadcast()
		}
	}()
	return f
}

// outstanding: the stream's messages still outstanding now; expired ones are dropped. Under mu.
func (p *pullStream) outstanding(now time.Time) int {
	for id, d := range p.out {
		if now.After(d) {
			delete(p.out, id)
		}
	}
	return len(p.out)
}

// admit waits until the stream may be sent one more message (id), and records it. False: its
// lease ran out while it waited (do not send it), or the stream ended.
func (f *flowControl) admit(p *pullStream, sub, id string, lease time.Duration) bool {
	deadline := time.Now().Add(lease)
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.out == nil {
		p.out = map[string]time.Time{}
	}
	for p.maxOut > 0 && p.outstanding(time.Now()) >= p.maxOut {
		if p.Context().Err() != nil || time.Now().After(deadline) {
			return false
		}
		f.cond.Wait()
	}
	if time.Now().After(deadline) {
		return false
	}
	p.out[id] = deadline
	if f.holder[sub] == nil {
		f.holder[sub] = map[string]*pullStream{}
	}
	f.holder[sub][id] = p
	return true
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
		if p == nil {
			// an exactly-once ack id is the message id, '-' and the delivery (service.go)
			if j := strings.LastIndexByte(id, '-'); j > 0 {
				id = id[:j]
				p = hs[id]
			}
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
