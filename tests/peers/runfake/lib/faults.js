'use strict';
// faults.js — seeded, deterministic fault injection for RunJob (the fault soak).
//
// Configured from a JSON file (--faults F) and/or flags (--fault-*; flags win).
// For every RunJob call, in this order:
//   1. the NOT_FOUND job (not_found.job): NOT_FOUND, always;
//   2. the denied job (denied.job) while its window is on: PERMISSION_DENIED
//      (or denied.code); the window is a range of RunJob call numbers, a range
//      of ms since the first RunJob, or "while a file exists" (a test switch);
//   3. a draw u in [0,1) from the seed, the call's JOBRELAY_KEY (else its job)
//      and how many RunJob calls that key has had before:
//        u < unavailable                      -> UNAVAILABLE
//        ... + resource_exhausted             -> RESOURCE_EXHAUSTED + google.rpc.RetryInfo
//        ... + deadline_exceeded              -> DEADLINE_EXCEEDED after creating the execution
//      So one seed gives every event the same fate on every run, whatever the
//      order in which calls arrive.
// Besides, answer_delay_ms [A, B] delays the answer of every RunJob call (faults or not)
// by a seeded draw in A..B ms (from the seed, the key and that key's call number, apart
// from the fault draw): the execution is created when the request arrives, the answer
// comes later, as from the real API, so a client killed meanwhile leaves an execution.
// pick() answers a rule in server.js's normalised shape (or null: no fault),
// tagged with .fault, the name that goes into the record line.

const fs = require('fs');

const USAGE = ` Fault injection for RunJob (lib/faults.js; evaluated before every rule):
  --faults F            JSON: {seed, jobs, unavailable, resource_exhausted, retry_delay_ms, deadline_exceeded,
                        denied: {job, code, calls: [A,B] | ms: [A,B] | while_file: PATH}, not_found: {job},
                        answer_delay_ms: [A,B]}
  --fault-seed N        seed of the draws (default 1)
  --fault-jobs PAT      the drawn faults apply to these jobs only (default *)
  --fault-unavailable P share of RunJob calls answered UNAVAILABLE (0..1)
  --fault-resource-exhausted P  share answered RESOURCE_EXHAUSTED with RetryInfo
  --fault-retry-delay-ms D      the RetryInfo delay (default 1000)
  --fault-deadline-exceeded P   share answered DEADLINE_EXCEEDED after the execution was created
  --fault-denied-job PAT        the job answered PERMISSION_DENIED while the window is on
  --fault-denied-calls A-B      window: RunJob calls number A (1-based, all jobs) to B-1
  --fault-denied-ms A-B         window: A to B ms after the first RunJob call
  --fault-denied-file F         window: while file F exists
  --fault-not-found-job PAT     the job answered NOT_FOUND throughout
  --fault-answer-delay-ms A-B   every RunJob answer comes A..B ms (seeded draw) after the request,
                        whose outcome (the execution) is decided and made on arrival
`;

const FLAGS = ['faults', 'fault-seed', 'fault-jobs', 'fault-unavailable', 'fault-resource-exhausted',
  'fault-retry-delay-ms', 'fault-deadline-exceeded', 'fault-denied-job', 'fault-denied-calls', 'fault-denied-ms',
  'fault-denied-file', 'fault-not-found-job', 'fault-answer-delay-ms'];

function share(v, what) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`faults: ${what} must be a share in [0, 1], not ${JSON.stringify(v)}`);
  return n;
}

function range(v, what) {
  const a = Array.isArray(v) ? v : String(v).split('-');
  const r = a.map(Number);
  if (r.length !== 2 || !r.every((x) => Number.isFinite(x) && x >= 0) || r[1] < r[0]) {
    throw new Error(`faults: ${what} must be [A, B] or A-B with 0 <= A <= B, not ${JSON.stringify(v)}`);
  }
  return r;
}

// normalise(file JSON, flags) -> the settings, or throws naming the bad key
function normalise(c, args) {
  c = Object.assign({}, c || {});
  const denied = Object.assign({}, c.denied || {});
  const notFound = Object.assign({}, c.not_found || {});
  if (args['fault-seed'] !== undefined) c.seed = args['fault-seed'];
  if (args['fault-jobs'] !== undefined) c.jobs = args['fault-jobs'];
  if (args['fault-unavailable'] !== undefined) c.unavailable = args['fault-unavailable'];
  if (args['fault-resource-exhausted'] !== undefined) c.resource_exhausted = args['fault-resource-exhausted'];
  if (args['fault-retry-delay-ms'] !== undefined) c.retry_delay_ms = args['fault-retry-delay-ms'];
  if (args['fault-deadline-exceeded'] !== undefined) c.deadline_exceeded = args['fault-deadline-exceeded'];
  if (args['fault-denied-job'] !== undefined) denied.job = args['fault-denied-job'];
  if (args['fault-denied-calls'] !== undefined) denied.calls = args['fault-denied-calls'];
  if (args['fault-denied-ms'] !== undefined) denied.ms = args['fault-denied-ms'];
  if (args['fault-denied-file'] !== undefined) denied.while_file = args['fault-denied-file'];
  if (args['fault-not-found-job'] !== undefined) notFound.job = args['fault-not-found-job'];
  if (args['fault-answer-delay-ms'] !== undefined) c.answer_delay_ms = args['fault-answer-delay-ms'];
  const known = ['seed', 'jobs', 'unavailable', 'resource_exhausted', 'retry_delay_ms', 'deadline_exceeded', 'denied', 'not_found',
    'answer_delay_ms'];
  for (const k of Object.keys(c)) if (!known.includes(k)) throw new Error(`faults: unknown key ${JSON.stringify(k)}`);
  const s = {
    seed: String(c.seed === undefined ? 1 : c.seed),
    jobs: c.jobs === undefined ? '*' : String(c.jobs),
    unavailable: share(c.unavailable || 0, 'unavailable'),
    resourceExhausted: share(c.resource_exhausted || 0, 'resource_exhausted'),
    deadlineExceeded: share(c.deadline_exceeded || 0, 'deadline_exceeded'),
    retryDelayMs: c.retry_delay_ms === undefined ? 1000 : Number(c.retry_delay_ms),
    denied: null,
    notFound: notFound.job ? String(notFound.job) : null,
    answerDelayMs: c.answer_delay_ms === undefined || c.answer_delay_ms === null ? null : range(c.answer_delay_ms, 'answer_delay_ms'),
  };
  if (s.answerDelayMs && s.answerDelayMs[1] === 0) s.answerDelayMs = null;
  if (!(s.retryDelayMs >= 0)) throw new Error('faults: retry_delay_ms must be >= 0');
  if (s.unavailable + s.resourceExhausted + s.deadlineExceeded > 1) throw new Error('faults: the shares add up to more than 1');
  if (denied.job) {
    const ways = ['calls', 'ms', 'while_file'].filter((k) => denied[k] !== undefined);
    if (ways.length !== 1) throw new Error('faults: denied needs exactly one of calls, ms, while_file');
    s.denied = { job: String(denied.job), code: denied.code || 'PERMISSION_DENIED' };
    if (denied.calls !== undefined) s.denied.calls = range(denied.calls, 'denied.calls');
    if (denied.ms !== undefined) s.denied.ms = range(denied.ms, 'denied.ms');
    if (denied.while_file !== undefined) s.denied.whileFile = String(denied.while_file);
  }
  return s;
}

// 32-bit FNV-1a of a string, then a murmur3 finaliser: a uniform draw in [0, 1)
function draw(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

function keyOf(req) {
  const c = req && req.overrides && req.overrides.containerOverrides && req.overrides.containerOverrides[0];
  for (const e of (c && c.env) || []) if (e.name === 'JOBRELAY_KEY') return e.value;
  return null;
}

// create(args, { parseCode, matchPattern, codeName }) -> null when no fault is configured,
// else { pick(method, target, req), stats(), settings }; pick answers null, or
// {rule, fault} for an injected fault and/or {answerDelayMs} (answer_delay_ms)
function create(args, h) {
  if (!FLAGS.some((f) => args[f] !== undefined)) return null;
  const file = args.faults !== undefined ? JSON.parse(fs.readFileSync(args.faults, 'utf8')) : {};
  const s = normalise(file, args);
  const deniedCode = s.denied ? h.parseCode(s.denied.code) : null;
  const calls = new Map(); // key -> RunJob calls seen
  const counts = { calls: 0, unavailable: 0, resource_exhausted: 0, deadline_exceeded: 0, denied: 0, not_found: 0 };
  const delayCalls = new Map(); // key -> RunJob calls delayed so far (the answer delay's own draws)
  if (s.answerDelayMs) Object.assign(counts, { answer_delayed: 0, answer_delay_ms_total: 0 });
  let firstMs = null;

  const rule = (fault, code, extra) => Object.assign({
    fault, code, message: `runfake: injected ${h.codeName(code)} (fault ${fault})`,
    retryDelayMs: null, delayMs: null, createExecution: false, errorInfo: null,
  }, extra);
  const fire = (r) => {
    counts[r.fault]++;
    return { rule: r, fault: r.fault };
  };

  function deniedNow(n, now) {
    const d = s.denied;
    if (d.calls) return n >= d.calls[0] && n < d.calls[1];
    if (d.ms) return now - firstMs >= d.ms[0] && now - firstMs < d.ms[1];
    return fs.existsSync(d.whileFile);
  }

  // answerDelay(key) -> ms to hold this RunJob's answer: a draw in [A, B] from the seed, the
  // key and the key's delayed calls before (0 without answer_delay_ms)
  function answerDelay(key) {
    if (!s.answerDelayMs) return 0;
    const seen = delayCalls.get(key) || 0;
    delayCalls.set(key, seen + 1);
    const [a, b] = s.answerDelayMs;
    const ms = a + Math.floor(draw(`${s.seed}\0answer-delay\0${key}\0${seen}`) * (b - a + 1));
    counts.answer_delayed++;
    counts.answer_delay_ms_total += ms;
    return ms;
  }

  // pick(method, target, req) -> null (not RunJob, or nothing to do), else
  // {rule, fault, answerDelayMs}: rule and fault only when a fault is injected
  function pick(method, target, req) {
    if (method !== 'RunJob') return null;
    const d = answerDelay(keyOf(req) || target);
    const p = pickFault(target, req);
    if (!p && !d) return null;
    return Object.assign(p || {}, { answerDelayMs: d });
  }

  function pickFault(target, req) {
    const now = Date.now();
    if (firstMs === null) firstMs = now;
    const n = ++counts.calls;
    if (s.notFound && h.matchPattern(s.notFound, target)) {
      return fire(rule('not_found', h.parseCode('NOT_FOUND'), {
        message: `Resource '${target.slice(target.lastIndexOf('/') + 1)}' of kind 'JOB' does not exist. (runfake fault not_found)`,
      }));
    }
    if (s.denied && h.matchPattern(s.denied.job, target) && deniedNow(n, now)) {
      return fire(rule('denied', deniedCode));
    }
    if (!h.matchPattern(s.jobs, target)) return null;
    const key = keyOf(req) || target;
    const seen = calls.get(key) || 0;
    calls.set(key, seen + 1);
    const u = draw(`${s.seed}\0${key}\0${seen}`);
    let edge = s.unavailable;
    if (u < edge) return fire(rule('unavailable', h.parseCode('UNAVAILABLE')));
    edge += s.resourceExhausted;
    if (u < edge) return fire(rule('resource_exhausted', h.parseCode('RESOURCE_EXHAUSTED'), { retryDelayMs: s.retryDelayMs }));
    edge += s.deadlineExceeded;
    if (u < edge) return fire(rule('deadline_exceeded', h.parseCode('DEADLINE_EXCEEDED'), { createExecution: true }));
    return null;
  }

  return { pick, stats: () => Object.assign({}, counts), settings: s };
}

// connOf(call) -> {peer, stream}: the client's address:port (one per connection, so one per
// client process) and the call's HTTP/2 stream id, which the client allocates in increasing
// order as it starts calls: within one connection, the order in which the client *sent*
// them, whatever the order the fake read them in. Reads grpc-js internals; {} without them.
function connOf(call) {
  const out = {};
  try {
    out.peer = call.getPeer();
    let c = call.call;
    for (let i = 0; c && !c.stream && i < 4; i++) c = c.nextCall;
    if (c && c.stream && Number.isInteger(c.stream.id)) out.stream = c.stream.id;
  } catch (e) { /* an older grpc-js: no stream id */ }
  return out;
}

module.exports = { USAGE, FLAGS, create, normalise, draw, connOf };
