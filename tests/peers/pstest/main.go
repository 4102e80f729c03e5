// pstest-harness: Google's in-memory Pub/Sub server (cloud.google.com/go/pubsub/pstest,
// Debian's golang-google-cloud-dev 0.56) on a loopback port, with a line protocol
// for tests and benchmarks: create topics and subscriptions, publish messages from
// a file, close streams after a while (SetStreamTimeout), and report how many
// messages were delivered, redelivered and acked.
//
// Build offline: GO111MODULE=off GOPATH=/usr/share/gocode go build -o pstest .
//
// stdout: first `LISTENING <port>`, then exactly one reply line per command:
// `OK <json>` or `ERR <text>`. Commands come one a line on stdin (and on
// --control-port, if given); EOF on stdin stops the server (so a test that dies
// leaves no orphan), unless --stdin=false. See README.md for every command.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/pstest"
	pb "google.golang.org/genproto/googleapis/pubsub/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// maxLine bounds a command line and a message file line (a Pub/Sub message is at most 10 MB).
const maxLine = 16 << 20

type harness struct {
	srv  *pstest.Server
	flow *flowControl // server-side flow control (flow.go)
	mu   sync.Mutex   // serialises replies from stdin and the control port
	out  io.Writer

	smu     sync.Mutex             // guards the stream counters below
	streams map[string]int         // streams opened, by method
	lastMD  map[string]interface{} // the request metadata of the last stream opened

	calls    map[string]int                    // calls made (unary and streams), by method
	methodMD map[string]map[string]interface{} // the metadata of each method's last call

	requests      int // StreamingPull requests received (first requests included)
	emptyRequests int // of which empty: a client's stream keepalive

	rec *os.File // --record: one JSON line per call (under smu)

	service // dead-letter policies and exactly-once delivery (service.go)
}

// The request metadata a client sends that tests look at.
var watchedMD = []string{"x-goog-request-params", "x-goog-api-client", "user-agent", "authorization", "x-goog-user-project"}

// interceptor counts the streams opened per method and keeps the last one's metadata; a
// StreamingPull stream goes through pullStream (service.go).
func (h *harness) interceptor(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	got := h.record(ss.Context(), info.FullMethod)
	h.smu.Lock()
	h.streams[info.FullMethod]++
	h.lastMD = got
	h.smu.Unlock()
	if info.FullMethod == "/google.pubsub.v1.Subscriber/StreamingPull" {
		ss = &pullStream{ServerStream: ss, h: h}
	}
	return handler(srv, ss)
}

// unaryInterceptor counts unary calls per method and keeps each method's last metadata.
func (h *harness) unaryInterceptor(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	h.record(ctx, info.FullMethod)
	return h.unaryService(ctx, req, info, handler)
}

// record notes one call of method and returns the watched metadata it carried.
func (h *harness) record(ctx context.Context, method string) map[string]interface{} {
	md, _ := metadata.FromIncomingContext(ctx)
	got := map[string]interface{}{}
	for _, k := range watchedMD {
		if v := md.Get(k); len(v) == 1 {
			got[k] = v[0]
		} else if len(v) > 1 {
			got[k] = v
		}
	}
	h.smu.Lock()
	h.calls[method]++
	h.methodMD[method] = got
	if h.rec != nil {
		b, _ := json.Marshal(map[string]interface{}{"time": time.Now().UTC().Format(time.RFC3339Nano), "method": method, "metadata": got})
		_, _ = h.rec.Write(append(b, '\n'))
	}
	h.smu.Unlock()
	return got
}

func main() {
	host := flag.String("host", "127.0.0.1", "loopback address to listen on")
	port := flag.Int("port", 0, "port (0: any free port)")
	topic := flag.String("topic", "", "create this topic (projects/P/topics/T) at start")
	sub := flag.String("subscription", "", "create this subscription of -topic at start")
	ackDeadline := flag.Int("ack-deadline", 10, "ack deadline of -subscription, seconds (10-600)")
	ordering := flag.Bool("ordering", false, "-subscription has message ordering enabled (pstest ignores it)")
	publish := flag.String("publish", "", "publish the messages of this file to -topic at start")
	count := flag.Int("count", 0, "with -publish: publish this many messages, cycling through the file")
	streamTimeout := flag.Duration("stream-timeout", 0, "close every stream after this long (0: never)")
	controlPort := flag.Int("control-port", -1, "also take commands on this loopback TCP port (0: any; its port is printed as CONTROL <port>)")
	useStdin := flag.Bool("stdin", true, "take commands on stdin; EOF stops the server")
	pingMin := flag.Duration("keepalive-min-time", 20*time.Second, "GOAWAY too_many_pings to a client that pings more often than this (gRPC's enforcement policy)")
	tlsCert := flag.String("tls-cert", "", "serve gRPC over TLS with this PEM certificate (chain); needs -tls-key")
	tlsKey := flag.String("tls-key", "", "the PEM private key of -tls-cert")
	record := flag.String("record", "", "append one JSON line per call (method, watched metadata) to this file")
	dlTopic := flag.String("dead-letter-topic", "", "-subscription has a dead-letter policy with this topic (created at start if missing)")
	maxAttempts := flag.Int("max-delivery-attempts", 0, "with -dead-letter-topic: max delivery attempts, 5-100 (0: 5)")
	eod := flag.Bool("exactly-once", false, "-subscription has exactly-once delivery")
	flag.Parse()

	if !loopback(*host) {
		fatalf("--host %q is not a loopback address", *host)
	}
	srv := pstest.NewServer()
	h := &harness{srv: srv, flow: newFlowControl(), out: os.Stdout, streams: map[string]int{}, lastMD: map[string]interface{}{},
		calls: map[string]int{}, methodMD: map[string]map[string]interface{}{}, service: newService()}

	if *record != "" {
		f, err := os.OpenFile(*record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fatalf("record: %v", err)
		}
		h.rec = f
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(64 << 20), grpc.StreamInterceptor(h.interceptor),
		grpc.UnaryInterceptor(h.unaryInterceptor),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: *pingMin})}
	if (*tlsCert == "") != (*tlsKey == "") {
		fatalf("--tls-cert and --tls-key go together")
	}
	if *tlsCert != "" {
		creds, err := credentials.NewServerTLSFromFile(*tlsCert, *tlsKey)
		if err != nil {
			fatalf("tls: %v", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fatalf("listen: %v", err)
	}
	gs := grpc.NewServer(opts...)
	pb.RegisterPublisherServer(gs, &srv.GServer)
	pb.RegisterSubscriberServer(gs, &srv.GServer)
	go func() { _ = gs.Serve(lis) }()

	if *streamTimeout > 0 {
		srv.SetStreamTimeout(*streamTimeout)
	}
	if *topic != "" {
		if _, err := h.createTopic(*topic); err != nil {
			fatalf("%v", err)
		}
	}
	if *sub == "" && (*dlTopic != "" || *maxAttempts != 0 || *eod) {
		fatalf("--dead-letter-topic, --max-delivery-attempts and --exactly-once go with --subscription")
	}
	if *sub != "" {
		if *topic == "" {
			fatalf("--subscription needs --topic")
		}
		if *dlTopic != "" {
			if _, err := h.srv.GServer.GetTopic(context.Background(), &pb.GetTopicRequest{Topic: *dlTopic}); err != nil {
				if _, err := h.createTopic(*dlTopic); err != nil {
					fatalf("%v", err)
				}
			}
		}
		o := subOpts{dlTopic: *dlTopic, maxAttempts: *maxAttempts, eod: *eod}
		if _, err := h.createSub(*sub, *topic, *ackDeadline, *ordering, o); err != nil {
			fatalf("%v", err)
		}
	}
	if *publish != "" {
		if *topic == "" {
			fatalf("--publish needs --topic")
		}
		if _, err := h.publishFile(*topic, *publish, *count); err != nil {
			fatalf("%v", err)
		}
	}

	var cl net.Listener
	if *controlPort >= 0 {
		cl, err = net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*controlPort)))
		if err != nil {
			fatalf("control listen: %v", err)
		}
	}
	fmt.Fprintf(os.Stdout, "LISTENING %d\n", lis.Addr().(*net.TCPAddr).Port)
	if cl != nil {
		fmt.Fprintf(os.Stdout, "CONTROL %d\n", cl.Addr().(*net.TCPAddr).Port)
		go h.serveControl(cl)
	}

	done := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		close(done)
	}()
	if *useStdin {
		go func() {
			h.session(os.Stdin, os.Stdout)
			close(done)
		}()
	}
	<-done
	gs.Stop()
	os.Exit(0)
}

func fatalf(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "pstest: "+f+"\n", a...)
	os.Exit(2)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *harness) serveControl(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			h.session(c, c)
		}()
	}
}

// session reads commands from r until EOF or `quit`, one reply line each to w.
func (h *harness) session(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "quit" {
			h.reply(w, "OK {}")
			return
		}
		res, err := h.command(strings.Fields(line))
		if err != nil {
			h.reply(w, "ERR "+strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		b, _ := json.Marshal(res)
		h.reply(w, "OK "+string(b))
	}
}

func (h *harness) reply(w io.Writer, s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintln(w, s)
	if f, ok := w.(*os.File); ok {
		_ = f.Sync()
	}
}

func need(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func (h *harness) command(a []string) (interface{}, error) {
	switch a[0] {
	case "create-topic":
		if err := need(a, 2, "create-topic TOPIC"); err != nil {
			return nil, err
		}
		return h.createTopic(a[1])
	case "create-subscription":
		const usage = "create-subscription SUB TOPIC [ACK_DEADLINE_S] [--dead-letter-topic T] [--max-delivery-attempts N] [--exactly-once]"
		if err := need(a, 3, usage); err != nil {
			return nil, err
		}
		ad := 10
		rest := a[3:]
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			v, err := strconv.Atoi(rest[0])
			if err != nil {
				return nil, fmt.Errorf("ack deadline %q: not a number", rest[0])
			}
			ad = v
			rest = rest[1:]
		}
		o, err := parseSubOpts(rest)
		if err != nil {
			return nil, fmt.Errorf("%v; usage: %s", err, usage)
		}
		return h.createSub(a[1], a[2], ad, false, o)
	case "delete-subscription":
		if err := need(a, 2, "delete-subscription SUB"); err != nil {
			return nil, err
		}
		_, err := h.srv.GServer.DeleteSubscription(context.Background(), &pb.DeleteSubscriptionRequest{Subscription: a[1]})
		if err == nil {
			h.unregister(a[1])
		}
		return map[string]string{"deleted": a[1]}, err
	case "delete-topic":
		if err := need(a, 2, "delete-topic TOPIC"); err != nil {
			return nil, err
		}
		_, err := h.srv.GServer.DeleteTopic(context.Background(), &pb.DeleteTopicRequest{Topic: a[1]})
		return map[string]string{"deleted": a[1]}, err
	case "pull":
		if err := need(a, 4, "pull SUB N TIMEOUT"); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(a[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("N %q: not a number >= 1", a[2])
		}
		d, err := time.ParseDuration(a[3])
		if err != nil {
			return nil, err
		}
		return h.pull(a[1], n, d)
	case "calls":
		if err := need(a, 2, "calls METHOD"); err != nil {
			return nil, err
		}
		h.smu.Lock()
		defer h.smu.Unlock()
		md := h.methodMD[a[1]]
		if md == nil {
			md = map[string]interface{}{}
		}
		return map[string]interface{}{"calls": h.calls[a[1]], "lastMetadata": md}, nil
	case "publish":
		if err := need(a, 3, "publish TOPIC FILE [COUNT]"); err != nil {
			return nil, err
		}
		n := 0
		if len(a) > 3 {
			v, err := strconv.Atoi(a[3])
			if err != nil || v < 0 {
				return nil, fmt.Errorf("count %q: not a number >= 0", a[3])
			}
			n = v
		}
		return h.publishFile(a[1], a[2], n)
	case "stream-timeout":
		if err := need(a, 2, "stream-timeout DURATION (0: never)"); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(a[1])
		if err != nil {
			return nil, err
		}
		h.srv.SetStreamTimeout(d)
		return map[string]string{"streamTimeout": d.String()}, nil
	case "stats":
		return h.stats(), nil
	case "messages":
		if len(a) > 1 {
			return h.messagesToFile(a[1])
		}
		return h.messages(), nil
	case "drain":
		if err := need(a, 3, "drain SUB FILE [MAX]"); err != nil {
			return nil, err
		}
		max := 0
		if len(a) > 3 {
			v, err := strconv.Atoi(a[3])
			if err != nil || v < 0 {
				return nil, fmt.Errorf("max %q: not a number >= 0", a[3])
			}
			max = v
		}
		return h.drainToFile(a[1], a[2], max)
	case "streams":
		h.smu.Lock()
		defer h.smu.Unlock()
		return map[string]interface{}{
			"streamingPull": h.streams["/google.pubsub.v1.Subscriber/StreamingPull"],
			"requests":      h.requests,
			"emptyRequests": h.emptyRequests,
			"lastMetadata":  h.lastMD,
		}, nil
	case "wait-acked", "wait-delivered":
		if err := need(a, 3, a[0]+" N TIMEOUT"); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(a[1])
		if err != nil {
			return nil, fmt.Errorf("N %q: not a number", a[1])
		}
		d, err := time.ParseDuration(a[2])
		if err != nil {
			return nil, err
		}
		return h.wait(a[0], n, d)
	case "counters", "eod":
		return h.counters(), nil
	case "wait-counter":
		if err := need(a, 4, "wait-counter NAME N TIMEOUT"); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(a[2])
		if err != nil {
			return nil, fmt.Errorf("N %q: not a number", a[2])
		}
		d, err := time.ParseDuration(a[3])
		if err != nil {
			return nil, err
		}
		return h.waitCounter(a[1], n, d)
	case "eod-fail":
		return h.eodFail(a)
	default:
		return nil, fmt.Errorf("unknown command %q (create-topic, delete-topic, create-subscription, delete-subscription, publish, pull, drain, calls, stream-timeout, stats, messages, streams, wait-acked, wait-delivered, counters, eod, wait-counter, eod-fail, quit)", a[0])
	}
}

func (h *harness) createTopic(name string) (interface{}, error) {
	t, err := h.srv.GServer.CreateTopic(context.Background(), &pb.Topic{Name: name})
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %v", name, err)
	}
	return map[string]string{"topic": t.Name}, nil
}

func (h *harness) createSub(name, topic string, ackDeadline int, ordering bool, o subOpts) (interface{}, error) {
	if err := h.checkSubOpts(&o); err != nil {
		return nil, fmt.Errorf("create subscription %s: %v", name, err)
	}
	ps := &pb.Subscription{Name: name, Topic: topic, AckDeadlineSeconds: int32(ackDeadline), EnableMessageOrdering: ordering}
	if o.dlTopic != "" {
		ps.DeadLetterPolicy = &pb.DeadLetterPolicy{DeadLetterTopic: o.dlTopic, MaxDeliveryAttempts: int32(o.maxAttempts)}
	}
	if o.eod { // enable_exactly_once_delivery (16): GetSubscription answers it
		ps.XXX_unrecognized = append([]byte(nil), eodSubscriptionField...)
	}
	s, err := h.srv.GServer.CreateSubscription(context.Background(), ps)
	if err != nil {
		return nil, fmt.Errorf("create subscription %s: %v", name, err)
	}
	h.register(s.Name, s.AckDeadlineSeconds, ordering, o)
	res := map[string]interface{}{"subscription": s.Name, "topic": s.Topic, "ackDeadlineSeconds": s.AckDeadlineSeconds}
	if o.dlTopic != "" {
		res["deadLetterTopic"], res["maxDeliveryAttempts"] = o.dlTopic, o.maxAttempts
	}
	if o.eod {
		res["exactlyOnce"] = true
	}
	return res, nil
}

// A line of a message file. data is UTF-8 text, data_base64 raw bytes; "{{n}}" in
// data and attribute values becomes the message's sequence number (0, 1, ...).
type fileMsg struct {
	Data        *string           `json:"data"`
	DataBase64  *string           `json:"data_base64"`
	Attributes  map[string]string `json:"attributes"`
	OrderingKey string            `json:"ordering_key"`
}

func readMessages(path string) ([]fileMsg, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var out []fileMsg
	for ln := 1; sc.Scan(); ln++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var m fileMsg
		if err := json.Unmarshal([]byte(t), &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, ln, err)
		}
		if m.Data != nil && m.DataBase64 != nil {
			return nil, fmt.Errorf("%s:%d: give data or data_base64, not both", path, ln)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no messages", path)
	}
	return out, nil
}

func (m *fileMsg) proto(seq int) (*pb.PubsubMessage, error) {
	n := strconv.Itoa(seq)
	pm := &pb.PubsubMessage{OrderingKey: strings.ReplaceAll(m.OrderingKey, "{{n}}", n)}
	if m.Data != nil {
		pm.Data = []byte(strings.ReplaceAll(*m.Data, "{{n}}", n))
	} else if m.DataBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*m.DataBase64)
		if err != nil {
			return nil, fmt.Errorf("data_base64: %v", err)
		}
		pm.Data = b
	}
	if len(m.Attributes) > 0 {
		pm.Attributes = make(map[string]string, len(m.Attributes))
		for k, v := range m.Attributes {
			pm.Attributes[k] = strings.ReplaceAll(v, "{{n}}", n)
		}
	}
	return pm, nil
}

// publishFile publishes count messages (0: each line once) cycling through the file, in batches.
func (h *harness) publishFile(topic, path string, count int) (interface{}, error) {
	msgs, err := readMessages(path)
	if err != nil {
		return nil, err
	}
	if count == 0 {
		count = len(msgs)
	}
	var first, last string
	const batch = 1000
	for i := 0; i < count; i += batch {
		req := &pb.PublishRequest{Topic: topic}
		for j := i; j < count && j < i+batch; j++ {
			pm, err := msgs[j%len(msgs)].proto(j)
			if err != nil {
				return nil, fmt.Errorf("%s: message %d: %v", path, j%len(msgs)+1, err)
			}
			req.Messages = append(req.Messages, pm)
		}
		res, err := h.srv.GServer.Publish(context.Background(), req)
		if err != nil {
			return nil, fmt.Errorf("publish to %s: %v", topic, err)
		}
		if first == "" {
			first = res.MessageIds[0]
		}
		last = res.MessageIds[len(res.MessageIds)-1]
	}
	return map[string]interface{}{"published": count, "first": first, "last": last}, nil
}

type statsT struct {
	Published   int `json:"published"`   // messages ever published
	Delivered   int `json:"delivered"`   // messages delivered at least once
	Deliveries  int `json:"deliveries"`  // deliveries in all (redeliveries included)
	Redelivered int `json:"redelivered"` // messages delivered more than once
	Acked       int `json:"acked"`       // messages acked at least once
	Acks        int `json:"acks"`        // acks in all
	Unacked     int `json:"unacked"`     // published and not acked
	Outstanding int `json:"outstanding"` // delivered and not acked
}

func (h *harness) stats() statsT {
	var s statsT
	for _, m := range h.srv.Messages() {
		s.Published++
		s.Deliveries += m.Deliveries
		s.Acks += m.Acks
		if m.Deliveries > 0 {
			s.Delivered++
		}
		if m.Deliveries > 1 {
			s.Redelivered++
		}
		if m.Acks > 0 {
			s.Acked++
		} else {
			s.Unacked++
			if m.Deliveries > 0 {
				s.Outstanding++
			}
		}
	}
	return s
}

type msgInfo struct {
	ID          string            `json:"id"`
	Deliveries  int               `json:"deliveries"`
	Acks        int               `json:"acks"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	PublishTime string            `json:"publishTime"`
}

func (h *harness) messages() []msgInfo {
	ms := h.srv.Messages()
	out := make([]msgInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, msgInfo{ID: m.ID, Deliveries: m.Deliveries, Acks: m.Acks, Attributes: m.Attributes,
			PublishTime: m.PublishTime.UTC().Format(time.RFC3339Nano)})
	}
	sort.SliceStable(out, func(i, j int) bool { return idNum(out[i].ID) < idNum(out[j].ID) })
	return out
}

// messagesToFile writes what `messages` answers to path (one JSON array) instead of the reply
// line, which may be megabytes with many messages; the reply says how many.
func (h *harness) messagesToFile(path string) (interface{}, error) {
	b, err := json.Marshal(h.messages())
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("messages %s: %v", path, err)
	}
	return map[string]interface{}{"file": path}, nil
}

// drainedMsg is a line of the file `drain` appends to.
type drainedMsg struct {
	ID          string            `json:"id"`
	Data        string            `json:"data_base64"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	PublishTime string            `json:"publishTime"`
}

// drainToFile pulls what SUB holds now (unary Pull, return_immediately; max 0: all), acks it,
// and appends one JSON line a message to path: how a test reads a dead-letter topic as it fills.
func (h *harness) drainToFile(sub, path string, max int) (interface{}, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	n := 0
	for max == 0 || n < max {
		want := 1000
		if max > 0 && max-n < want {
			want = max - n
		}
		res, err := h.srv.GServer.Pull(context.Background(), &pb.PullRequest{Subscription: sub, MaxMessages: int32(want), ReturnImmediately: true})
		if err != nil {
			return nil, fmt.Errorf("pull %s: %v", sub, err)
		}
		if len(res.ReceivedMessages) == 0 {
			break
		}
		got := h.deliverAll(sub, res.ReceivedMessages, h.subLease(sub)) // counted as deliveries; dead letters forwarded
		ids := make([]string, 0, len(got))
		for _, rm := range got {
			m := rm.Message
			b, _ := json.Marshal(drainedMsg{ID: m.MessageId, Data: base64.StdEncoding.EncodeToString(m.Data), Attributes: m.Attributes,
				PublishTime: time.Unix(m.PublishTime.GetSeconds(), int64(m.PublishTime.GetNanos())).UTC().Format(time.RFC3339Nano)})
			w.Write(append(b, '\n'))
			ids = append(ids, m.MessageId) // pstest's ack id
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			if _, err := h.srv.GServer.Acknowledge(context.Background(), &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
				return nil, fmt.Errorf("ack %s: %v", sub, err)
			}
			h.noteAcks(sub, ids)
		}
		n += len(ids)
	}
	return map[string]interface{}{"pulled": n, "file": path}, nil
}

func idNum(id string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, "m"))
	return n
}

// wait polls the server's counters (every 10 ms) until the condition holds or d passes.
func (h *harness) wait(what string, n int, d time.Duration) (interface{}, error) {
	end := time.Now().Add(d)
	for {
		s := h.stats()
		got := s.Acked
		if what == "wait-delivered" {
			got = s.Delivered
		}
		if got >= n {
			return s, nil
		}
		if time.Now().After(end) {
			b, _ := json.Marshal(s)
			return nil, errors.New(fmt.Sprintf("timeout after %s: %s %d of %d; %s", d, strings.TrimPrefix(what, "wait-"), got, n, b))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A message read back by `pull`.
type pulledMsg struct {
	ID         string            `json:"id"`
	Data       string            `json:"data_base64"`
	Attributes map[string]string `json:"attributes"`
}

// pull reads n messages of sub with unary Pull calls (each waits up to 500 ms when
// none is there), acks them, and returns them in the order received; ERR when
// TIMEOUT passes first, with what was read by then (acked: they are gone).
func (h *harness) pull(sub string, n int, d time.Duration) (interface{}, error) {
	end := time.Now().Add(d)
	var out []pulledMsg
	for len(out) < n {
		res, err := h.srv.GServer.Pull(context.Background(), &pb.PullRequest{Subscription: sub, MaxMessages: int32(n - len(out))})
		if err != nil {
			return nil, fmt.Errorf("pull %s: %v", sub, err)
		}
		var ids []string
		for _, rm := range h.deliverAll(sub, res.ReceivedMessages, h.subLease(sub)) {
			m := rm.Message
			out = append(out, pulledMsg{ID: m.MessageId, Data: base64.StdEncoding.EncodeToString(m.Data), Attributes: m.Attributes})
			ids = append(ids, m.MessageId) // pstest's ack id
		}
		if len(ids) > 0 {
			if _, err := h.srv.GServer.Acknowledge(context.Background(), &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
				return nil, fmt.Errorf("ack %s: %v", sub, err)
			}
			h.noteAcks(sub, ids)
		}
		if len(out) < n && time.Now().After(end) {
			b, _ := json.Marshal(out)
			return nil, fmt.Errorf("timeout after %s: pulled %d of %d: %s", d, len(out), n, b)
		}
	}
	return out, nil
}
