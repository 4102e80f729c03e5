#!/usr/bin/env node
'use strict';
// soak_check.js NOTES.jsonl — checks a fault soak run (soak_lib.sh) by counting at the Run
// API fake (its JSONL records), in the dead-letter topic (pulled into a file) and file,
// in pstest's or the push client's view of each kill, and in jobrelay's logs; prints the
// figures as one JSON object and exits 1 when a check fails.
//
// The notes (one JSON object a line, "t" = ms since the epoch) say: setup (files, jobs,
// events, instances), published (first message id), start (run, slot,
// log), conn (a run's connection to the fake: which process made a call, when several run
// at once), kill (run, signal time, snapshot of what was in flight), deny-off, end (mode,
// wall time, CPU). Checks:
//  1. every event is dispatched (an execution at the fake carries its CE_ID) or
//     dead-lettered, in the topic and in the file; none lost, none both (but across a kill);
//  2. the dead-letter class is right: job-missing's events are all invalid_request and
//     never dispatched; any other dead letter has the class of the last error the fake
//     gave that event;
//  3. an event has a second execution only when the run that made the first was killed
//     while the event was in flight (pull: delivered and not acked in pstest's snapshot
//     right after the kill; serve: a push request outstanding at the kill); so never more
//     than were in flight; never after an ambiguous failure (DEADLINE_EXCEEDED that
//     created the execution) within the same run; never otherwise within a run (dedup);
//  4. the denied job's breaker opened while it was denied, no RunJob for it was started
//     while open (start time = arrival + the deadline left - call_timeout, since the
//     grpc-timeout header carries the deadline to 10 ms), and it closed after the denial
//     ended;
//  5. no event was started twice (more than one execution at the fake): every such event
//     is listed with its cause (kill: the process that started it was killed while the
//     event was in flight; redelivered: another process, alive, got it again; ambiguous;
//     same_run). The acceptance is none at all: any fails the run;
//  6. nothing reached the subscription's own dead-letter topic (Pub/Sub's forwarding after
//     max delivery attempts): in a healthy run no message is delivered that often;
//  7. side by side (instances > 1): every process was killed at least once.
// Figures also count the RunJob calls each kill cut (received by the fake, not answered).

const fs = require('fs');

const notesFile = process.argv[2];
const readLines = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()) : []);
const jsonLines = (f) => readLines(f).map((l, i) => {
  try {
    return JSON.parse(l);
  } catch (e) {
    return { unparsed: l, line: i + 1 };
  }
});
const notes = jsonLines(notesFile);
const one = (ev) => notes.find((x) => x.ev === ev) || {};
const setup = one('setup');
const end = one('end');
const N = setup.events;
const violations = [];
const fail = (what) => { if (violations.length < 200) violations.push(what); };

const runs = notes.filter((x) => x.ev === 'start').map((s) => ({ run: s.run, slot: s.slot || 1, start: s.start, log: s.log }));
for (const k of notes.filter((x) => x.ev === 'kill')) {
  const r = runs.find((x) => x.run === k.run);
  r.kill = k.t;
  r.at = k.at === undefined ? k.t : k.at;
  r.snapshot = k.snapshot;
}
const multi = (setup.instances || 1) > 1;
const logs = [];
for (const r of runs) {
  r.lines = jsonLines(r.log).filter((l) => l.msgid);
  for (const l of r.lines) logs.push(Object.assign({ run: r.run, ms: Date.parse(l.time) }, l));
}

// --- the events: n -> job (message kind n % kinds)
const kinds = readLines(setup.messages).map((l) => JSON.parse(l).attributes.job);
const jobOf = (n) => kinds[n % kinds.length];
const evN = (id) => (/^soak-(\d+)$/.test(id || '') ? Number(id.slice(5)) : -1);

// --- run of a time: the last run started at or before t, unless it was killed before t
function runAt(t) {
  let r = null;
  for (const x of runs) if (x.start <= t) r = x;
  if (r && r.kill !== undefined && t > r.kill) return null;
  return r;
}

// --- the fake's records
const CLASS = { UNAVAILABLE: 'network', RESOURCE_EXHAUSTED: 'resource', DEADLINE_EXCEEDED: 'timeout',
  PERMISSION_DENIED: 'permission', UNAUTHENTICATED: 'permission', NOT_FOUND: 'invalid_request',
  INVALID_ARGUMENT: 'invalid_event', FAILED_PRECONDITION: 'invalid_request', ABORTED: 'network', INTERNAL: 'network' };
const recs = jsonLines(setup.records);
// the run a call came from: its connection (peer address:port, one per process) was first
// seen after that run started; a call's arrival at the fake may lag its sending (a busy
// fake, a killed process's bytes still in the socket), so its time alone does not say
const peerRun = new Map();
// side by side, the test notes each process's connections (from /proc): those say
const connNotes = notes.filter((x) => x.ev === 'conn');
for (const c of connNotes) if (!peerRun.has(c.peer)) peerRun.set(c.peer, runs.find((x) => x.run === c.run));
let unmappedPeers = 0;
for (const r of recs) {
  if (r.peer && !peerRun.has(r.peer)) {
    if (connNotes.length) unmappedPeers++;
    peerRun.set(r.peer, runAt(Date.parse(r.time)) || runs.filter((x) => x.start <= Date.parse(r.time)).pop());
  }
}
const calls = Array.from({ length: N }, () => []);
const statusCount = {};
const faultCount = {};
const methodCount = {};
let lookups = 0; // ListExecutions after ambiguous answers (the start-up check of reads is page size 1)
let strayCalls = 0;
for (const r of recs) {
  methodCount[r.method] = (methodCount[r.method] || 0) + 1;
  if (r.method === 'ListExecutions' && (r.request || {}).pageSize !== 1) lookups++;
  if (r.method !== 'RunJob') continue;
  statusCount[r.statusName] = (statusCount[r.statusName] || 0) + 1;
  if (r.fault) faultCount[r.fault] = (faultCount[r.fault] || 0) + 1;
  const env = Object.fromEntries((((r.request.overrides || {}).containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
  const n = evN(env.CE_ID);
  if (n < 0 || n >= N) {
    fail(`RunJob for an unknown event ${env.CE_ID}`);
    continue;
  }
  const job = r.request.name.split('/').pop();
  if (job !== jobOf(n)) fail(`event ${n} (${jobOf(n)}) was sent to ${job}`);
  if (!env.JOBRELAY_KEY) fail(`event ${n}: RunJob without JOBRELAY_KEY`);
  const t = Date.parse(r.time);
  const run = r.peer ? peerRun.get(r.peer) : runAt(t);
  // order: by run, then by HTTP/2 stream id (the order the client started its calls in)
  const c = { t, run, peer: r.peer, stream: r.stream === undefined ? t : r.stream, status: r.statusName, fault: r.fault,
    execution: r.execution, msg: env.MSG, key: env.JOBRELAY_KEY, job, n, answer: t + (r.delayMs || 0) };
  if (!run) strayCalls++;
  calls[n].push(c);
}

// the fake's draws are deterministic (lib/faults.js): recompute each one from the seed, the key and
// the key's call number, for the calls that were not the denied or missing job's own faults
const { draw } = require('../peers/runfake/lib/faults');
const seen = new Map();
const faultsConf = JSON.parse(fs.readFileSync(setup.faults, 'utf8'));
for (const r of recs) {
  if (r.method !== 'RunJob' || r.fault === 'not_found' || r.fault === 'denied') continue;
  const env = Object.fromEntries((((r.request.overrides || {}).containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
  const k = seen.get(env.JOBRELAY_KEY) || 0;
  seen.set(env.JOBRELAY_KEY, k + 1);
  const u = draw(`${faultsConf.seed}\0${env.JOBRELAY_KEY}\0${k}`);
  const e1 = faultsConf.unavailable;
  const e2 = e1 + faultsConf.resource_exhausted;
  const e3 = e2 + faultsConf.deadline_exceeded;
  const want = u < e1 ? 'unavailable' : u < e2 ? 'resource_exhausted' : u < e3 ? 'deadline_exceeded' : undefined;
  if (want !== r.fault) fail(`the fake's fault for ${env.JOBRELAY_KEY} call ${k} was ${r.fault}, the draw says ${want}`);
}

// --- dead letters: the topic (pulled) and the file
const dlTopic = Array.from({ length: N }, () => []);
const dlFile = Array.from({ length: N }, () => []);
for (const m of jsonLines(setup.dl_topic)) {
  const a = m.attributes || {};
  const n = evN(a['jobrelay-event-id']);
  if (n < 0 || n >= N) { fail(`dead-letter topic message ${m.id} names no soak event: ${JSON.stringify(a)}`); continue; }
  for (const k of ['jobrelay-error-class', 'jobrelay-error-code', 'jobrelay-route', 'jobrelay-attempts', 'jobrelay-event-source', 'jobrelay-origin', 'jobrelay-failed-at']) {
    if (!a[k]) fail(`dead-letter topic message of event ${n} lacks ${k}`);
  }
  if (a.job !== jobOf(n)) fail(`dead-letter topic message of event ${n} lost its original attribute job=${jobOf(n)}`);
  const data = Buffer.from(m.data_base64 || '', 'base64').toString();
  if (!data.includes(`"soak-${n}"`)) fail(`dead-letter topic message of event ${n}: data is not the original event`);
  dlTopic[n].push({ cls: a['jobrelay-error-class'], t: Date.parse(m.publishTime) });
}
for (const f of setup.dl_files || [setup.dl_file]) {
  for (const d of jsonLines(f)) {
    const n = evN(d.event && d.event.id);
    if (n < 0 || n >= N) { fail(`dead-letter file line names no soak event: ${JSON.stringify(d).slice(0, 200)}`); continue; }
    dlFile[n].push({ cls: d.error && d.error.class, t: Date.parse(d.failed_at), file: f });
  }
}
// the run that wrote a dead letter: side by side, its file says (one per process) and the
// run of that slot alive at its time; else the run alive at its time
const slotOfFile = new Map((setup.dl_files || []).map((f, i) => [f, i + 1]));
function dlRun(d) {
  if (!multi) return runAt(d.t);
  const slot = slotOfFile.get(d.file);
  let r = null;
  for (const x of runs) if (x.slot === slot && x.start <= d.t) r = x;
  return r;
}
// Pub/Sub's own dead-letter topic (the events subscription's policy): must stay empty
const svcDead = [];
for (const m of jsonLines(setup.svc_dl_topic)) {
  const data = Buffer.from(m.data_base64 || '', 'base64').toString();
  const id = (/"id":"(soak-\d+)"/.exec(data) || [])[1];
  const a = m.attributes || {};
  svcDead.push(evN(id));
  fail(`event ${id || '?'} (message ${m.id}) was forwarded by Pub/Sub to the subscription's dead-letter topic after ${a.CloudPubSubDeadLetterSourceDeliveryCount || '?'} deliveries (max ${setup.svc_max_attempts}): investigate`);
}

// the lookup must be wired into this source: no ListExecutions at all after ambiguous faults means it is not
if (!lookups && (faultCount.deadline_exceeded || faultCount.unavailable))
  fail(`\`jobrelay ${end.mode}\` sent no ListExecutions after ${faultCount.deadline_exceeded || 0} DEADLINE_EXCEEDED and ${faultCount.unavailable || 0} UNAVAILABLE answers`);

// order of two outcomes: within a run by stream id (the order jobrelay started its calls); a
// run killed before the other started comes first (a killed process's bytes may reach the
// fake after its successor's); otherwise (side by side) by arrival at the fake
function byRunStream(a, b) {
  const ra = a.run;
  const rb = b.run;
  if (ra === rb) return a.stream - b.stream;
  if (!multi || !ra || !rb) return ((ra && ra.run) || 0) - ((rb && rb.run) || 0) || a.stream - b.stream;
  if (ra.kill !== undefined && ra.kill <= rb.start) return -1;
  if (rb.kill !== undefined && rb.kill <= ra.start) return 1;
  return a.t - b.t;
}

// --- in flight at each kill
const kills = runs.filter((r) => r.kill !== undefined);
const mode = end.mode;
if (mode === 'pull') {
  for (const k of kills) {
    const snap = JSON.parse(fs.readFileSync(k.snapshot, 'utf8'));
    k.inFlight = new Set(snap.filter((m) => m.deliveries > 0 && m.acks === 0).map((m) => m.id));
  }
} else {
  const attempts = jsonLines(end.client_log);
  for (const k of kills) {
    // outstanding between the signal (at) and the process's death (kill), answered without a 2xx,
    // sent to this process (side by side, the client logs which one: to, 1-based)
    k.inFlight = new Set(attempts.filter((a) => (a.to === undefined || a.to === k.slot) && a.start <= k.kill && a.end >= k.at
      && !(a.status >= 200 && a.status < 300)).map((a) => `p${a.n}`));
  }
}
// RunJob calls each kill cut: made by the killed run, received by the fake before the
// signal, answered (arrival + delay) after it
for (const k of kills) {
  k.runjobInFlight = 0;
  k.runjobInFlightCreated = 0;
  for (const cs of calls) {
    for (const c of cs) {
      if (c.run === k && c.t <= k.at && c.answer > k.at) {
        k.runjobInFlight++;
        if (c.execution) k.runjobInFlightCreated++;
      }
    }
  }
}
const inFlightAt = (run, n, msg) => run.inFlight && (run.inFlight.has(msg) || run.inFlight.has(`p${n}`));

// --- 1-3: every event, its class, its duplicates
const fig = {
  mode, events: N, dispatched: 0, dead_lettered: {}, dead_lettered_topic: 0, dead_lettered_file: 0, lost: 0,
  duplicates: { kill: 0, ambiguous: 0, same_run: 0 }, started_twice: 0, started_twice_by_cause: {}, pubsub_dead_lettered: svcDead.length,
  kills: [], runjob_in_flight_at_kills: 0, runjob: { calls: 0, by_status: statusCount, faults: faultCount },
  list_executions: methodCount.ListExecutions || 0,
  ambiguous_recovered: 0, other_methods: methodCount, breaker: {}, wall_s: end.wall_ms / 1000, jobrelay_cpu_s: end.cpu_s,
};
const dupPerKill = new Map();
const startedTwice = []; // {n, job, executions, causes}
for (let n = 0; n < N; n++) {
  const cs = calls[n].sort(byRunStream);
  fig.runjob.calls += cs.length;
  const execs = cs.filter((c) => c.execution);
  const dl = dlTopic[n];
  if (execs.length) fig.dispatched++;
  for (const d of dl) fig.dead_lettered[d.cls] = (fig.dead_lettered[d.cls] || 0) + 1;
  if (dlTopic[n].length) fig.dead_lettered_topic++;
  if (dlFile[n].length) fig.dead_lettered_file++;
  if (!execs.length && !dl.length) {
    fig.lost++;
    fail(`event ${n} (${jobOf(n)}) lost: no execution at the fake, no dead letter (${cs.length} RunJob calls: ${cs.map((c) => c.status).join(',')})`);
    continue;
  }
  if (dlTopic[n].length !== dlFile[n].length) fail(`event ${n}: ${dlTopic[n].length} dead letters in the topic, ${dlFile[n].length} in the file`);
  // class
  const lastErr = [...cs].reverse().find((c) => c.status !== 'OK');
  for (const d of dl.concat(dlFile[n])) {
    if (jobOf(n) === setup.missing_job) {
      if (d.cls !== 'invalid_request') fail(`event ${n} of ${setup.missing_job} dead-lettered as ${d.cls}, not invalid_request`);
    } else if (!lastErr) {
      fail(`event ${n} dead-lettered (${d.cls}) without a failed RunJob`);
    } else if (CLASS[lastErr.status] !== d.cls) {
      fail(`event ${n} dead-lettered as ${d.cls}; its last RunJob error was ${lastErr.status} (${CLASS[lastErr.status]})`);
    }
  }
  if (jobOf(n) === setup.missing_job && execs.length) fail(`event ${n} of ${setup.missing_job} has an execution`);
  // duplicates: each outcome after the first (an execution, or a dead letter) needs a cause;
  // a dead letter (the file's failed_at is jobrelay's clock) comes after its run's calls
  const outcomes = execs.map((c) => ({ run: c.run, stream: c.stream, t: c.t, c, what: c.fault === 'deadline_exceeded' ? 'ambiguous' : 'execution' }))
    .concat(dlFile[n].map((d) => ({ run: dlRun(d), stream: Infinity, t: d.t, what: 'dead_letter' }))).sort(byRunStream);
  const msg = (cs[0] || {}).msg;
  const causes = [];
  for (let i = 1; i < outcomes.length; i++) {
    const r1 = outcomes[i - 1].run;
    const r2 = outcomes[i].run;
    let cause;
    if (r1 && r2 && r1 !== r2 && r1.kill !== undefined && inFlightAt(r1, n, msg)) {
      cause = 'kill';
      fig.duplicates.kill++;
      dupPerKill.set(r1.run, (dupPerKill.get(r1.run) || 0) + 1);
    } else if (outcomes[i - 1].what === 'ambiguous') {
      cause = 'ambiguous';
      fig.duplicates.ambiguous++;
      fail(`event ${n}: a second execution after the ambiguous DEADLINE_EXCEEDED that created one (run ${r1 && r1.run})`);
    } else if (multi && r1 && r2 && r1 !== r2) {
      // side by side: another process got the event again (a lease that ran out, a push
      // redelivered after an error or a timeout) while the first one was not killed with it
      cause = 'redelivered';
      fig.duplicates.redelivered = (fig.duplicates.redelivered || 0) + 1;
    } else {
      cause = 'same_run';
      fig.duplicates.same_run++;
      const why = r1 && r2 && r1 !== r2 ? `across the kill of run ${r1.run}, but not in flight then` : `within run ${r1 && r1.run}`;
      fail(`event ${n}: ${outcomes[i - 1].what} then ${outcomes[i].what} ${why}`);
    }
    if (outcomes[i].what !== 'dead_letter' && outcomes[i - 1].what !== 'dead_letter') causes.push(cause);
    else if (outcomes[i].what === 'dead_letter' && multi && cause === 'redelivered') {
      fail(`event ${n}: ${outcomes[i - 1].what} (run ${r1.run}) then dead-lettered by run ${r2.run}`);
    }
  }
  if (execs.length > 1) {
    fig.started_twice++;
    for (const c of causes) fig.started_twice_by_cause[c] = (fig.started_twice_by_cause[c] || 0) + 1;
    startedTwice.push({ n, job: jobOf(n), causes, executions: outcomes.filter((o) => o.c).map((o) => `run ${o.run ? o.run.run : '?'}${multi && o.run ? ` (process ${o.run.slot})` : ''} ${new Date(o.t).toISOString().slice(11, 23)} ${o.c.status}${o.c.fault ? `/${o.c.fault}` : ''}`) });
  }
}
for (const k of kills) {
  const d = dupPerKill.get(k.run) || 0;
  const e = { run: k.run, in_flight: k.inFlight.size, runjob_in_flight: k.runjobInFlight, runjob_in_flight_created: k.runjobInFlightCreated, duplicates: d };
  if (multi) e.process = k.slot;
  fig.kills.push(e);
  fig.runjob_in_flight_at_kills += k.runjobInFlight;
  if (d > k.inFlight.size) fail(`kill of run ${k.run}: ${d} duplicates but ${k.inFlight.size} in flight`);
}
if (multi) {
  fig.instances = setup.instances;
  for (let slot = 1; slot <= setup.instances; slot++) {
    if (!kills.some((k) => k.slot === slot)) fail(`process ${slot} was never killed`);
  }
  if (!connNotes.length) fail('side by side, but no connection of any process to the fake was noted (soak_conns): which process made a call is unknown');
  if (unmappedPeers) fig.runjob.unmapped_connections = unmappedPeers;
}
if (startedTwice.length) {
  console.error(`${startedTwice.length} events started twice:`);
  for (const x of startedTwice.slice(0, 100)) console.error(`  soak-${x.n} (${x.job}): ${x.causes.join(', ')}: ${x.executions.join('; ')}`);
  if (startedTwice.length > 100) console.error(`  ... ${startedTwice.length - 100} more`);
  fail(`${startedTwice.length} events started twice (${Object.entries(fig.started_twice_by_cause).map(([c, k]) => `${c} ${k}`).join(', ')}); the list is above`);
}
fig.ambiguous_recovered = logs.filter((l) => l.msgid === 'DISPATCH-OK' && /ambiguous/.test(l.message)).length;
if (strayCalls) fig.runjob.after_kill_before_restart = strayCalls;
if (mode === 'pull') {
  const snap = JSON.parse(fs.readFileSync(end.snapshot, 'utf8'));
  const first = Number(one('published').first.slice(1));
  const mine = snap.filter((m) => Number(m.id.slice(1)) >= first && Number(m.id.slice(1)) < first + N);
  fig.pubsub = { deliveries: mine.reduce((s, m) => s + m.deliveries, 0), redelivered: mine.filter((m) => m.deliveries > 1).length };
  // the longest wait from a delivery to jobrelay's first modack or ack of it: about the time
  // to read it, unless it waited unread (its lease running) behind flow control
  if (end.counters) fig.pubsub.reply_max_ms = JSON.parse(fs.readFileSync(end.counters, 'utf8')).replyMaxMs;
  const unacked = mine.filter((m) => m.acks === 0).length;
  if (unacked) fail(`${unacked} messages never acked`);
}

// --- 4: the breakers
function breakerState(l) {
  const s = String(l.state || l.to || l.msgid.slice('BREAKER-'.length)).toLowerCase().replace(/-/g, '_');
  return s.startsWith('half') ? 'half_open' : s.startsWith('open') ? 'open' : s.startsWith('clos') ? 'closed' : s;
}
const jobName = (l) => String(l.job || '').split('/').pop();
const trans = logs.filter((l) => /^BREAKER-/.test(l.msgid) && l.job).map((l) => ({ run: l.run, ms: l.ms, job: jobName(l), state: breakerState(l) }));
for (const t of trans) {
  fig.breaker[t.job] = fig.breaker[t.job] || {};
  fig.breaker[t.job][t.state] = (fig.breaker[t.job][t.state] || 0) + 1;
}
{ // the denied job's breaker
  const denyOff = (notes.find((x) => x.ev === 'deny-off') || {}).t;
  const dj = trans.filter((t) => t.job === setup.denied_job);
  if (!dj.some((t) => t.state === 'open' && (denyOff === undefined || t.ms < denyOff))) fail(`the breaker of ${setup.denied_job} never opened while it was denied`);
  if (denyOff === undefined) fail('PERMISSION_DENIED was never switched off');
  else if (!dj.some((t) => t.state === 'closed' && t.ms > denyOff)) fail(`the breaker of ${setup.denied_job} did not close after the denial ended`);
  // Nothing started while open. Within one process's connection the HTTP/2 stream ids give the
  // order in which jobrelay started its calls; its log gives one result line per call
  // (DISPATCH-RETRY/OK/DROP, DEADLETTER-*), in the same order per event. So a call that follows
  // a result of its event logged after the breaker opened was started after the open (A), and
  // a call whose result was logged before the breaker left OPEN was started before that (B).
  // A call for the job with a stream id above some A and below some B was started while the
  // breaker was open. (One-sided: a call close to either edge may go unseen; none is blamed
  // wrongly, unless two deliveries of one event run at once.)
  const RESULT = new Set(['DISPATCH-RETRY', 'DISPATCH-OK', 'DISPATCH-DROP', 'DEADLETTER-OK', 'DEADLETTER-FAILED']);
  const results = new Map(); // run -> n -> [ms]
  for (const l of logs) {
    if (!RESULT.has(l.msgid) || evN(l.event_id) < 0) continue;
    if (!results.has(l.run)) results.set(l.run, new Map());
    const m = results.get(l.run);
    const n = evN(l.event_id);
    if (!m.has(n)) m.set(n, []);
    m.get(n).push(l.ms);
  }
  // per run: every call with, when known, the time of the result before it (after) and its own (done)
  const perRun = new Map();
  for (let n = 0; n < N; n++) {
    const byRun = new Map();
    for (const c of calls[n]) {
      if (!c.run || typeof c.stream !== 'number' || !c.peer) continue;
      if (!byRun.has(c.run.run)) byRun.set(c.run.run, []);
      byRun.get(c.run.run).push(c);
    }
    for (const [run, cs] of byRun) {
      const res = (results.get(run) && results.get(run).get(n)) || [];
      cs.sort((a, b) => a.stream - b.stream);
      cs.forEach((c, i) => {
        c.after = i > 0 ? res[i - 1] : undefined;
        c.done = res[i];
      });
      if (!perRun.has(run)) perRun.set(run, []);
      perRun.get(run).push(...cs);
    }
  }
  let sentWhileOpen = 0;
  let checkedOpen = 0;
  for (const job of Object.keys(fig.breaker)) {
    const tj = trans.filter((t) => t.job === job);
    for (let i = 0; i < tj.length; i++) {
      if (tj[i].state !== 'open') continue;
      const from = tj[i].ms;
      const nxt = tj.slice(i + 1).find((t) => t.run === tj[i].run);
      const r = runs.find((x) => x.run === tj[i].run);
      const to = nxt ? nxt.ms : r.kill !== undefined ? r.kill : Infinity;
      const cs = perRun.get(tj[i].run) || [];
      for (const peer of new Set(cs.map((c) => c.peer))) {
        const pc = cs.filter((c) => c.peer === peer);
        const lo = Math.min(...pc.filter((c) => c.after !== undefined && c.after > from).map((c) => c.stream));
        const hi = Math.max(...pc.filter((c) => c.done !== undefined && c.done < to).map((c) => c.stream));
        if (!(lo < hi)) continue;
        checkedOpen++;
        for (const c of pc) {
          if (c.job === job && c.stream > lo && c.stream < hi) {
            sentWhileOpen++;
            fail(`${job}: RunJob for event ${c.n} (stream ${c.stream} of ${peer}) was started while its breaker was open (run ${tj[i].run}, ${new Date(from).toISOString()} for ${to - from} ms)`);
          }
        }
      }
    }
  }
  fig.breaker_open_periods_checked = checkedOpen;
  fig.breaker_sent_while_open = sentWhileOpen;
}

fig.violations = violations.length;
console.log(JSON.stringify(fig, null, 1));
if (violations.length) {
  for (const v of violations.slice(0, 40)) console.error('FAIL: ' + v);
  if (violations.length > 40) console.error(`... ${violations.length - 40} more`);
  process.exit(1);
}
