// Command emu is the Pub/Sub emulator of the pull benchmark, in three modes
// (-mode), all on Debian's Go packages (golang-google-cloud-dev,
// golang-google-genproto-dev, golang-google-grpc-dev) and on a gRPC server of
// our own on a loopback address:
//
//   - own (default): the small in-memory server of own.go, O(1) work per
//     message; see there why.
//   - pstest: Google's pstest with its StreamingPull handler replaced. Every
//     other method is pstest's (CreateTopic, CreateSubscription, Publish,
//     Pull, Acknowledge, ModifyAckDeadline, ...); StreamingPull is rebuilt on
//     its exported methods: Pull(ReturnImmediately, MaxMessages = room) and one
//     StreamingPullResponse per batch of up to -batch messages as soon as the
//     stream has room under its flow control (max_outstanding_messages/bytes
//     from the first request, fields 7 and 8, read from the unknown fields
//     because Debian's genproto predates them; or -max). Acks and modacks,
//     on the stream or unary (older clients use those), go to pstest's
//     Acknowledge and ModifyAckDeadline (ids pstest does not know are dropped:
//     pstest panics on them) and free room on the stream that holds the
//     message; stream_ack_deadline_seconds is applied by a ModifyAckDeadline
//     right after each delivery. With nothing to send it looks again every
//     10 ms. Delivery state, deadlines and redelivery stay pstest's, but
//     pstest's own delivery goroutine still walks every unacknowledged message
//     every 10 ms.
//   - stock: pstest as it is: one message per stream per 10 ms tick, about 100
//     messages/s a stream (acks sent on a stream are not counted here; unary
//     Acknowledge calls are).
//
// It creates -topic and -sub, publishes -count events of the NDJSON file
// -events (even lines in binary mode with ce- attributes, odd lines as
// structured events), and then prints "LISTENING <port> cpu_us=<c>". It prints
// "OUTSTANDING <n> cpu_us=<c>" the first time -hold messages are outstanding
// at once and "ACKED <n> cpu_us=<c>" when -expect distinct messages have been
// acknowledged (cpu_us: this process's user+system CPU, from getrusage). On
// SIGTERM/SIGINT, or when stdin closes with -exit-on-stdin-close, it writes
// -stats (JSON) and exits 0.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/pstest"
	emptypb "github.com/golang/protobuf/ptypes/empty"
	pb "google.golang.org/genproto/googleapis/pubsub/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	addrFlag    = flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	topicFlag   = flag.String("topic", "projects/bench/topics/events", "topic to create")
	subFlag     = flag.String("sub", "projects/bench/subscriptions/jobrelay", "subscription to create")
	ackDeadline = flag.Int("ack-deadline", 600, "subscription ack deadline, seconds")
	eventsFlag  = flag.String("events", "", "NDJSON of structured CloudEvents to pre-publish")
	countFlag   = flag.Int("count", 0, "publish this many (0: every line of -events)")
	modeFlag    = flag.String("mode", "own", "own: the in-memory server of own.go; pstest: pstest with batched StreamingPull; stock: pstest as it is (about 100 messages/s a stream)")
	batch       = flag.Int("batch", 500, "messages per StreamingPullResponse at most")
	maxFlag     = flag.Int("max", 0, "outstanding messages per stream when the client sets no limit (0: none)")
	expect      = flag.Int("expect", 0, "print ACKED when this many distinct messages are acknowledged")
	hold        = flag.Int("hold", 0, "print OUTSTANDING the first time this many messages are outstanding")
	statsFlag   = flag.String("stats", "", "write a JSON summary here on SIGTERM/SIGINT")
	stdinExit   = flag.Bool("exit-on-stdin-close", false, "exit as on SIGTERM when stdin reaches EOF")
)

// counters for the stats file and the progress lines
var (
	delivered, responses, pulls, acked, nacked, modacks, dropped int64
	outstanding, maxOutstanding                                  int64
	ackedSet                                                     sync.Map
	holders                                                      sync.Map // ack id -> *stream
	expectOnce, holdOnce                                         sync.Once
	stdoutMu                                                     sync.Mutex
)

func say(format string, a ...interface{}) {
	stdoutMu.Lock()
	fmt.Printf(format+"\n", a...)
	stdoutMu.Unlock()
}

func cpuMicros() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

func maxRSSKiB() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Maxrss
}

// fastServer is pstest's GServer with StreamingPull replaced.
type fastServer struct {
	*pstest.GServer
	srv   *pstest.Server
	stock bool // StreamingPull is pstest's (acks on its streams are not counted)
}

// stream is one StreamingPull call.
type stream struct {
	f        *fastServer
	sub      string
	maxMsgs  int64 // 0: no limit
	maxBytes int64 // 0: no limit
	deadline int32 // stream_ack_deadline_seconds, 0: the subscription's

	mu    sync.Mutex
	held  map[string]int64 // ack id -> size of the messages this stream holds
	bytes int64
	wake  chan struct{}
}

// varintFields reads top-level varint fields from unknown protobuf bytes.
func varintFields(b []byte) map[int]uint64 {
	out := map[int]uint64{}
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return out
		}
		b = b[n:]
		field, wire := int(key>>3), key&7
		switch wire {
		case 0:
			v, m := uvarint(b)
			if m <= 0 {
				return out
			}
			out[field] = v
			b = b[m:]
		case 1:
			if len(b) < 8 {
				return out
			}
			b = b[8:]
		case 2:
			l, m := uvarint(b)
			if m <= 0 || uint64(len(b)-m) < l {
				return out
			}
			b = b[m+int(l):]
		case 5:
			if len(b) < 4 {
				return out
			}
			b = b[4:]
		default:
			return out
		}
	}
	return out
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func (f *fastServer) StreamingPull(sps pb.Subscriber_StreamingPullServer) error {
	if f.stock {
		return f.GServer.StreamingPull(sps)
	}
	req, err := sps.Recv()
	if err != nil {
		return err
	}
	ctx := sps.Context()
	if _, err := f.GServer.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: req.Subscription}); err != nil {
		return err
	}
	st := &stream{f: f, sub: req.Subscription, held: map[string]int64{}, wake: make(chan struct{}, 1)}
	uf := varintFields(req.XXX_unrecognized)
	st.maxMsgs, st.maxBytes = int64(uf[7]), int64(uf[8])
	if st.maxMsgs == 0 {
		st.maxMsgs = int64(*maxFlag)
	}
	if err := st.handle(ctx, req); err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- st.recvLoop(ctx, sps) }()
	go func() { errc <- st.sendLoop(ctx, sps) }()
	err = <-errc
	st.release()
	if err == io.EOF || err == context.Canceled || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

// release forgets what the stream held: pstest redelivers it after its deadline.
func (st *stream) release() {
	st.mu.Lock()
	atomic.AddInt64(&outstanding, -int64(len(st.held)))
	for id := range st.held {
		holders.Delete(id)
	}
	st.held = map[string]int64{}
	st.mu.Unlock()
}

func (st *stream) recvLoop(ctx context.Context, sps pb.Subscriber_StreamingPullServer) error {
	for {
		req, err := sps.Recv()
		if err != nil {
			return err
		}
		if err := st.handle(ctx, req); err != nil {
			return err
		}
	}
}

// forget drops ids from the holdings of the streams that hold them (acks and
// nacks may come on another stream, or as unary calls); returns how many were held.
func forget(ids []string) int {
	n := 0
	for _, id := range ids {
		v, ok := holders.Load(id)
		if !ok {
			continue
		}
		st := v.(*stream)
		st.mu.Lock()
		if sz, ok := st.held[id]; ok {
			delete(st.held, id)
			holders.Delete(id)
			st.bytes -= sz
			n++
			atomic.AddInt64(&outstanding, -1)
			select {
			case st.wake <- struct{}{}:
			default:
			}
		}
		st.mu.Unlock()
	}
	return n
}

// countAcks counts distinct acknowledged messages and says ACKED at -expect.
func countAcks(ids []string) {
	for _, id := range ids {
		if _, dup := ackedSet.LoadOrStore(id, true); !dup {
			n := atomic.AddInt64(&acked, 1)
			if *expect > 0 && n == int64(*expect) {
				expectOnce.Do(func() { say("ACKED %d cpu_us=%d", n, cpuMicros()) })
			}
		}
	}
}

// knownIDs drops the ids pstest does not know (its ModifyAckDeadline panics on them).
func (f *fastServer) knownIDs(ids []string) []string {
	known := ids[:0:0]
	for _, id := range ids {
		if f.srv.Message(id) == nil {
			atomic.AddInt64(&dropped, 1)
			continue
		}
		known = append(known, id)
	}
	return known
}

// Acknowledge is pstest's, plus the benchmark's counting and flow control.
func (f *fastServer) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	res, err := f.GServer.Acknowledge(ctx, req)
	if err == nil {
		countAcks(req.AckIds)
		forget(req.AckIds)
	}
	return res, err
}

// ModifyAckDeadline is pstest's, minus unknown ids, plus counting.
func (f *fastServer) ModifyAckDeadline(ctx context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	ids := f.knownIDs(req.AckIds)
	atomic.AddInt64(&modacks, int64(len(ids)))
	if len(ids) == 0 {
		return &emptypb.Empty{}, nil
	}
	res, err := f.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{
		Subscription: req.Subscription, AckIds: ids, AckDeadlineSeconds: req.AckDeadlineSeconds})
	if err == nil && req.AckDeadlineSeconds == 0 {
		atomic.AddInt64(&nacked, int64(forget(ids)))
	}
	return res, err
}

func (st *stream) handle(ctx context.Context, req *pb.StreamingPullRequest) error {
	if req.StreamAckDeadlineSeconds > 0 {
		st.deadline = req.StreamAckDeadlineSeconds
	}
	if len(req.ModifyDeadlineAckIds) != len(req.ModifyDeadlineSeconds) {
		return status.Errorf(codes.InvalidArgument, "modify_deadline_ack_ids (%d) and modify_deadline_seconds (%d) differ in length",
			len(req.ModifyDeadlineAckIds), len(req.ModifyDeadlineSeconds))
	}
	if len(req.AckIds) > 0 {
		if _, err := st.f.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: st.sub, AckIds: req.AckIds}); err != nil {
			return err
		}
	}
	if len(req.ModifyDeadlineAckIds) > 0 {
		bySecs := map[int32][]string{}
		for i, id := range req.ModifyDeadlineAckIds {
			bySecs[req.ModifyDeadlineSeconds[i]] = append(bySecs[req.ModifyDeadlineSeconds[i]], id)
		}
		for secs, ids := range bySecs {
			if _, err := st.f.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{
				Subscription: st.sub, AckIds: ids, AckDeadlineSeconds: secs}); err != nil {
				return err
			}
		}
	}
	return nil
}

// room is how many messages the stream may take now (-1: no limit).
func (st *stream) room() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.maxBytes > 0 && st.bytes >= st.maxBytes {
		return 0
	}
	if st.maxMsgs == 0 {
		return -1
	}
	return st.maxMsgs - int64(len(st.held))
}

func (st *stream) sendLoop(ctx context.Context, sps pb.Subscriber_StreamingPullServer) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		sent, err := st.sendSome(ctx, sps)
		if err != nil {
			return err
		}
		if sent {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.wake:
		case <-tick.C:
		}
	}
}

// sendSome sends one batch if the stream has room and pstest has messages.
func (st *stream) sendSome(ctx context.Context, sps pb.Subscriber_StreamingPullServer) (bool, error) {
	n := int64(*batch)
	if r := st.room(); r == 0 {
		return false, nil
	} else if r > 0 && r < n {
		n = r
	}
	atomic.AddInt64(&pulls, 1)
	res, err := st.f.GServer.Pull(ctx, &pb.PullRequest{Subscription: st.sub, MaxMessages: int32(n), ReturnImmediately: true})
	if err != nil || len(res.ReceivedMessages) == 0 {
		return false, err
	}
	ids := make([]string, 0, len(res.ReceivedMessages))
	st.mu.Lock()
	for _, rm := range res.ReceivedMessages {
		sz := int64(len(rm.Message.Data))
		for k, v := range rm.Message.Attributes {
			sz += int64(len(k) + len(v))
		}
		st.held[rm.AckId] = sz
		st.bytes += sz
		holders.Store(rm.AckId, st)
		ids = append(ids, rm.AckId)
	}
	st.mu.Unlock()
	if st.deadline > 0 && int(st.deadline) != *ackDeadline {
		if _, err := st.f.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{
			Subscription: st.sub, AckIds: ids, AckDeadlineSeconds: st.deadline}); err != nil {
			return false, err
		}
	}
	noteDelivered(len(ids))
	return true, sps.Send(&pb.StreamingPullResponse{ReceivedMessages: res.ReceivedMessages})
}

// noteDelivered counts one StreamingPullResponse of n messages.
func noteDelivered(n int) {
	now := atomic.AddInt64(&outstanding, int64(n))
	for {
		m := atomic.LoadInt64(&maxOutstanding)
		if now <= m || atomic.CompareAndSwapInt64(&maxOutstanding, m, now) {
			break
		}
	}
	if *hold > 0 && now >= int64(*hold) {
		holdOnce.Do(func() { say("OUTSTANDING %d cpu_us=%d", now, cpuMicros()) })
	}
	atomic.AddInt64(&delivered, int64(n))
	atomic.AddInt64(&responses, 1)
}

// message turns one structured CloudEvent into a Pub/Sub message: even lines
// in binary mode (ce- attributes, data = the event's data), odd lines
// structured (data = the whole event).
func message(line []byte, i int) (*pb.PubsubMessage, error) {
	if i%2 == 1 {
		return &pb.PubsubMessage{Data: append([]byte(nil), line...),
			Attributes: map[string]string{"content-type": "application/cloudevents+json"}}, nil
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil, err
	}
	m := &pb.PubsubMessage{Attributes: map[string]string{}}
	for k, raw := range ev {
		switch k {
		case "data":
			m.Data = []byte(raw)
		case "data_base64":
			return nil, fmt.Errorf("data_base64 is not supported here")
		case "datacontenttype":
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, err
			}
			m.Attributes["content-type"] = s
		default:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				s = string(raw) // a non-string extension: its JSON text
			}
			m.Attributes["ce-"+k] = s
		}
	}
	return m, nil
}

// backend is what prepublish needs of pstest's GServer or of ownServer.
type backend interface {
	CreateTopic(context.Context, *pb.Topic) (*pb.Topic, error)
	CreateSubscription(context.Context, *pb.Subscription) (*pb.Subscription, error)
	Publish(context.Context, *pb.PublishRequest) (*pb.PublishResponse, error)
}

func prepublish(g backend) (int, error) {
	ctx := context.Background()
	if _, err := g.CreateTopic(ctx, &pb.Topic{Name: *topicFlag}); err != nil {
		return 0, err
	}
	if _, err := g.CreateSubscription(ctx, &pb.Subscription{Name: *subFlag, Topic: *topicFlag,
		AckDeadlineSeconds: int32(*ackDeadline)}); err != nil {
		return 0, err
	}
	if *eventsFlag == "" {
		return 0, nil
	}
	data, err := ioutil.ReadFile(*eventsFlag)
	if err != nil {
		return 0, err
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 10<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %v", *eventsFlag, err)
	}
	n := *countFlag
	if n == 0 {
		n = len(lines)
	}
	if n > len(lines) {
		return 0, fmt.Errorf("%s: -count %d but only %d lines (event ids must be unique)", *eventsFlag, n, len(lines))
	}
	req := &pb.PublishRequest{Topic: *topicFlag}
	for i := 0; i < n; i++ {
		m, err := message(lines[i], i)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: %v", *eventsFlag, i+1, err)
		}
		req.Messages = append(req.Messages, m)
		if len(req.Messages) == 1000 || i == n-1 {
			if _, err := g.Publish(ctx, req); err != nil {
				return 0, err
			}
			req = &pb.PublishRequest{Topic: *topicFlag}
		}
	}
	return n, nil
}

func writeStats(redelivered func() int64, start time.Time) {
	if *statsFlag == "" {
		return
	}
	out, _ := json.MarshalIndent(map[string]interface{}{
		"mode": *modeFlag, "delivered": atomic.LoadInt64(&delivered), "responses": atomic.LoadInt64(&responses),
		"pulls": atomic.LoadInt64(&pulls), "acked": atomic.LoadInt64(&acked), "nacked": atomic.LoadInt64(&nacked),
		"modacks": atomic.LoadInt64(&modacks), "modacksUnknownDropped": atomic.LoadInt64(&dropped),
		"maxOutstanding": atomic.LoadInt64(&maxOutstanding), "redeliveredMessages": redelivered(),
		"cpuMicros": cpuMicros(), "maxRssKiB": maxRSSKiB(), "uptimeMs": time.Since(start).Milliseconds(),
	}, "", "  ")
	tmp := *statsFlag + ".tmp"
	if ioutil.WriteFile(tmp, append(out, '\n'), 0o644) == nil {
		os.Rename(tmp, *statsFlag)
	}
}

func main() {
	flag.Parse()
	start := time.Now()
	host, _, err := net.SplitHostPort(*addrFlag)
	if ip := net.ParseIP(host); err != nil || !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
		fmt.Fprintf(os.Stderr, "emu: -addr %q: only loopback addresses are allowed\n", *addrFlag)
		os.Exit(2)
	}
	if *batch < 1 {
		fmt.Fprintln(os.Stderr, "emu: -batch must be at least 1")
		os.Exit(2)
	}
	var (
		be          backend
		publisher   pb.PublisherServer
		subscriber  pb.SubscriberServer
		redelivered func() int64
	)
	switch *modeFlag {
	case "own":
		own := newOwnServer()
		be, publisher, subscriber, redelivered = own, own, own, own.redeliveries
	case "pstest", "stock":
		srv := pstest.NewServer() // its own listener (loopback) stays unused
		be, publisher = &srv.GServer, &srv.GServer
		subscriber = &fastServer{GServer: &srv.GServer, srv: srv, stock: *modeFlag == "stock"}
		redelivered = func() int64 {
			n := int64(0)
			for _, m := range srv.Messages() {
				if m.Deliveries > 1 {
					n++
				}
			}
			return n
		}
	default:
		fmt.Fprintf(os.Stderr, "emu: -mode %q: own, pstest or stock\n", *modeFlag)
		os.Exit(2)
	}
	n, err := prepublish(be)
	if err != nil {
		fmt.Fprintf(os.Stderr, "emu: %v\n", err)
		os.Exit(1)
	}
	lis, err := net.Listen("tcp", *addrFlag)
	if err != nil {
		fmt.Fprintf(os.Stderr, "emu: listen %s: %v\n", *addrFlag, err)
		os.Exit(1)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(20 << 20))
	pb.RegisterPublisherServer(gs, publisher)
	pb.RegisterSubscriberServer(gs, subscriber)
	go gs.Serve(lis)
	fmt.Fprintf(os.Stderr, "emu: %d messages published to %s in %v; mode %s\n",
		n, *topicFlag, time.Since(start).Round(time.Millisecond), *modeFlag)
	say("LISTENING %d cpu_us=%d", lis.Addr().(*net.TCPAddr).Port, cpuMicros())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if *stdinExit {
		go func() {
			io.Copy(ioutil.Discard, os.Stdin)
			stop <- syscall.SIGTERM
		}()
	}
	<-stop
	writeStats(redelivered, start)
	gs.Stop()
	os.Exit(0)
}
