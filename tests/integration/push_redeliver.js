#!/usr/bin/env node
'use strict';
// push_redeliver.js — delivers events to `jobrelay serve` the way Pub/Sub push does:
// wrapped push bodies ({"message": {...}, "subscription": ..., "deliveryAttempt": N}),
// at most --concurrency deliveries outstanding, and every delivery that does not get a
// 2xx (an error status, a refused or reset connection, a timeout) is delivered again
// after an exponential backoff with jitter (Pub/Sub's push backoff, shortened), until
// it gets a 2xx. A server that is killed and restarted on the same port is simply
// retried until it answers again. deliveryAttempt is what Pub/Sub sends for a
// subscription with a dead-letter policy: 1 for a message's first delivery, then one more
// for each redelivery of that message.
//
// --url may list several endpoints (comma-separated: jobrelay serve processes side by side,
// as behind a load balancer): each delivery attempt goes to one of them at random (seeded
// by --seed), so a redelivery usually lands on another one than the attempt that failed.
//
//   node push_redeliver.js --url http://127.0.0.1:PORT/[,http://...] --messages FILE --count N
//        --log OUT.jsonl --progress PROGRESS.json [--concurrency 32] [--seed 1]
//        [--subscription S] [--min-backoff-ms 100] [--max-backoff-ms 2000] [--timeout-ms 30000]
//
// FILE: pstest's message format (one {"data", "attributes"} a line, "{{n}}" = the
// message's number); message n is line n % lines, with messageId "p<n>".
// OUT.jsonl: one line per delivery attempt {"n","attempt","to","start","end","status"|"error"}
// (to: the endpoint's place in --url, from 1),
// with "retry_after" when the answer had a Retry-After header (times in ms since the epoch). PROGRESS.json: {"acked","outstanding","attempts"},
// rewritten (atomically) at most every 100 ms and at the end. Exits 0 when every
// message got a 2xx; SIGTERM stops it (exit 1).

const fs = require('fs');
const http = require('http');

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    o[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'messages', 'count', 'log', 'progress']) if (o[k] === undefined) throw new Error(`--${k} is required`);
  return o;
}

let a;
try {
  a = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`push_redeliver: ${e.message}\n`);
  process.exit(2);
}
const urls = a.url.split(',').filter(Boolean).map((u) => new URL(u));
// mulberry32: the endpoints' draw, reproducible from --seed
let rnd = Number(a.seed || 1) >>> 0;
function random() {
  rnd = (rnd + 0x6d2b79f5) >>> 0;
  let t = rnd;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const count = Number(a.count);
const concurrency = Number(a.concurrency || 32);
const minBackoff = Number(a['min-backoff-ms'] || 100);
const maxBackoff = Number(a['max-backoff-ms'] || 2000);
const timeoutMs = Number(a['timeout-ms'] || 30000);
const subscription = a.subscription || 'projects/soak-project/subscriptions/push';
const lines = fs.readFileSync(a.messages, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const subst = (s, n) => String(s).split('{{n}}').join(String(n));

function body(n, attempt) {
  const m = lines[n % lines.length];
  const data = m.data_base64 !== undefined ? Buffer.from(m.data_base64, 'base64') : Buffer.from(subst(m.data || '', n));
  const attributes = {};
  for (const [k, v] of Object.entries(m.attributes || {})) attributes[k] = subst(v, n);
  return JSON.stringify({
    message: { data: data.toString('base64'), attributes, messageId: `p${n}`, publishTime: new Date().toISOString() },
    subscription,
    deliveryAttempt: attempt,
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const log = fs.openSync(a.log, 'a');
const attempts = new Array(count).fill(0);
let acked = 0;
let outstanding = 0;
let totalAttempts = 0;
let next = 0;             // next message never delivered
const retryQueue = [];    // messages whose backoff ran out, waiting for a slot

function writeProgress() {
  const tmp = `${a.progress}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ acked, outstanding, attempts: totalAttempts }) + '\n');
  fs.renameSync(tmp, a.progress);
}
const progressTimer = setInterval(writeProgress, 100);

function finish(code) {
  clearInterval(progressTimer);
  writeProgress();
  agent.destroy();
  process.exit(code);
}
process.on('SIGTERM', () => finish(1));

function backoff(attempt) {
  const cap = Math.min(maxBackoff, minBackoff * 2 ** Math.min(attempt - 1, 20));
  return minBackoff / 2 + Math.random() * (cap - minBackoff / 2);
}

function deliver(n) {
  const attempt = ++attempts[n];
  totalAttempts++;
  outstanding++;
  const start = Date.now();
  const payload = body(n, attempt);
  const to = urls.length > 1 ? 1 + Math.floor(random() * urls.length) : 1;
  const url = urls[to - 1];
  let done = false;
  const end = (status, error, retryAfter) => {
    if (done) return;
    done = true;
    outstanding--;
    const rec = { n, attempt, to, start, end: Date.now() };
    if (status !== undefined) rec.status = status;
    if (retryAfter !== undefined) rec.retry_after = retryAfter;
    if (error) rec.error = error;
    fs.writeSync(log, JSON.stringify(rec) + '\n');
    if (status >= 200 && status < 300) {
      acked++;
      if (acked === count) finish(0);
    } else {
      setTimeout(() => { retryQueue.push(n); pump(); }, backoff(attempt));
    }
    pump();
  };
  const req = http.request({
    host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, timeout: timeoutMs,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  }, (res) => {
    res.resume();
    res.on('end', () => end(res.statusCode, undefined, res.headers['retry-after']));
    res.on('error', (e) => end(undefined, e.code || e.message));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => end(undefined, e.code || e.message));
  req.end(payload);
}

function pump() {
  while (outstanding < concurrency && (retryQueue.length || next < count)) {
    deliver(retryQueue.length ? retryQueue.shift() : next++);
  }
}

if (count === 0) finish(0);
pump();
