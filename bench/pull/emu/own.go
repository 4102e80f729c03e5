package main

// own.go: -mode own, a small in-memory Pub/Sub of our own for the benchmark.
//
// Why: with 20,000 messages waiting, pstest's delivery goroutine walks every
// unacknowledged message every 10 ms (converting each publish time), which
// costs the emulator about 0.3 of a core for as long as the backlog lasts; on
// a 2-core machine that takes CPU from the subscriber being measured. Here
// each message costs O(1): a FIFO of available messages, a map of the
// outstanding ones, and a scan of only the outstanding ones (at most the
// flow-control limit) twice a second for expired ack deadlines.
//
// What it serves, on Debian's genproto types: CreateTopic, CreateSubscription,
// GetSubscription, Publish, StreamingPull, Acknowledge, ModifyAckDeadline.
// Everything else answers UNIMPLEMENTED. StreamingPull follows the API: the
// first request names the subscription and may set stream_ack_deadline_seconds
// and max_outstanding_messages/bytes (fields 7 and 8, unknown to this
// genproto, read from the raw bytes); later requests carry acks and modacks
// (equal-length lists, else INVALID_ARGUMENT); an ack id is valid on any
// stream and in the unary calls; an unknown or already acknowledged id is
// ignored; modack 0 is a nack (the message goes to the back of the queue); an
// expired deadline makes a message available again (a redelivery); a closed
// stream keeps its messages leased until their deadlines.

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	emptypb "github.com/golang/protobuf/ptypes/empty"
	tspb "github.com/golang/protobuf/ptypes/timestamp"
	pb "google.golang.org/genproto/googleapis/pubsub/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type ownMsg struct {
	rm         *pb.ReceivedMessage
	size       int64
	deadline   time.Time
	holder     *ownStream // nil when available or when its stream closed
	deliveries int
}

type ownSub struct {
	name     string
	deadline time.Duration
	queue    []*ownMsg // available, oldest first (queue[head:])
	head     int
	out      map[string]*ownMsg // outstanding, by ack id
	streams  map[*ownStream]bool
}

type ownServer struct {
	pb.UnimplementedPublisherServer  // every other method: UNIMPLEMENTED
	pb.UnimplementedSubscriberServer // idem
	mu                               sync.Mutex
	topics                           map[string][]*ownSub
	subs                             map[string]*ownSub
	nextID                           int64
	redelivered                      int64
}

type ownStream struct {
	sub      *ownSub
	maxMsgs  int64
	maxBytes int64
	deadline time.Duration
	held     int64 // messages, under ownServer.mu
	bytes    int64
	wake     chan struct{}
}

func newOwnServer() *ownServer {
	s := &ownServer{topics: map[string][]*ownSub{}, subs: map[string]*ownSub{}}
	go s.expireLoop()
	return s
}

func (s *ownServer) CreateTopic(_ context.Context, t *pb.Topic) (*pb.Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[t.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "topic %q", t.Name)
	}
	s.topics[t.Name] = nil
	return t, nil
}

func (s *ownServer) CreateSubscription(_ context.Context, ps *pb.Subscription) (*pb.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[ps.Topic]; !ok {
		return nil, status.Errorf(codes.NotFound, "topic %q", ps.Topic)
	}
	if _, ok := s.subs[ps.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "subscription %q", ps.Name)
	}
	if ps.AckDeadlineSeconds == 0 {
		ps.AckDeadlineSeconds = 10
	}
	sub := &ownSub{name: ps.Name, deadline: time.Duration(ps.AckDeadlineSeconds) * time.Second,
		out: map[string]*ownMsg{}, streams: map[*ownStream]bool{}}
	s.subs[ps.Name] = sub
	s.topics[ps.Topic] = append(s.topics[ps.Topic], sub)
	return ps, nil
}

func (s *ownServer) GetSubscription(_ context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.find(req.Subscription)
	if err != nil {
		return nil, err
	}
	return &pb.Subscription{Name: sub.name, AckDeadlineSeconds: int32(sub.deadline / time.Second)}, nil
}

// find returns the subscription; called with s.mu held.
func (s *ownServer) find(name string) (*ownSub, error) {
	if name == "" {
		return nil, status.Errorf(codes.InvalidArgument, "missing subscription")
	}
	sub := s.subs[name]
	if sub == nil {
		return nil, status.Errorf(codes.NotFound, "subscription %s", name)
	}
	return sub, nil
}

func (s *ownServer) Publish(_ context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subs, ok := s.topics[req.Topic]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %q", req.Topic)
	}
	now := time.Now()
	ts := &tspb.Timestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())}
	ids := make([]string, 0, len(req.Messages))
	for _, pm := range req.Messages {
		s.nextID++
		id := fmt.Sprintf("m%d", s.nextID)
		msg := &pb.PubsubMessage{Data: pm.Data, Attributes: pm.Attributes, MessageId: id, PublishTime: ts}
		size := int64(len(pm.Data))
		for k, v := range pm.Attributes {
			size += int64(len(k) + len(v))
		}
		for _, sub := range subs {
			sub.queue = append(sub.queue, &ownMsg{rm: &pb.ReceivedMessage{AckId: id, Message: msg}, size: size})
			sub.wakeAll()
		}
		ids = append(ids, id)
	}
	return &pb.PublishResponse{MessageIds: ids}, nil
}

func (sub *ownSub) wakeAll() {
	for st := range sub.streams {
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

// settle removes an outstanding message; called with s.mu held.
func (s *ownServer) settle(sub *ownSub, id string) *ownMsg {
	m := sub.out[id]
	if m == nil {
		return nil
	}
	delete(sub.out, id)
	atomic.AddInt64(&outstanding, -1)
	if st := m.holder; st != nil {
		st.held--
		st.bytes -= m.size
		m.holder = nil
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
	return m
}

func (s *ownServer) ack(subName string, ids []string) error {
	s.mu.Lock()
	sub, err := s.find(subName)
	if err == nil {
		for _, id := range ids {
			s.settle(sub, id)
		}
	}
	s.mu.Unlock()
	if err == nil {
		countAcks(ids)
	}
	return err
}

func (s *ownServer) modack(subName string, ids []string, secs []int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.find(subName)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, id := range ids {
		atomic.AddInt64(&modacks, 1)
		if secs[i] > 0 {
			if m := sub.out[id]; m != nil {
				m.deadline = now.Add(time.Duration(secs[i]) * time.Second)
			}
			continue
		}
		if m := s.settle(sub, id); m != nil {
			atomic.AddInt64(&nacked, 1)
			sub.queue = append(sub.queue, m)
			sub.wakeAll()
		}
	}
	return nil
}

func (s *ownServer) Acknowledge(_ context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, s.ack(req.Subscription, req.AckIds)
}

func (s *ownServer) ModifyAckDeadline(_ context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	if req.AckDeadlineSeconds < 0 || req.AckDeadlineSeconds > 600 {
		return nil, status.Errorf(codes.InvalidArgument, "ack_deadline_seconds %d out of [0, 600]", req.AckDeadlineSeconds)
	}
	secs := make([]int32, len(req.AckIds))
	for i := range secs {
		secs[i] = req.AckDeadlineSeconds
	}
	return &emptypb.Empty{}, s.modack(req.Subscription, req.AckIds, secs)
}

// expireLoop makes messages whose ack deadline passed available again.
func (s *ownServer) expireLoop() {
	for range time.Tick(500 * time.Millisecond) {
		now := time.Now()
		s.mu.Lock()
		for _, sub := range s.subs {
			for id, m := range sub.out {
				if now.After(m.deadline) {
					s.settle(sub, id)
					sub.queue = append(sub.queue, m)
					sub.wakeAll()
				}
			}
		}
		s.mu.Unlock()
	}
}

func (s *ownServer) StreamingPull(sps pb.Subscriber_StreamingPullServer) error {
	req, err := sps.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	sub, err := s.find(req.Subscription)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	uf := varintFields(req.XXX_unrecognized)
	st := &ownStream{sub: sub, maxMsgs: int64(uf[7]), maxBytes: int64(uf[8]), deadline: sub.deadline,
		wake: make(chan struct{}, 1)}
	if st.maxMsgs == 0 {
		st.maxMsgs = int64(*maxFlag)
	}
	sub.streams[st] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(sub.streams, st)
		for _, m := range sub.out {
			if m.holder == st {
				m.holder = nil // leased until its deadline, as in Pub/Sub
			}
		}
		s.mu.Unlock()
	}()
	if err := s.handle(st, req); err != nil {
		return err
	}
	ctx := sps.Context()
	errc := make(chan error, 2)
	go func() {
		for {
			req, err := sps.Recv()
			if err == nil {
				err = s.handle(st, req)
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { errc <- s.sendLoop(ctx, st, sps) }()
	err = <-errc
	if err == io.EOF || err == context.Canceled || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

func (s *ownServer) handle(st *ownStream, req *pb.StreamingPullRequest) error {
	if req.StreamAckDeadlineSeconds > 0 {
		if req.StreamAckDeadlineSeconds > 600 {
			return status.Errorf(codes.InvalidArgument, "stream_ack_deadline_seconds %d above 600", req.StreamAckDeadlineSeconds)
		}
		s.mu.Lock()
		st.deadline = time.Duration(req.StreamAckDeadlineSeconds) * time.Second
		s.mu.Unlock()
	}
	if len(req.ModifyDeadlineAckIds) != len(req.ModifyDeadlineSeconds) {
		return status.Errorf(codes.InvalidArgument, "modify_deadline_ack_ids (%d) and modify_deadline_seconds (%d) differ in length",
			len(req.ModifyDeadlineAckIds), len(req.ModifyDeadlineSeconds))
	}
	if len(req.AckIds) > 0 {
		if err := s.ack(st.sub.name, req.AckIds); err != nil {
			return err
		}
	}
	if len(req.ModifyDeadlineAckIds) > 0 {
		return s.modack(st.sub.name, req.ModifyDeadlineAckIds, req.ModifyDeadlineSeconds)
	}
	return nil
}

// take moves up to the stream's room (and -batch) messages from the queue to
// the stream; called with s.mu held.
func (s *ownServer) take(st *ownStream) []*pb.ReceivedMessage {
	sub := st.sub
	var out []*pb.ReceivedMessage
	now := time.Now()
	for sub.head < len(sub.queue) && len(out) < *batch {
		if st.maxMsgs > 0 && st.held >= st.maxMsgs {
			break
		}
		if st.maxBytes > 0 && st.bytes >= st.maxBytes {
			break
		}
		m := sub.queue[sub.head]
		sub.queue[sub.head] = nil
		sub.head++
		m.deliveries++
		if m.deliveries == 2 {
			s.redelivered++
		}
		m.holder, m.deadline = st, now.Add(st.deadline)
		st.held++
		st.bytes += m.size
		sub.out[m.rm.AckId] = m
		out = append(out, m.rm)
	}
	if sub.head == len(sub.queue) { // drained: reuse the array
		sub.queue, sub.head = sub.queue[:0], 0
	} else if sub.head > 4096 && sub.head > len(sub.queue)/2 {
		sub.queue, sub.head = append([]*ownMsg(nil), sub.queue[sub.head:]...), 0
	}
	return out
}

func (s *ownServer) sendLoop(ctx context.Context, st *ownStream, sps pb.Subscriber_StreamingPullServer) error {
	for {
		s.mu.Lock()
		msgs := s.take(st)
		s.mu.Unlock()
		if len(msgs) > 0 {
			noteDelivered(len(msgs))
			if err := sps.Send(&pb.StreamingPullResponse{ReceivedMessages: msgs}); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.wake:
		}
	}
}

// redeliveries is the number of messages delivered more than once.
func (s *ownServer) redeliveries() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redelivered
}
