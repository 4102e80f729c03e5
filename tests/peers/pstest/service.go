// service.go: what the harness adds to pstest 0.56 so that it behaves as the real Pub/Sub
// service does (README.md, "What the harness adds to pstest"):
//
//   - delivery_attempt on every ReceivedMessage of a subscription with a dead-letter policy,
//     and forwarding to the dead-letter topic instead of the (max+1)th delivery;
//   - exactly-once delivery: an ack id a delivery, subscription_properties on every
//     StreamingPullResponse, and acknowledge_confirmation / modify_ack_deadline_confirmation
//     for every ack and modack sent on a stream, with failures a test can inject.
//
// All of it works on what goes through the gRPC server (a stream wrapper and the unary
// interceptor) and on the harness's own bookkeeping of deliveries and leases a subscription;
// pstest itself is unchanged. The 2020 genproto structs have no fields for the confirmations
// or subscription_properties: they are appended as raw protobuf wire bytes (field numbers of
// google/pubsub/v1/pubsub.proto today) to XXX_unrecognized, which golang/protobuf 1.3 writes
// out after the known fields.
package main

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes/empty"
	pb "google.golang.org/genproto/googleapis/pubsub/v1"
	"google.golang.org/grpc"
)

// subOpts are the subscription settings pstest 0.56 ignores and the harness implements.
type subOpts struct {
	dlTopic     string // dead-letter topic ("" = no dead-letter policy)
	maxAttempts int    // max delivery attempts (5-100) with dlTopic
	eod         bool   // exactly-once delivery
}

// subState is the harness's view of one subscription.
type subState struct {
	name     string
	opts     subOpts
	ordering bool
	lease    time.Duration     // the subscription's ack deadline (pstest's ackTimeout)
	msgs     map[string]*lease // by message id
}

// lease: one message's deliveries to one subscription.
type lease struct {
	delivery   int       // deliveries so far (the current delivery's number)
	deadline   time.Time // when the current delivery's lease ends; zero after a nack
	acked      bool      // acked (successfully, with its current delivery's ack id)
	ackedTwice bool      // an ack came again after that
	sent       time.Time // when the current delivery was sent
	replied    bool      // an ack or modack of the message came after it was sent
}

// A failure injected with `eod-fail`.
type injected struct {
	mode  string // "temporary" or "invalid"
	times int
}

// xcounters: the harness's counters (`counters`, `eod`).
type xcounters struct {
	DeadLettered     int `json:"deadLettered"`     // messages forwarded to a dead-letter topic
	AcksConfirmed    int `json:"acksConfirmed"`    // ack ids confirmed as acked (exactly-once subscriptions)
	AcksInvalid      int `json:"acksInvalid"`      // ack ids answered invalid
	AcksTemporary    int `json:"acksTemporary"`    // ack ids answered temporary_failed
	ModacksConfirmed int `json:"modacksConfirmed"` // modack ids confirmed
	ModacksInvalid   int `json:"modacksInvalid"`   // modack ids answered invalid
	ModacksTemporary int `json:"modacksTemporary"` // modack ids answered temporary_failed
	AckedTwice       int `json:"ackedTwice"`       // messages acked again after a successful ack (any subscription)
	Confirmations    int `json:"confirmations"`    // StreamingPullResponses sent with confirmations
	InvalidExpired   int `json:"invalidExpired"`   // of the invalid: the lease had ended (deadline passed, or nacked)
	InvalidStale     int `json:"invalidStale"`     // of the invalid: an older delivery's ack id
	InvalidUnknown   int `json:"invalidUnknown"`   // of the invalid: not an ack id this subscription gave out
	InvalidAcked     int `json:"invalidAcked"`     // of the invalid: a modack of a message already acked
	InvalidInjected  int `json:"invalidInjected"`  // of the invalid: injected with eod-fail
	ReplyMaxMs       int `json:"replyMaxMs"`       // the longest wait from a delivery to the first ack or modack of its message (any subscription)
	FlowWaits        int `json:"flowWaits"`        // sends that waited for room under the service's flow control (flow.go)
}

// The harness's state beyond pstest's (under xmu).
type service struct {
	xmu    sync.Mutex
	subs   map[string]*subState
	inject map[string]map[string]*injected // "ack"/"modack" -> ack id or message id -> failure
	xc     xcounters
}

func newService() service {
	return service{subs: map[string]*subState{}, inject: map[string]map[string]*injected{"ack": {}, "modack": {}}}
}

func (h *harness) register(name string, ackDeadline int32, ordering bool, o subOpts) {
	d := time.Duration(ackDeadline) * time.Second
	if d == 0 {
		d = 10 * time.Second
	}
	h.xmu.Lock()
	h.subs[name] = &subState{name: name, opts: o, ordering: ordering, lease: d, msgs: map[string]*lease{}}
	h.xmu.Unlock()
}

func (h *harness) unregister(name string) {
	h.xmu.Lock()
	delete(h.subs, name)
	h.xmu.Unlock()
}

// subLease: the ack deadline a new stream of sub starts with (pstest: the subscription's).
func (h *harness) subLease(sub string) time.Duration {
	h.xmu.Lock()
	defer h.xmu.Unlock()
	if s := h.subs[sub]; s != nil {
		return s.lease
	}
	return 10 * time.Second
}

func (h *harness) subOf(sub string) (eod, ordering bool) {
	h.xmu.Lock()
	defer h.xmu.Unlock()
	if s := h.subs[sub]; s != nil {
		return s.opts.eod, s.ordering
	}
	return false, false
}

// A message to forward to a dead-letter topic instead of delivering it.
type deadLetter struct {
	sub, topic string
	id         string // pstest's ack id (the message id) on sub
	msg        *pb.PubsubMessage
	attempts   int
}

// outgoing notes a delivery of rm on sub with a lease of d, and returns what to send instead
// (a copy with delivery_attempt and, for exactly-once, the delivery's ack id), or nil and
// the dead letter to forward when this would be the (max+1)th delivery.
// pstest's ReceivedMessage is shared by all deliveries of the message: it is never changed.
func (h *harness) outgoing(sub string, rm *pb.ReceivedMessage, d time.Duration) (*pb.ReceivedMessage, *deadLetter) {
	if rm == nil || rm.Message == nil {
		return rm, nil
	}
	h.xmu.Lock()
	defer h.xmu.Unlock()
	s := h.subs[sub]
	if s == nil {
		return rm, nil
	}
	id := rm.Message.MessageId
	l := s.msgs[id]
	if l == nil {
		l = &lease{}
		s.msgs[id] = l
	}
	if s.opts.dlTopic != "" && l.delivery >= s.opts.maxAttempts {
		l.deadline = time.Time{}
		return nil, &deadLetter{sub: sub, topic: s.opts.dlTopic, id: rm.AckId, msg: rm.Message, attempts: l.delivery}
	}
	l.delivery++
	l.deadline = time.Now().Add(d)
	l.sent, l.replied = time.Now(), false
	if s.opts.dlTopic == "" && !s.opts.eod {
		return rm, nil
	}
	out := &pb.ReceivedMessage{AckId: rm.AckId, Message: rm.Message}
	if s.opts.dlTopic != "" {
		out.DeliveryAttempt = int32(l.delivery)
	}
	if s.opts.eod {
		out.AckId = id + "-" + strconv.Itoa(l.delivery)
	}
	return out, nil
}

// messageOf: the message id in an exactly-once ack id (as outgoing makes them: the message
// id, '-' and the delivery); any other id as it is.
func messageOf(ackID string) string {
	if i := strings.LastIndexByte(ackID, '-'); i > 0 {
		return ackID[:i]
	}
	return ackID
}

// forward publishes a dead letter to its topic, with the attributes the service adds, and
// acks it on its subscription. On failure (the topic is gone) the message stays unacked and
// is tried again when its lease ends.
func (h *harness) forward(dl *deadLetter) {
	attrs := make(map[string]string, len(dl.msg.Attributes)+4)
	for k, v := range dl.msg.Attributes {
		attrs[k] = v
	}
	project, subID := "", dl.sub
	if p := strings.Split(dl.sub, "/"); len(p) == 4 && p[0] == "projects" {
		project, subID = p[1], p[3]
	}
	attrs["CloudPubSubDeadLetterSourceDeliveryCount"] = strconv.Itoa(dl.attempts)
	attrs["CloudPubSubDeadLetterSourceSubscription"] = subID
	attrs["CloudPubSubDeadLetterSourceSubscriptionProject"] = project
	if pt := dl.msg.PublishTime; pt != nil {
		attrs["CloudPubSubDeadLetterSourceTopicPublishTime"] = time.Unix(pt.Seconds, int64(pt.Nanos)).UTC().Format(time.RFC3339Nano)
	}
	_, err := h.srv.GServer.Publish(context.Background(), &pb.PublishRequest{Topic: dl.topic, Messages: []*pb.PubsubMessage{{
		Data: dl.msg.Data, Attributes: attrs, OrderingKey: dl.msg.OrderingKey,
	}}})
	if err != nil {
		log.Printf("pstest: dead-letter %s of %s to %s: %v", dl.id, dl.sub, dl.topic, err)
		return
	}
	if _, err := h.srv.GServer.Acknowledge(context.Background(), &pb.AcknowledgeRequest{Subscription: dl.sub, AckIds: []string{dl.id}}); err != nil {
		log.Printf("pstest: ack dead-lettered %s on %s: %v", dl.id, dl.sub, err)
	}
	h.xmu.Lock()
	h.xc.DeadLettered++
	if s := h.subs[dl.sub]; s != nil {
		if l := s.msgs[dl.msg.MessageId]; l != nil {
			l.acked = true
		}
	}
	h.xmu.Unlock()
}

// deliverAll maps outgoing over msgs, forwards the dead letters, and returns what to send.
func (h *harness) deliverAll(sub string, msgs []*pb.ReceivedMessage, d time.Duration) []*pb.ReceivedMessage {
	out := msgs[:0:0]
	for _, rm := range msgs {
		o, dl := h.outgoing(sub, rm, d)
		if dl != nil {
			h.forward(dl)
			continue
		}
		out = append(out, o)
	}
	return out
}

// Verdicts on an ack id.
const (
	vOK = iota
	vInvalid
	vTemporary
)

// judge decides on one ack id of an ack ("ack") or modack ("modack", seconds) on an
// exactly-once subscription, applies it to the harness's lease, and returns the verdict and
// pstest's ack id (the message id). Under xmu.
func (h *harness) judge(s *subState, kind, ackID string, secs int32, now time.Time) (int, string) {
	msgID := messageOf(ackID)
	for _, key := range []string{ackID, msgID} {
		if f := h.inject[kind][key]; f != nil && f.times > 0 {
			f.times--
			if f.times == 0 {
				delete(h.inject[kind], key)
			}
			if f.mode == "temporary" {
				return vTemporary, ""
			}
			h.xc.InvalidInjected++
			return vInvalid, ""
		}
	}
	n := 0
	if msgID != ackID {
		n, _ = strconv.Atoi(ackID[len(msgID)+1:])
	}
	l := s.msgs[msgID]
	if l == nil || n < 1 || n > l.delivery {
		h.xc.InvalidUnknown++
		return vInvalid, ""
	}
	if n < l.delivery {
		h.xc.InvalidStale++
		return vInvalid, ""
	}
	if l.acked {
		if kind == "ack" { // "Acknowledging a message more than once will not result in an error."
			if !l.ackedTwice {
				l.ackedTwice = true
				h.xc.AckedTwice++
			}
			return vOK, msgID
		}
		h.xc.InvalidAcked++
		return vInvalid, ""
	}
	if l.deadline.IsZero() || now.After(l.deadline) {
		h.xc.InvalidExpired++
		return vInvalid, ""
	}
	switch {
	case kind == "ack":
		l.acked = true
	case secs > 0:
		l.deadline = now.Add(time.Duration(secs) * time.Second)
	default: // a nack ends the lease
		l.deadline = time.Time{}
	}
	return vOK, msgID
}

// confirmation: the ack ids of one request, by verdict.
type confirmation struct {
	ack, ackInvalid, ackTemp    []string
	modack, modInvalid, modTemp []string
}

func (c *confirmation) empty() bool {
	return len(c.ack)+len(c.ackInvalid)+len(c.ackTemp)+len(c.modack)+len(c.modInvalid)+len(c.modTemp) == 0
}

// settle judges the acks and modacks of one request on an exactly-once subscription, applies
// the valid ones to pstest (unary Acknowledge / ModifyAckDeadline with pstest's ack ids,
// before it returns), and returns what to confirm.
func (h *harness) settle(sub string, acks, modIDs []string, modSecs []int32) (*confirmation, bool) {
	now := time.Now()
	c := &confirmation{}
	var applyAcks []string
	applyMods := map[int32][]string{}
	h.xmu.Lock()
	s := h.subs[sub]
	if s == nil || !s.opts.eod {
		h.xmu.Unlock()
		return nil, false
	}
	for _, id := range acks {
		v, m := h.judge(s, "ack", id, 0, now)
		switch v {
		case vOK:
			c.ack = append(c.ack, id)
			applyAcks = append(applyAcks, m)
			h.xc.AcksConfirmed++
		case vInvalid:
			c.ackInvalid = append(c.ackInvalid, id)
			h.xc.AcksInvalid++
		default:
			c.ackTemp = append(c.ackTemp, id)
			h.xc.AcksTemporary++
		}
	}
	for i, id := range modIDs {
		var secs int32
		if i < len(modSecs) {
			secs = modSecs[i]
		}
		v, m := h.judge(s, "modack", id, secs, now)
		switch v {
		case vOK:
			c.modack = append(c.modack, id)
			applyMods[secs] = append(applyMods[secs], m)
			h.xc.ModacksConfirmed++
		case vInvalid:
			c.modInvalid = append(c.modInvalid, id)
			h.xc.ModacksInvalid++
		default:
			c.modTemp = append(c.modTemp, id)
			h.xc.ModacksTemporary++
		}
	}
	h.xmu.Unlock()
	ctx := context.Background()
	if len(applyAcks) > 0 {
		if _, err := h.srv.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: applyAcks}); err != nil {
			log.Printf("pstest: ack on %s: %v", sub, err)
		}
	}
	secs := make([]int, 0, len(applyMods))
	for d := range applyMods {
		secs = append(secs, int(d))
	}
	sort.Ints(secs)
	for _, d := range secs {
		// every id here is a message pstest knows (its unary ModifyAckDeadline crashes on others)
		if _, err := h.srv.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: applyMods[int32(d)], AckDeadlineSeconds: int32(d)}); err != nil {
			log.Printf("pstest: modack on %s: %v", sub, err)
		}
	}
	return c, true
}

// eachLease calls fn, under xmu, for the lease of each ack id's message on sub (an ack id is
// the message id, or on exactly-once subscriptions the message id, '-' and the delivery).
func (h *harness) eachLease(sub string, ids []string, fn func(l *lease)) {
	if len(ids) == 0 {
		return
	}
	h.xmu.Lock()
	defer h.xmu.Unlock()
	s := h.subs[sub]
	if s == nil {
		return
	}
	for _, id := range ids {
		l := s.msgs[id]
		if l == nil {
			l = s.msgs[messageOf(id)]
		}
		if l != nil {
			fn(l)
		}
	}
}

// noteAcks notes acks (pstest's ack ids, the message ids) that pstest applies itself, on a
// subscription without exactly-once delivery: only to count messages acked twice.
func (h *harness) noteAcks(sub string, ids []string) {
	h.eachLease(sub, ids, func(l *lease) {
		if l.acked && !l.ackedTwice {
			l.ackedTwice = true
			h.xc.AckedTwice++
		}
		l.acked = true
	})
}

// noteReplies notes acks and modacks of sub's messages for replyMaxMs: how long a client
// took to answer a delivery tells whether it read it at once or left it unread while its
// lease ran.
func (h *harness) noteReplies(sub string, ids []string) {
	now := time.Now()
	h.eachLease(sub, ids, func(l *lease) {
		if l.replied || l.sent.IsZero() {
			return
		}
		l.replied = true
		if ms := int(now.Sub(l.sent) / time.Millisecond); ms > h.xc.ReplyMaxMs {
			h.xc.ReplyMaxMs = ms
		}
	})
}

// Protobuf wire encoding, for the fields the 2020 genproto structs lack.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendBytes(b []byte, field int, v []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|2)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStrings(b []byte, field int, ss []string) []byte {
	for _, s := range ss {
		b = appendBytes(b, field, []byte(s))
	}
	return b
}

// StreamingPullResponse.subscription_properties (4) {exactly_once_delivery_enabled (1),
// message_ordering_enabled (2)}.
func propsBytes(eod, ordering bool) []byte {
	var in []byte
	if eod {
		in = append(in, 1<<3|0, 1)
	}
	if ordering {
		in = append(in, 2<<3|0, 1)
	}
	return appendBytes(nil, 4, in)
}

// StreamingPullResponse.acknowledge_confirmation (5) {ack_ids 1, invalid_ack_ids 2,
// unordered_ack_ids 3, temporary_failed_ack_ids 4} and modify_ack_deadline_confirmation (3)
// {ack_ids 1, invalid_ack_ids 2, temporary_failed_ack_ids 3}.
func (c *confirmation) bytes() []byte {
	var b []byte
	if len(c.ack)+len(c.ackInvalid)+len(c.ackTemp) > 0 {
		in := appendStrings(nil, 1, c.ack)
		in = appendStrings(in, 2, c.ackInvalid)
		in = appendStrings(in, 4, c.ackTemp)
		b = appendBytes(b, 5, in)
	}
	if len(c.modack)+len(c.modInvalid)+len(c.modTemp) > 0 {
		in := appendStrings(nil, 1, c.modack)
		in = appendStrings(in, 2, c.modInvalid)
		in = appendStrings(in, 3, c.modTemp)
		b = appendBytes(b, 3, in)
	}
	return b
}

// Subscription.enable_exactly_once_delivery (16), for GetSubscription's answer.
var eodSubscriptionField = []byte{0x80, 0x01, 0x01} // tag 16<<3|0 as a varint, then true

// hasEODField: whether a Subscription's unknown fields set enable_exactly_once_delivery.
func hasEODField(b []byte) bool {
	buf := proto.NewBuffer(b)
	for {
		tag, err := buf.DecodeVarint()
		if err != nil {
			return false
		}
		field, wt := tag>>3, tag&7
		switch wt {
		case 0:
			v, err := buf.DecodeVarint()
			if err != nil {
				return false
			}
			if field == 16 {
				return v != 0
			}
		case 1:
			if _, err := buf.DecodeFixed64(); err != nil {
				return false
			}
		case 2:
			if _, err := buf.DecodeRawBytes(false); err != nil {
				return false
			}
		case 5:
			if _, err := buf.DecodeFixed32(); err != nil {
				return false
			}
		default:
			return false
		}
	}
}

// pullStream wraps a StreamingPull stream: it counts requests, and does what the service does
// beyond pstest (delivery_attempt, dead letters, exactly-once). grpc-go forbids concurrent
// SendMsg calls: pstest's sends and the harness's confirmations go through sendMu.
type pullStream struct {
	grpc.ServerStream
	h      *harness
	sendMu sync.Mutex

	mu      sync.Mutex // guards the fields below (RecvMsg and SendMsg run in two goroutines)
	started bool
	sub     string
	lease   time.Duration

	fc *flowClient // flow.go: its client's flow control (set by the first request, under h.flow.mu)
}

func (p *pullStream) RecvMsg(m interface{}) error {
	err := p.ServerStream.RecvMsg(m)
	if err != nil {
		return err
	}
	p.h.smu.Lock()
	p.h.requests++
	if pm, ok := m.(proto.Message); ok && proto.Size(pm) == 0 {
		p.h.emptyRequests++
	}
	p.h.smu.Unlock()
	req, ok := m.(*pb.StreamingPullRequest)
	if !ok {
		return nil
	}
	p.mu.Lock()
	first := !p.started
	if first {
		p.started = true
		p.sub = req.Subscription
		p.lease = p.h.subLease(req.Subscription)
		fc := p.h.flow.client(req.Subscription, req.ClientId, maxOutstanding(req.XXX_unrecognized))
		p.h.flow.mu.Lock()
		p.fc = fc
		p.h.flow.mu.Unlock()
	} else if req.StreamAckDeadlineSeconds > 0 { // as pstest: not from the first request
		p.lease = time.Duration(req.StreamAckDeadlineSeconds) * time.Second
	}
	sub := p.sub
	p.mu.Unlock()

	if len(req.AckIds)+len(req.ModifyDeadlineAckIds) == 0 {
		return nil
	}
	if !first { // pstest applies nothing of a first request
		p.h.flow.settleAcks(sub, req.AckIds)
		p.h.flow.settle(sub, req.ModifyDeadlineAckIds, req.ModifyDeadlineSeconds)
		p.h.noteReplies(sub, req.AckIds)
		p.h.noteReplies(sub, req.ModifyDeadlineAckIds)
	}
	c, eod := p.h.settle(sub, req.AckIds, req.ModifyDeadlineAckIds, req.ModifyDeadlineSeconds)
	if !eod {
		if !first { // pstest ignores the acks of a first request
			p.h.noteAcks(sub, req.AckIds)
		}
		return nil
	}
	// applied already: pstest gets the request without them
	req.AckIds, req.ModifyDeadlineAckIds, req.ModifyDeadlineSeconds = nil, nil, nil
	if c.empty() {
		return nil
	}
	_, ordering := p.h.subOf(sub)
	res := &pb.StreamingPullResponse{}
	res.XXX_unrecognized = append(c.bytes(), propsBytes(true, ordering)...)
	p.h.xmu.Lock()
	p.h.xc.Confirmations++
	p.h.xmu.Unlock()
	return p.send(res)
}

func (p *pullStream) send(m interface{}) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	return p.ServerStream.SendMsg(m)
}

func (p *pullStream) SendMsg(m interface{}) error {
	res, ok := m.(*pb.StreamingPullResponse)
	if !ok {
		return p.send(m)
	}
	p.mu.Lock()
	sub, d := p.sub, p.lease
	p.mu.Unlock()
	// the service's flow control: wait for room; a message whose lease ran out meanwhile is
	// not sent (pstest made it available again)
	admitted := res.ReceivedMessages[:0:0]
	for _, rm := range res.ReceivedMessages {
		if rm.Message == nil || p.h.flow.admit(p, sub, rm.Message.MessageId, d) {
			admitted = append(admitted, rm)
		}
	}
	if len(admitted) == 0 {
		return nil
	}
	if len(admitted) != len(res.ReceivedMessages) {
		res = &pb.StreamingPullResponse{ReceivedMessages: admitted}
		m = res
	}
	msgs := p.h.deliverAll(sub, res.ReceivedMessages, d)
	if len(msgs) == 0 && len(res.ReceivedMessages) > 0 {
		return nil // all went to the dead-letter topic
	}
	eod, ordering := p.h.subOf(sub)
	if eod || len(msgs) != len(res.ReceivedMessages) || (len(msgs) > 0 && msgs[0] != res.ReceivedMessages[0]) {
		out := &pb.StreamingPullResponse{ReceivedMessages: msgs}
		if eod {
			out.XXX_unrecognized = propsBytes(true, ordering)
		}
		m = out
	}
	return p.send(m)
}

// unaryService does for unary Pull, Acknowledge and ModifyAckDeadline what pullStream does on
// streams, and registers subscriptions created and deleted by clients.
func (h *harness) unaryService(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	switch r := req.(type) {
	case *pb.AcknowledgeRequest:
		h.flow.settleAcks(r.Subscription, r.AckIds)
		h.noteReplies(r.Subscription, r.AckIds)
		if c, eod := h.settle(r.Subscription, r.AckIds, nil, nil); eod {
			_ = c // applied; invalid ids are dropped (the service answers an error with details)
			return &empty.Empty{}, nil
		}
		res, err := handler(ctx, req)
		if err == nil {
			h.noteAcks(r.Subscription, r.AckIds)
		}
		return res, err
	case *pb.ModifyAckDeadlineRequest:
		secs := make([]int32, len(r.AckIds))
		for i := range secs {
			secs[i] = r.AckDeadlineSeconds
		}
		h.flow.settle(r.Subscription, r.AckIds, secs)
		h.noteReplies(r.Subscription, r.AckIds)
		if _, eod := h.settle(r.Subscription, nil, r.AckIds, secs); eod {
			return &empty.Empty{}, nil
		}
		return handler(ctx, req)
	case *pb.PullRequest:
		res, err := handler(ctx, req)
		if pr, ok := res.(*pb.PullResponse); ok && err == nil {
			res = &pb.PullResponse{ReceivedMessages: h.deliverAll(r.Subscription, pr.ReceivedMessages, h.subLease(r.Subscription))}
		}
		return res, err
	case *pb.Subscription: // CreateSubscription
		res, err := handler(ctx, req)
		if err == nil {
			o := subOpts{eod: hasEODField(r.XXX_unrecognized)}
			if dp := r.DeadLetterPolicy; dp != nil && dp.DeadLetterTopic != "" {
				o.dlTopic, o.maxAttempts = dp.DeadLetterTopic, int(dp.MaxDeliveryAttempts)
				if o.maxAttempts == 0 {
					o.maxAttempts = 5
				}
			}
			h.register(r.Name, r.AckDeadlineSeconds, r.EnableMessageOrdering, o)
		}
		return res, err
	case *pb.DeleteSubscriptionRequest:
		res, err := handler(ctx, req)
		if err == nil {
			h.unregister(r.Subscription)
		}
		return res, err
	}
	return handler(ctx, req)
}

// counters: the harness's counters, as `counters` and `eod` answer.
func (h *harness) counters() xcounters {
	waits := h.flow.waitCount()
	h.xmu.Lock()
	defer h.xmu.Unlock()
	c := h.xc
	c.FlowWaits = waits
	return c
}

func (h *harness) counterValue(name string) (int, bool) {
	c := h.counters()
	m := map[string]int{
		"deadLettered": c.DeadLettered, "acksConfirmed": c.AcksConfirmed, "acksInvalid": c.AcksInvalid,
		"acksTemporary": c.AcksTemporary, "modacksConfirmed": c.ModacksConfirmed, "modacksInvalid": c.ModacksInvalid,
		"modacksTemporary": c.ModacksTemporary, "ackedTwice": c.AckedTwice, "confirmations": c.Confirmations,
		"invalidExpired": c.InvalidExpired, "invalidStale": c.InvalidStale, "invalidUnknown": c.InvalidUnknown,
		"invalidAcked": c.InvalidAcked, "invalidInjected": c.InvalidInjected,
		"replyMaxMs": c.ReplyMaxMs, "flowWaits": c.FlowWaits,
	}
	v, ok := m[name]
	return v, ok
}

// waitCounter polls a counter (every 10 ms) until it reaches n or d passes.
func (h *harness) waitCounter(name string, n int, d time.Duration) (interface{}, error) {
	if _, ok := h.counterValue(name); !ok {
		return nil, fmt.Errorf("no counter %q (see `counters`)", name)
	}
	end := time.Now().Add(d)
	for {
		v, _ := h.counterValue(name)
		if v >= n {
			return h.counters(), nil
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("timeout after %s: %s %d of %d", d, name, v, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eodFail: `eod-fail ack|modack ID temporary|invalid [TIMES]`.
func (h *harness) eodFail(a []string) (interface{}, error) {
	const usage = "usage: eod-fail ack|modack ACK_ID|MESSAGE_ID temporary|invalid [TIMES]"
	if len(a) < 4 || (a[1] != "ack" && a[1] != "modack") || (a[3] != "temporary" && a[3] != "invalid") {
		return nil, fmt.Errorf(usage)
	}
	times := 1
	if len(a) > 4 {
		v, err := strconv.Atoi(a[4])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("TIMES %q: not a number >= 1", a[4])
		}
		times = v
	}
	h.xmu.Lock()
	h.inject[a[1]][a[2]] = &injected{mode: a[3], times: times}
	h.xmu.Unlock()
	return map[string]interface{}{"kind": a[1], "id": a[2], "mode": a[3], "times": times}, nil
}

// parseSubOpts reads `--dead-letter-topic T`, `--max-delivery-attempts N`, `--exactly-once`
// (and their `-x` forms) from the tail of a create-subscription command.
func parseSubOpts(a []string) (subOpts, error) {
	var o subOpts
	for i := 0; i < len(a); i++ {
		f := "-" + strings.TrimLeft(a[i], "-")
		switch f {
		case "-exactly-once":
			o.eod = true
		case "-dead-letter-topic", "-max-delivery-attempts":
			if i+1 >= len(a) {
				return o, fmt.Errorf("%s needs a value", a[i])
			}
			i++
			if f == "-dead-letter-topic" {
				o.dlTopic = a[i]
			} else {
				v, err := strconv.Atoi(a[i])
				if err != nil {
					return o, fmt.Errorf("max delivery attempts %q: not a number", a[i])
				}
				o.maxAttempts = v
			}
		default:
			return o, fmt.Errorf("unknown option %q (--dead-letter-topic T, --max-delivery-attempts N, --exactly-once)", a[i])
		}
	}
	return o, nil
}

// checkSubOpts applies the service's rules: max delivery attempts 5-100 (0: 5), only with a
// dead-letter topic, which must exist.
func (h *harness) checkSubOpts(o *subOpts) error {
	if o.dlTopic == "" {
		if o.maxAttempts != 0 {
			return fmt.Errorf("--max-delivery-attempts needs --dead-letter-topic")
		}
		return nil
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 5
	}
	if o.maxAttempts < 5 || o.maxAttempts > 100 {
		return fmt.Errorf("max delivery attempts %d: must be between 5 and 100", o.maxAttempts)
	}
	if _, err := h.srv.GServer.GetTopic(context.Background(), &pb.GetTopicRequest{Topic: o.dlTopic}); err != nil {
		return fmt.Errorf("dead-letter topic %s: %v", o.dlTopic, err)
	}
	return nil
}
