#!/usr/bin/env node
// spclient.js — a small StreamingPull client for the harness's self-test
// (tests/integration/test_pstest_peer.sh): it opens streams, sends acks and modacks when
// told to on stdin, and prints every response it receives, decoded with Google's current
// google/pubsub/v1/pubsub.proto (npm google-proto-files), so that fields the harness adds
// as raw wire bytes (acknowledge_confirmation, modify_ack_deadline_confirmation,
// subscription_properties) are read as a real client reads them.
//
//   NODE_PATH=tests/peers/runfake/node_modules node spclient.js 127.0.0.1:PORT
//
// stdin, one command a line (NAME names a stream):
//   open NAME SUB [ACK_ID...]      open a stream (first request: SUB, stream_ack_deadline_seconds
//                                  10, and these ack ids)
//   openfc NAME SUB MAX [CLIENT]   the same, with max_outstanding_messages MAX (and client_id)
//   ack NAME ACK_ID...             send ack_ids on the stream
//   modack NAME SECS ACK_ID...     send modify_deadline_ack_ids with SECS each
//   close NAME                     cancel the stream
// stdout, one line an event:
//   RESP NAME {"messages":N,"props":{...}}   a response (props: subscription_properties, or null)
//   MSG NAME {"messageId","ackId","deliveryAttempt","data"}   each message of it
//   ACKCONF NAME {"ackIds","invalidAckIds","unorderedAckIds","temporaryFailedAckIds"}
//   MODCONF NAME {"ackIds","invalidAckIds","temporaryFailedAckIds"}
//   SENT NAME <command>             a request was written
//   END NAME <code> <details>       the stream ended
'use strict';

const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const target = process.argv[2];
if (!target || !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(target)) {
  process.stderr.write('usage: node spclient.js 127.0.0.1:PORT (loopback only)\n');
  process.exit(2);
}
const protoRoot = path.dirname(require.resolve('google-proto-files/package.json'));
const def = protoLoader.loadSync('google/pubsub/v1/pubsub.proto', {
  keepCase: false, longs: String, enums: String, defaults: false, arrays: true, includeDirs: [protoRoot],
});
const pubsub = grpc.loadPackageDefinition(def).google.pubsub.v1;
const client = new pubsub.Subscriber(target, grpc.credentials.createInsecure());

const streams = new Map();
const out = (line) => process.stdout.write(line + '\n');

function open(name, sub, acks, maxOutstanding, clientId) {
  const call = client.streamingPull();
  streams.set(name, call);
  call.on('data', (res) => {
    const msgs = res.receivedMessages || [];
    out(`RESP ${name} ${JSON.stringify({ messages: msgs.length, props: res.subscriptionProperties || null })}`);
    for (const rm of msgs) {
      out(`MSG ${name} ${JSON.stringify({
        messageId: rm.message.messageId, ackId: rm.ackId, deliveryAttempt: rm.deliveryAttempt || 0,
        data: Buffer.from(rm.message.data || []).toString('utf8'),
      })}`);
    }
    const a = res.acknowledgeConfirmation;
    if (a) {
      out(`ACKCONF ${name} ${JSON.stringify({
        ackIds: a.ackIds || [], invalidAckIds: a.invalidAckIds || [],
        unorderedAckIds: a.unorderedAckIds || [], temporaryFailedAckIds: a.temporaryFailedAckIds || [],
      })}`);
    }
    const m = res.modifyAckDeadlineConfirmation;
    if (m) {
      out(`MODCONF ${name} ${JSON.stringify({
        ackIds: m.ackIds || [], invalidAckIds: m.invalidAckIds || [], temporaryFailedAckIds: m.temporaryFailedAckIds || [],
      })}`);
    }
  });
  call.on('error', (e) => out(`END ${name} ${e.code} ${String(e.details || e.message).replace(/\s+/g, ' ')}`));
  call.on('end', () => out(`END ${name} 0 end`));
  const first = { subscription: sub, streamAckDeadlineSeconds: 10, ackIds: acks };
  if (maxOutstanding) first.maxOutstandingMessages = maxOutstanding;
  if (clientId) first.clientId = clientId;
  call.write(first);
}

function stream(name) {
  const s = streams.get(name);
  if (!s) throw new Error(`no stream ${name}`);
  return s;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const a = line.trim().split(/\s+/);
  if (a[0] === '') return;
  try {
    switch (a[0]) {
      case 'open': open(a[1], a[2], a.slice(3)); break;
      case 'openfc': open(a[1], a[2], [], Number(a[3]), a[4]); break;
      case 'ack': stream(a[1]).write({ ackIds: a.slice(2) }); break;
      case 'modack': {
        const ids = a.slice(3);
        stream(a[1]).write({ modifyDeadlineAckIds: ids, modifyDeadlineSeconds: ids.map(() => Number(a[2])) });
        break;
      }
      case 'close': stream(a[1]).cancel(); streams.delete(a[1]); break;
      default: throw new Error(`unknown command ${a[0]}`);
    }
    out(`SENT ${a[1]} ${line.trim()}`);
  } catch (e) {
    out(`ERROR ${String(e.message).replace(/\s+/g, ' ')}`);
  }
});
rl.on('close', () => {
  for (const s of streams.values()) s.cancel();
  client.close();
  process.exit(0);
});
