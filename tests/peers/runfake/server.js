#!/usr/bin/env node
'use strict';
// runfake: a fake Cloud Run Admin API v2 (gRPC) for jobrelay's tests.
//
// The services and messages come from Google's own protos (npm package
// google-proto-files), loaded with @grpc/proto-loader for the gRPC service
// definitions and with protobufjs for decoding/encoding, so what jobrelay sends
// is read with Google's definitions, not with ours. See README.md.
//
// Loopback only: the server refuses to listen anywhere but 127.0.0.0/8 or ::1.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const gpf = require('google-proto-files');
const { messageJson, findUnknownFields } = require('./lib/protojson');
const faultsLib = require('./lib/faults');

const PROTO_ROOT = path.resolve(gpf.getProtoPath('..'));
const PROTO_FILES = [
  'google/cloud/run/v2/job.proto',
  'google/cloud/run/v2/execution.proto',
  'google/longrunning/operations.proto',
  'google/rpc/status.proto',
  'google/rpc/error_details.proto',
];
const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

// ---------------------------------------------------------------------------
// Command line

const USAGE = `usage: node server.js [flags]
  --port N              port to listen on (0 = random; default 0)
  --host H              loopback address to listen on (default 127.0.0.1; only 127.0.0.0/8, ::1, localhost)
  --port-file F         also write the port to F (atomically, via rename)
  --tls-cert F          serve TLS with this PEM certificate (chain) instead of plaintext; needs --tls-key
  --tls-key F           the PEM private key of --tls-cert
  --record F            append one JSON line per request to F
  --record-defaults     in records, print proto3 fields that hold their default value too
  --config F            JSON config (rules, latency, executions, jobs); re-read when its mtime changes
  --jobs F              JSON list of jobs ([{"name":..., "labels":{...}}]) known from the start
  --stats F             write a summary JSON to F on SIGTERM/SIGINT (and on SIGUSR1, without exiting)
  --exit-on-stdin-close exit (like SIGTERM) when stdin reaches EOF
  --strict-jobs         RunJob/GetJob of a job that is not configured answer NOT_FOUND
  --require-request-params  answer INVALID_ARGUMENT when x-goog-request-params is missing or wrong
  --latency-ms D        global latency added to every call
 One error rule from flags (evaluated before the config file's rules):
  --error CODE          gRPC code number or name (e.g. UNAVAILABLE)
  --error-job PAT       job pattern (default *)
  --error-method M      method name, comma list or * (default RunJob)
  --error-message TEXT  status message
  --error-every N       fire on every Nth matching call
  --error-times K       fire at most K times
  --retry-delay-ms D    attach google.rpc.RetryInfo{retry_delay=D} to the status details
  --delay-ms D          answer after D ms (rule applies even without --error: then it only delays)
  --create-execution    RunJob: create the execution even though an error is returned
 Execution outcome for all jobs (the config's "executions" take precedence):
  --run-ms D            how long an execution runs (default 0)
  --outcome O           succeeded | failed | cancelled | timed_out (default succeeded)
  --failure-reason T    message of a failed execution
` + faultsLib.USAGE;

function parseArgs(argv) {
  const boolFlags = new Set(['record-defaults', 'exit-on-stdin-close', 'strict-jobs', 'require-request-params',
    'create-execution', 'help']);
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    a = a.slice(2);
    let v;
    const eq = a.indexOf('=');
    if (eq >= 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else if (boolFlags.has(a)) {
      v = true;
    } else {
      if (i + 1 >= argv.length) throw new Error(`--${a} needs a value`);
      v = argv[++i];
    }
    if (!USAGE.includes(`--${a} `) && !USAGE.includes(`--${a}\n`) && a !== 'help') throw new Error(`unknown flag --${a}`);
    o[a] = v;
  }
  return o;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`runfake: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const HOST = args.host || '127.0.0.1';
if (!/^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/.test(HOST)) {
  process.stderr.write(`runfake: refusing to listen on ${HOST}: loopback only\n`);
  process.exit(2);
}
if (!args['tls-cert'] !== !args['tls-key']) {
  process.stderr.write('runfake: --tls-cert and --tls-key go together\n');
  process.exit(2);
}
const PORT = args.port === undefined ? 0 : Number(args.port);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  process.stderr.write(`runfake: bad --port ${args.port}\n`);
  process.exit(2);
}

function log(msg) {
  process.stderr.write(`runfake: ${msg}\n`);
}

// ---------------------------------------------------------------------------
// Protos

const packageDefinition = protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
const grpcObject = grpc.loadPackageDefinition(packageDefinition);

const root = new protobuf.Root();
root.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target));
root.loadSync(PROTO_FILES, { keepCase: false });
root.resolveAll();

const T = {
  Execution: root.lookupType('google.cloud.run.v2.Execution'),
  Job: root.lookupType('google.cloud.run.v2.Job'),
  Operation: root.lookupType('google.longrunning.Operation'),
  Status: root.lookupType('google.rpc.Status'),
  RetryInfo: root.lookupType('google.rpc.RetryInfo'),
  ErrorInfo: root.lookupType('google.rpc.ErrorInfo'),
};

function encode(type, obj) {
  const msg = type.fromObject(obj);
  return Buffer.from(type.encode(msg).finish());
}

function packAny(type, obj) {
  // protobufjs' built-in google/protobuf/any.proto keeps the proto field names: type_url, value
  return { type_url: 'type.googleapis.com/' + type.fullName.slice(1), value: encode(type, obj) };
}

// ---------------------------------------------------------------------------
// Status codes

const CODE_NAMES = {};
for (const [k, v] of Object.entries(grpc.status)) if (typeof v === 'number') CODE_NAMES[v] = k;

function parseCode(c) {
  if (c === undefined || c === null) return null;
  if (typeof c === 'number') return c;
  const s = String(c).trim();
  if (/^\d+$/.test(s)) return Number(s);
  const n = grpc.status[s.toUpperCase()];
  if (typeof n !== 'number') throw new Error(`unknown gRPC code ${c}`);
  return n;
}

// ---------------------------------------------------------------------------
// Configuration (file re-read when it changes) and rules

function normRule(r, where) {
  if (!r || typeof r !== 'object') throw new Error(`${where}: a rule must be an object`);
  const code = parseCode(r.code === undefined ? null : r.code);
  let methods = r.method === undefined ? ['RunJob'] : r.method;
  if (typeof methods === 'string') methods = methods.split(',').map((s) => s.trim()).filter(Boolean);
  const num = (k) => {
    if (r[k] === undefined || r[k] === null) return null;
    const n = Number(r[k]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${where}: ${k} must be a non-negative number`);
    return n;
  };
  return {
    raw: r,
    job: r.job === undefined ? '*' : String(r.job),
    methods,
    code: code === null ? 0 : code,
    message: r.message !== undefined ? String(r.message) : null,
    every: num('every'),
    times: num('times'),
    retryDelayMs: num('retry_delay_ms'),
    delayMs: num('delay_ms'),
    createExecution: !!r.create_execution,
    errorInfo: r.error_info || null,
  };
}

function normExecSettings(list, where) {
  // accepted: {run_ms,...} (all jobs) | [{job, run_ms,...}] | {"pattern": {run_ms,...}}
  if (!list) return [];
  let arr;
  if (Array.isArray(list)) arr = list;
  else if (typeof list === 'object' && ('run_ms' in list || 'outcome' in list || 'failure_reason' in list || 'job' in list)) arr = [list];
  else if (typeof list === 'object') arr = Object.entries(list).map(([job, s]) => Object.assign({ job }, s));
  else throw new Error(`${where}: executions must be an object or a list`);
  return arr.map((s, i) => {
    const outcome = (s.outcome || 'succeeded').toLowerCase();
    if (!['succeeded', 'failed', 'cancelled', 'timed_out'].includes(outcome)) throw new Error(`${where}[${i}]: bad outcome ${s.outcome}`);
    return {
      job: s.job === undefined ? '*' : String(s.job),
      runMs: Number(s.run_ms || 0),
      outcome,
      failureReason: s.failure_reason !== undefined ? String(s.failure_reason) : 'Task failed: the container exited with a non-zero code (fake)',
      taskCount: s.task_count !== undefined ? Number(s.task_count) : null,
    };
  });
}

function cliRule() {
  if (args.error === undefined && args['delay-ms'] === undefined && args['retry-delay-ms'] === undefined) return [];
  const r = { job: args['error-job'] || '*', method: args['error-method'] || 'RunJob' };
  if (args.error !== undefined) r.code = args.error;
  if (args['error-message'] !== undefined) r.message = args['error-message'];
  if (args['error-every'] !== undefined) r.every = Number(args['error-every']);
  if (args['error-times'] !== undefined) r.times = Number(args['error-times']);
  if (args['retry-delay-ms'] !== undefined) r.retry_delay_ms = Number(args['retry-delay-ms']);
  if (args['delay-ms'] !== undefined) r.delay_ms = Number(args['delay-ms']);
  if (args['create-execution']) r.create_execution = true;
  return [r];
}

function cliExec() {
  if (args['run-ms'] === undefined && args.outcome === undefined && args['failure-reason'] === undefined) return [];
  const s = { job: '*' };
  if (args['run-ms'] !== undefined) s.run_ms = Number(args['run-ms']);
  if (args.outcome !== undefined) s.outcome = args.outcome;
  if (args['failure-reason'] !== undefined) s.failure_reason = args['failure-reason'];
  return [s];
}

const config = {
  rules: [],
  latencyMs: Number(args['latency-ms'] || 0),
  executions: [],
  strictJobs: !!args['strict-jobs'],
  requireRequestParams: !!args['require-request-params'],
  loadedFrom: null,
  generation: 0,
};
let configSig = null;
const ruleCounters = new Map(); // key -> {seen, fired}

function applyConfig(fileCfg) {
  const c = fileCfg || {};
  const rules = cliRule().concat(c.rules || c.errors || []).map((r, i) => normRule(r, `rules[${i}]`));
  const executions = normExecSettings(c.executions, 'executions').concat(normExecSettings(cliExec(), '--run-ms/--outcome'));
  config.rules = rules;
  config.latencyMs = c.latency_ms !== undefined ? Number(c.latency_ms) : Number(args['latency-ms'] || 0);
  config.executions = executions;
  config.strictJobs = c.strict_jobs !== undefined ? !!c.strict_jobs : !!args['strict-jobs'];
  config.requireRequestParams = c.require_request_params !== undefined ? !!c.require_request_params : !!args['require-request-params'];
  config.generation++;
  if (c.jobs) addConfiguredJobs(c.jobs, 'config jobs');
  // keep counters of rules that did not change; drop the others
  const keep = new Set(rules.map((r, i) => ruleKey(r, i)));
  for (const k of Array.from(ruleCounters.keys())) if (!keep.has(k)) ruleCounters.delete(k);
}

function ruleKey(rule, i) {
  return `${i}:${JSON.stringify(rule.raw)}`;
}

function maybeReloadConfig(force) {
  if (!args.config) return;
  let st;
  try {
    st = fs.statSync(args.config);
  } catch (e) {
    if (configSig !== 'missing') {
      if (configSig !== null) log(`config ${args.config} disappeared; keeping the last one`);
      else applyConfig(null);
      configSig = 'missing';
    }
    return;
  }
  const sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  if (sig === configSig && !force) return;
  let parsed;
  try {
    const text = fs.readFileSync(args.config, 'utf8');
    parsed = text.trim() === '' ? {} : JSON.parse(text);
    const saved = { rules: config.rules, executions: config.executions };
    try {
      applyConfig(parsed);
    } catch (e) {
      Object.assign(config, saved);
      throw e;
    }
    configSig = sig;
    stats.configLoads++;
  } catch (e) {
    // A half-written file: keep the old config and try again on the next call.
    log(`config ${args.config}: ${e.message}; keeping the previous config`);
    configSig = sig;
    stats.configErrors++;
  }
}

function matchPattern(pattern, name) {
  if (pattern === '*' || pattern === '') return true;
  if (!name) return false;
  if (pattern.includes('*')) {
    const re = new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*') + '$');
    return re.test(name) || re.test(name.slice(name.lastIndexOf('/') + 1));
  }
  if (name === pattern) return true;
  return name.endsWith('/' + pattern) || (pattern.includes('/') && name.endsWith(pattern));
}

function pickRule(method, target) {
  for (let i = 0; i < config.rules.length; i++) {
    const r = config.rules[i];
    if (!(r.methods.includes('*') || r.methods.includes(method))) continue;
    if (!matchPattern(r.job, target)) continue;
    const key = ruleKey(r, i);
    let c = ruleCounters.get(key);
    if (!c) ruleCounters.set(key, (c = { seen: 0, fired: 0 }));
    c.seen++;
    if (r.every && c.seen % r.every !== 0) continue;
    if (r.times !== null && c.fired >= r.times) continue;
    c.fired++;
    return { rule: r, index: i };
  }
  return null;
}

function execSettingsFor(jobName) {
  for (const s of config.executions) if (matchPattern(s.job, jobName)) return s;
  return { job: '*', runMs: 0, outcome: 'succeeded', failureReason: '', taskCount: null };
}

// ---------------------------------------------------------------------------
// State: jobs, executions, operations

const JOB_RE = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)$/;
const EXEC_RE = /^(projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+))\/executions\/([^/]+)$/;
const PARENT_RE = /^projects\/([^/]+)\/locations\/([^/]+)$/;

const jobs = new Map(); // name -> job
const executions = new Map(); // name -> execution
const operations = new Map(); // name -> op
let execSeq = 0;

function addJob(name, fields, source) {
  let j = jobs.get(name);
  if (!j) {
    j = {
      name,
      uid: crypto.randomUUID(),
      createMs: Date.now(),
      labels: {},
      taskCount: 1,
      parallelism: 0,
      image: 'us-docker.pkg.dev/cloudrun/container/job:latest',
      containerName: '',
      args: [],
      env: [],
      timeout: '600s',
      maxRetries: 3,
      configured: false,
      executions: [],
    };
    jobs.set(name, j);
  }
  if (source === 'config') {
    j.configured = true;
    if (fields.labels) j.labels = Object.assign({}, fields.labels);
    if (fields.task_count !== undefined) j.taskCount = Number(fields.task_count);
    if (fields.parallelism !== undefined) j.parallelism = Number(fields.parallelism);
    if (fields.image !== undefined) j.image = String(fields.image);
    if (fields.container_name !== undefined) j.containerName = String(fields.container_name);
    if (fields.args !== undefined) j.args = fields.args.map(String);
    if (fields.env !== undefined) {
      j.env = Array.isArray(fields.env) ? fields.env.map((e) => ({ name: e.name, value: e.value }))
        : Object.entries(fields.env).map(([name, value]) => ({ name, value: String(value) }));
    }
    if (fields.timeout !== undefined) j.timeout = String(fields.timeout);
    if (fields.max_retries !== undefined) j.maxRetries = Number(fields.max_retries);
  }
  return j;
}

function addConfiguredJobs(list, where) {
  const arr = Array.isArray(list) ? list : (list && list.jobs) || [];
  for (const [i, e] of arr.entries()) {
    const obj = typeof e === 'string' ? { name: e } : e;
    if (!obj || !JOB_RE.test(obj.name || '')) throw new Error(`${where}[${i}]: name must be projects/P/locations/L/jobs/J`);
    addJob(obj.name, obj, 'config');
  }
}

function tsObj(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function parseDurationMs(s) {
  const m = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(String(s));
  if (!m) return 600000;
  return Number(m[1]) * 1000 + (m[2] ? Number((m[2] + '000000000').slice(0, 9)) / 1e6 : 0);
}

function durObjFromMs(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

// Random bytes are drawn 4 KiB at a time: crypto.randomBytes(5) on every RunJob
// cost about 15 us of the fake's CPU per call (docs/benchmarks.md, pull).
let randPool = Buffer.alloc(0);
let randPos = 0;
function randomSuffix() {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  if (randPos + 5 > randPool.length) {
    randPool = crypto.randomBytes(4096);
    randPos = 0;
  }
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[randPool[randPos++] % alphabet.length];
  return s;
}

function jsonDurationToObj(d) {
  // d: protobufjs Duration message
  if (!d) return null;
  return { seconds: Number(d.seconds || 0), nanos: Number(d.nanos || 0) };
}

function createExecution(job, req) {
  const m = JOB_RE.exec(job.name);
  const [, project, location, jobId] = m;
  let name;
  do {
    name = `${job.name}/executions/${jobId}-${randomSuffix()}`;
  } while (executions.has(name));
  const settings = execSettingsFor(job.name);
  const ov = req && req.overrides;
  // template = the job's template with the overrides applied
  const containers = [{
    name: job.containerName,
    image: job.image,
    args: job.args.slice(),
    env: job.env.map((e) => Object.assign({}, e)),
  }];
  let taskCount = settings.taskCount !== null ? settings.taskCount : job.taskCount;
  let timeout = durObjFromMs(parseDurationMs(job.timeout));
  if (ov) {
    for (const co of ov.containerOverrides || []) {
      let c = containers.find((x) => x.name === (co.name || ''));
      if (!c && !co.name) c = containers[0];
      if (!c) {
        c = { name: co.name, image: job.image, args: [], env: [] };
        containers.push(c);
      }
      if ((co.args && co.args.length) || co.clearArgs) c.args = (co.args || []).slice();
      for (const e of co.env || []) {
        const ne = { name: e.name };
        if (e.valueSource) ne.valueSource = e.valueSource;
        else ne.value = e.value || '';
        const k = c.env.findIndex((x) => x.name === e.name);
        if (k >= 0) c.env[k] = ne;
        else c.env.push(ne);
      }
    }
    if (ov.taskCount) taskCount = ov.taskCount;
    if (ov.timeout) timeout = jsonDurationToObj(ov.timeout);
  }
  const now = Date.now();
  const e = {
    seq: ++execSeq,
    name,
    uid: crypto.randomUUID(),
    job: job.name,
    jobId,
    project,
    location,
    createMs: now,
    taskCount,
    parallelism: job.parallelism,
    template: { containers, timeout, maxRetries: job.maxRetries, serviceAccount: `fake@${project}.iam.gserviceaccount.com` },
    labels: Object.assign({}, job.labels),
    runMs: settings.runMs,
    outcome: settings.outcome,
    failureReason: settings.failureReason,
    cancelMs: null,
    logUri: `https://console.cloud.google.com/logs/viewer?project=${encodeURIComponent(project)}` +
      `&advancedFilter=${encodeURIComponent(`resource.type="cloud_run_job"\nresource.labels.job_name="${jobId}"\nresource.labels.location="${location}"\nlabels."run.googleapis.com/execution_name"="${name.slice(name.lastIndexOf('/') + 1)}"`)}`,
  };
  executions.set(name, e);
  job.executions.push(e);
  stats.executionsCreated++;
  return e;
}

// state of an execution at time `now`
function execState(e, now) {
  const doneAt = e.createMs + e.runMs;
  if (e.cancelMs !== null && e.cancelMs < doneAt) return { state: 'cancelled', at: e.cancelMs };
  if (now >= doneAt) return { state: e.outcome, at: doneAt };
  return { state: 'running', at: null };
}

function execObj(e, now, opts) {
  const st = opts && opts.fresh ? { state: 'running', at: null } : execState(e, now);
  const done = st.state !== 'running';
  const conditions = [];
  const tsAt = tsObj(done ? st.at : e.createMs);
  if (st.state === 'running') {
    conditions.push({ type: 'Completed', state: 'CONDITION_RECONCILING', message: 'Execution is running (fake)', lastTransitionTime: tsObj(e.createMs) });
  } else if (st.state === 'succeeded') {
    conditions.push({ type: 'Completed', state: 'CONDITION_SUCCEEDED', message: 'Execution completed successfully', lastTransitionTime: tsAt });
  } else if (st.state === 'failed') {
    conditions.push({ type: 'Completed', state: 'CONDITION_FAILED', message: e.failureReason, lastTransitionTime: tsAt, severity: 'ERROR', executionReason: 'NON_ZERO_EXIT_CODE' });
  } else if (st.state === 'timed_out') {
    // the API has no execution_reason for a timeout: the tasks fail, and the message says why
    conditions.push({ type: 'Completed', state: 'CONDITION_FAILED', message: `Task ${e.jobId}-0 failed: the configured timeout was reached and the task was stopped (fake)`, lastTransitionTime: tsAt, severity: 'ERROR' });
  } else {
    conditions.push({ type: 'Completed', state: 'CONDITION_FAILED', message: 'The execution was cancelled', lastTransitionTime: tsAt, severity: 'ERROR', executionReason: 'CANCELLED' });
  }
  conditions.push({ type: 'Started', state: 'CONDITION_SUCCEEDED', lastTransitionTime: tsObj(e.createMs) });
  const o = {
    name: e.name,
    uid: e.uid,
    creator: 'jobrelay@fake.iam.gserviceaccount.com',
    generation: 1,
    labels: Object.assign({ 'run.googleapis.com/jobUid': jobs.get(e.job).uid }, e.labels),
    createTime: tsObj(e.createMs),
    startTime: tsObj(e.createMs),
    updateTime: tsObj(done ? st.at : e.createMs),
    launchStage: 'GA',
    job: e.jobId,
    parallelism: e.parallelism,
    taskCount: e.taskCount,
    template: e.template,
    reconciling: !done,
    conditions,
    observedGeneration: 1,
    runningCount: done ? 0 : e.taskCount,
    succeededCount: st.state === 'succeeded' ? e.taskCount : 0,
    failedCount: st.state === 'failed' || st.state === 'timed_out' ? e.taskCount : 0,
    cancelledCount: st.state === 'cancelled' ? e.taskCount : 0,
    retriedCount: 0,
    logUri: e.logUri,
    etag: `"${e.uid.slice(0, 8)}"`,
  };
  if (done) o.completionTime = tsObj(st.at);
  return o;
}

function jobObj(j, now) {
  const last = j.executions[j.executions.length - 1];
  const o = {
    name: j.name,
    uid: j.uid,
    generation: 1,
    labels: j.labels,
    createTime: tsObj(j.createMs),
    updateTime: tsObj(j.createMs),
    creator: 'jobrelay@fake.iam.gserviceaccount.com',
    lastModifier: 'jobrelay@fake.iam.gserviceaccount.com',
    launchStage: 'GA',
    template: {
      taskCount: j.taskCount,
      parallelism: j.parallelism,
      template: {
        containers: [{ name: j.containerName, image: j.image, args: j.args, env: j.env }],
        timeout: durObjFromMs(parseDurationMs(j.timeout)),
        maxRetries: j.maxRetries,
      },
    },
    observedGeneration: 1,
    terminalCondition: { type: 'Ready', state: 'CONDITION_SUCCEEDED', lastTransitionTime: tsObj(j.createMs) },
    executionCount: j.executions.length,
    reconciling: false,
    etag: `"${j.uid.slice(0, 8)}"`,
  };
  if (last) {
    const st = execState(last, now);
    const ref = { name: last.name, createTime: tsObj(last.createMs) };
    ref.completionStatus = { running: 'EXECUTION_RUNNING', succeeded: 'EXECUTION_SUCCEEDED', failed: 'EXECUTION_FAILED', timed_out: 'EXECUTION_FAILED', cancelled: 'EXECUTION_CANCELLED' }[st.state];
    if (st.at !== null) ref.completionTime = tsObj(st.at);
    o.latestCreatedExecution = ref;
  }
  return o;
}

function newOpName(project, location) {
  return `projects/${project}/locations/${location}/operations/${crypto.randomUUID()}`;
}

function opObj(op, now) {
  const e = executions.get(op.exec);
  if (op.kind === 'validate') {
    return { name: op.name, done: true, metadata: op.snapshot, response: op.snapshot };
  }
  const cur = execObj(e, now);
  const metadata = packAny(T.Execution, cur);
  const st = execState(e, now);
  const o = { name: op.name, metadata, done: false };
  if (op.kind === 'cancel' || st.state !== 'running') {
    o.done = true;
    if (op.kind === 'cancel' || st.state === 'succeeded') o.response = metadata;
    else if (st.state === 'failed') o.error = { code: grpc.status.UNKNOWN, message: `Execution ${e.name} failed: ${e.failureReason}` };
    else if (st.state === 'timed_out') o.error = { code: grpc.status.DEADLINE_EXCEEDED, message: `Execution ${e.name} failed: the configured timeout was reached` };
    else o.error = { code: grpc.status.CANCELLED, message: `Execution ${e.name} was cancelled` };
  }
  return o;
}

// ---------------------------------------------------------------------------
// Pagination

function paginate(items, req, parent, method) {
  let size = Number(req.pageSize || 0);
  if (!(size > 0)) size = 100;
  if (size > 1000) size = 1000;
  let offset = 0;
  if (req.pageToken) {
    let tok;
    try {
      tok = JSON.parse(Buffer.from(req.pageToken, 'base64url').toString('utf8'));
    } catch (e) {
      tok = null;
    }
    if (!tok || tok.m !== method || tok.p !== parent || !Number.isInteger(tok.o) || tok.o < 0) {
      throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid page_token ${JSON.stringify(req.pageToken)}`);
    }
    offset = tok.o;
  }
  const page = items.slice(offset, offset + size);
  const next = offset + size < items.length ? Buffer.from(JSON.stringify({ m: method, p: parent, o: offset + size })).toString('base64url') : '';
  return { page, next };
}

function statusErr(code, message) {
  const e = new Error(message);
  e.grpcCode = code;
  return e;
}

// ---------------------------------------------------------------------------
// Method implementations. Each takes the decoded request (protobufjs message)
// and returns { response } or throws statusErr(...). ctx.forceCreateOnly is
// set when an error rule with create_execution fires.

function requireJob(name, create) {
  if (!JOB_RE.test(name || '')) throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid job name ${JSON.stringify(name || '')}: want projects/{project}/locations/{location}/jobs/{job}`);
  let j = jobs.get(name);
  if (!j) {
    if (config.strictJobs || !create) throw statusErr(grpc.status.NOT_FOUND, `Resource '${name.slice(name.lastIndexOf('/') + 1)}' of kind 'JOB' in region '${JOB_RE.exec(name)[2]}' in project '${JOB_RE.exec(name)[1]}' does not exist.`);
    j = addJob(name, {}, 'run');
  }
  return j;
}

// The Run API's documented limits on RunJob overrides (the README's "Limits"):
// a request over one is answered INVALID_ARGUMENT, as the real API does.
const LIMITS = { envValueBytes: 32768, envNameChars: 32768, envCount: 1000, argsCount: 1000,
  taskCount: 10000, timeoutSeconds: 168 * 3600 };

function checkLimits(req) {
  const ov = req.overrides;
  if (!ov) return;
  const bad = (m) => { throw statusErr(grpc.status.INVALID_ARGUMENT, `runfake: ${m}`); };
  (ov.containerOverrides || []).forEach((co, i) => {
    const at = `overrides.containerOverrides[${i}]`;
    const env = co.env || [];
    if (env.length > LIMITS.envCount) bad(`${at}.env: ${env.length} variables, more than ${LIMITS.envCount}`);
    env.forEach((e, k) => {
      if ((e.name || '').length > LIMITS.envNameChars) bad(`${at}.env[${k}].name: longer than ${LIMITS.envNameChars} characters`);
      const n = Buffer.byteLength(e.value || '', 'utf8');
      if (n > LIMITS.envValueBytes) bad(`${at}.env[${k}] (${e.name}): value is ${n} bytes, the maximum length is ${LIMITS.envValueBytes} bytes`);
    });
    const args = co.args || [];
    if (args.length > LIMITS.argsCount) bad(`${at}.args: ${args.length} args, more than ${LIMITS.argsCount}`);
  });
  if (ov.taskCount && (ov.taskCount < 0 || ov.taskCount > LIMITS.taskCount)) bad(`overrides.taskCount: ${ov.taskCount}, not in 1..${LIMITS.taskCount}`);
  const t = jsonDurationToObj(ov.timeout);
  if (t && (t.seconds < 0 || t.seconds + (t.nanos > 0 ? 1 : 0) > LIMITS.timeoutSeconds)) bad(`overrides.timeout: more than ${LIMITS.timeoutSeconds}s`);
}

const impl = {
  RunJob(req, ctx) {
    checkLimits(req);
    const j = requireJob(req.name, true);
    const m = JOB_RE.exec(j.name);
    if (req.validateOnly && !ctx.forceCreate) {
      const e = createExecution(j, req);
      // validate_only: nothing is kept
      executions.delete(e.name);
      j.executions.pop();
      stats.executionsCreated--;
      const snap = packAny(T.Execution, execObj(e, Date.now(), { fresh: true }));
      const op = { name: newOpName(m[1], m[2]), kind: 'validate', snapshot: snap, job: j.name };
      operations.set(op.name, op);
      return { response: opObj(op, Date.now()) };
    }
    const e = createExecution(j, req);
    ctx.execution = e.name;
    const op = { name: newOpName(m[1], m[2]), kind: 'run', exec: e.name, job: j.name };
    operations.set(op.name, op);
    ctx.operation = op.name;
    // the Operation returned by RunJob carries the Execution as it was created
    return { response: { name: op.name, done: false, metadata: packAny(T.Execution, execObj(e, e.createMs, { fresh: true })) } };
  },
  GetJob(req) {
    const j = requireJob(req.name, true);
    return { response: jobObj(j, Date.now()) };
  },
  ListJobs(req) {
    const pm = PARENT_RE.exec(req.parent || '');
    if (!pm) throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid parent ${JSON.stringify(req.parent || '')}: want projects/{project}/locations/{location}`);
    const now = Date.now();
    const all = Array.from(jobs.values()).filter((j) => {
      const m = JOB_RE.exec(j.name);
      return m[1] === pm[1] && (pm[2] === '-' || m[2] === pm[2]);
    }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const { page, next } = paginate(all, req, req.parent, 'ListJobs');
    return { response: { jobs: page.map((j) => jobObj(j, now)), nextPageToken: next } };
  },
  GetExecution(req) {
    if (!EXEC_RE.test(req.name || '')) throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid execution name ${JSON.stringify(req.name || '')}`);
    const e = executions.get(req.name);
    if (!e) throw statusErr(grpc.status.NOT_FOUND, `Execution ${req.name} not found`);
    return { response: execObj(e, Date.now()) };
  },
  ListExecutions(req) {
    const pm = JOB_RE.exec(req.parent || '');
    if (!pm) throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid parent ${JSON.stringify(req.parent || '')}: want projects/{project}/locations/{location}/jobs/{job}`);
    const now = Date.now();
    const all = Array.from(executions.values()).filter((e) => {
      const m = JOB_RE.exec(e.job);
      return m[1] === pm[1] && (pm[2] === '-' || m[2] === pm[2]) && (pm[3] === '-' || m[3] === pm[3]);
    }).sort((a, b) => b.createMs - a.createMs || b.seq - a.seq);
    const { page, next } = paginate(all, req, req.parent, 'ListExecutions');
    return { response: { executions: page.map((e) => execObj(e, now)), nextPageToken: next } };
  },
  CancelExecution(req) {
    if (!EXEC_RE.test(req.name || '')) throw statusErr(grpc.status.INVALID_ARGUMENT, `invalid execution name ${JSON.stringify(req.name || '')}`);
    const e = executions.get(req.name);
    if (!e) throw statusErr(grpc.status.NOT_FOUND, `Execution ${req.name} not found`);
    const now = Date.now();
    if (execState(e, now).state !== 'running') throw statusErr(grpc.status.FAILED_PRECONDITION, `Execution ${req.name} has already completed`);
    if (!req.validateOnly) e.cancelMs = now;
    const op = { name: newOpName(e.project, e.location), kind: 'cancel', exec: e.name, job: e.job };
    operations.set(op.name, op);
    return { response: opObj(op, now) };
  },
  GetOperation(req) {
    const op = operations.get(req.name || '');
    if (!op) throw statusErr(grpc.status.NOT_FOUND, `Operation ${JSON.stringify(req.name || '')} not found`);
    return { response: opObj(op, Date.now()) };
  },
};

// the resource a rule's "job" pattern is matched against
function targetOf(method, req) {
  if (!req) return '';
  switch (method) {
    case 'RunJob': case 'GetJob': case 'DeleteJob': return req.name || '';
    case 'UpdateJob': return (req.job && req.job.name) || '';
    case 'ListJobs': case 'CreateJob': return req.parent || '';
    case 'ListExecutions': return req.parent || '';
    case 'GetExecution': case 'CancelExecution': case 'DeleteExecution': {
      const m = EXEC_RE.exec(req.name || '');
      return m ? m[1] : req.name || '';
    }
    case 'GetOperation': case 'DeleteOperation': case 'CancelOperation': case 'WaitOperation': {
      const op = operations.get(req.name || '');
      return op ? op.job : req.name || '';
    }
    default:
      return req.name || req.parent || req.resource || '';
  }
}

// ---------------------------------------------------------------------------
// x-goog-request-params: what Google's routing annotations ask for

const templateCache = new Map();

function templateRegex(tpl) {
  let t = templateCache.get(tpl);
  if (!t) templateCache.set(tpl, (t = compileTemplate(tpl)));
  return t;
}

function compileTemplate(tpl) {
  // projects/*/locations/{location=*}/**  ->  regex + capture names
  const names = [];
  let re = '';
  const parts = tpl.split('/');
  const segRe = (seg) => (seg === '**' ? '.*' : seg === '*' ? '[^/]+' : seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  let i = 0;
  const joined = [];
  while (i < parts.length) {
    const p = parts[i];
    if (p.startsWith('{')) {
      // variable may span segments: {name=projects/*/locations/*}
      let v = p;
      while (!v.endsWith('}') && i + 1 < parts.length) v += '/' + parts[++i];
      const inner = v.slice(1, -1);
      const eq = inner.indexOf('=');
      const vname = eq >= 0 ? inner.slice(0, eq) : inner;
      const vpat = eq >= 0 ? inner.slice(eq + 1) : '*';
      names.push(vname);
      joined.push('(' + vpat.split('/').map(segRe).join('/') + ')');
    } else {
      joined.push(segRe(p));
    }
    i++;
  }
  re = '^' + joined.join('/') + '$';
  return { re: new RegExp(re), names };
}

function getField(obj, dotted) {
  let v = obj;
  for (const part of dotted.split('.')) {
    if (v === null || v === undefined) return undefined;
    v = v[part.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())];
  }
  return v;
}

function expectedRequestParams(methodDesc, req) {
  if (!methodDesc || !req) return null;
  const opts = {};
  for (const o of methodDesc.parsedOptions || []) Object.assign(opts, o);
  const routing = opts['(google.api.routing)'];
  const out = {};
  if (routing) {
    let params = routing.routing_parameters || routing.routingParameters || [];
    if (!Array.isArray(params)) params = [params];
    for (const p of params) {
      const value = getField(req, p.field);
      if (typeof value !== 'string' || value === '') continue;
      if (!p.path_template && !p.pathTemplate) {
        out[p.field] = value;
        continue;
      }
      const { re, names } = templateRegex(p.path_template || p.pathTemplate);
      const m = re.exec(value);
      if (m) names.forEach((n, k) => { out[n] = m[k + 1]; });
    }
    return out;
  }
  const http = opts['(google.api.http)'];
  if (!http) return null;
  const url = http.get || http.post || http.patch || http.put || http.delete || '';
  const re = /\{([a-zA-Z0-9_.]+)(?:=[^}]*)?\}/g;
  let m;
  while ((m = re.exec(url))) {
    const value = getField(req, m[1]);
    if (typeof value === 'string' && value !== '') out[m[1]] = value;
  }
  return out;
}

function parseRequestParams(header) {
  const out = {};
  if (!header) return out;
  for (const kv of String(header).split('&')) {
    if (!kv) continue;
    const eq = kv.indexOf('=');
    const k = eq >= 0 ? kv.slice(0, eq) : kv;
    const v = eq >= 0 ? kv.slice(eq + 1) : '';
    try {
      out[decodeURIComponent(k)] = decodeURIComponent(v.replace(/\+/g, '%20'));
    } catch (e) {
      out[k] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Recording and stats

const stats = {
  startedAt: new Date().toISOString(),
  calls: 0,
  byMethod: {},
  injected: 0,
  executionsCreated: 0,
  clientCancelled: 0,
  decodeErrors: 0,
  unknownFieldCalls: 0,
  configLoads: 0,
  configErrors: 0,
  recordLines: 0,
  maxInFlight: 0,
};

// RunJob calls received and not yet answered (or cancelled), in all and per job.
const runJobsInFlight = { all: 0, byJob: new Map() };

let recordFd = null;
if (args.record) recordFd = fs.openSync(args.record, 'a');

function record(obj) {
  if (recordFd === null) return;
  fs.writeSync(recordFd, JSON.stringify(obj) + '\n');
  stats.recordLines++;
}

function metadataJson(md) {
  const out = {};
  const map = md.toJSON ? md.toJSON() : {};
  for (const [k, vals] of Object.entries(map)) {
    const conv = vals.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : String(v)));
    out[k] = conv.length === 1 ? conv[0] : conv;
  }
  return out;
}

function bump(method, code) {
  let m = stats.byMethod[method];
  if (!m) stats.byMethod[method] = m = { total: 0, codes: {} };
  m.total++;
  const n = CODE_NAMES[code] || String(code);
  m.codes[n] = (m.codes[n] || 0) + 1;
  stats.calls++;
}

function statusDetails(code, message, rule) {
  const details = [];
  if (rule && rule.retryDelayMs !== null) details.push(packAny(T.RetryInfo, { retryDelay: durObjFromMs(rule.retryDelayMs) }));
  if (rule && rule.errorInfo) {
    details.push(packAny(T.ErrorInfo, {
      reason: String(rule.errorInfo.reason || ''),
      domain: String(rule.errorInfo.domain || 'run.googleapis.com'),
      metadata: rule.errorInfo.metadata || {},
    }));
  }
  if (!details.length) return null;
  return encode(T.Status, { code, message, details });
}

// ---------------------------------------------------------------------------
// The generic unary handler: decode, record, decide, answer.

const RAW = Symbol('raw');

function makeHandler(serviceName, methodName, methodDesc) {
  const reqType = methodDesc ? methodDesc.resolvedRequestType : null;
  return function handler(call, callback) {
    const recv = Date.now();
    maybeReloadConfig(false);
    const raw = call.request && call.request[RAW] ? call.request[RAW] : Buffer.alloc(0);
    let req = null;
    let reqJson = null;
    let decodeError = null;
    let unknown = [];
    if (reqType) {
      try {
        req = reqType.decode(raw);
        // the JSON form is only for the record; without --record it is not made
        if (recordFd !== null) reqJson = messageJson(reqType, req, { defaults: !!args['record-defaults'] });
        unknown = findUnknownFields(reqType, raw);
      } catch (e) {
        decodeError = e.message;
        stats.decodeErrors++;
      }
    }
    if (unknown.length) stats.unknownFieldCalls++;
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() - recv
      : typeof deadline === 'number' && Number.isFinite(deadline) ? deadline - recv : null;
    const mdJson = metadataJson(call.metadata);
    const expected = expectedRequestParams(methodDesc, req);
    let rp = null;
    if (expected) {
      const got = parseRequestParams(mdJson['x-goog-request-params']);
      const ok = Object.keys(expected).every((k) => got[k] === expected[k]);
      rp = { ok, expected };
    }

    const ctx = {};
    let code = grpc.status.OK;
    let message = '';
    let response = null;
    let matched = null;
    let trailer = null;
    let answerDelayMs = 0; // faults' answer_delay_ms: the outcome is made now, the answer waits
    const target = targetOf(methodName, req);
    if (!methodDesc || !impl[methodName]) {
      code = grpc.status.UNIMPLEMENTED;
      message = methodDesc ? `runfake does not implement ${serviceName}.${methodName}` : `unknown method ${methodName}`;
    } else if (decodeError) {
      code = grpc.status.INVALID_ARGUMENT;
      message = `runfake: cannot decode ${reqType.fullName.slice(1)}: ${decodeError}`;
    } else if (config.requireRequestParams && rp && !rp.ok) {
      code = grpc.status.INVALID_ARGUMENT;
      message = `runfake: x-goog-request-params ${JSON.stringify(mdJson['x-goog-request-params'] || '')} does not carry ${JSON.stringify(expected)}`;
    } else {
      const fp = faults && faults.pick(methodName, target, req);
      if (fp && fp.answerDelayMs) answerDelayMs = fp.answerDelayMs;
      matched = (fp && fp.rule ? fp : null) || pickRule(methodName, target);
      if (matched && matched.rule.code !== grpc.status.OK) {
        const r = matched.rule;
        code = r.code;
        message = r.message !== null ? r.message : `runfake: injected ${CODE_NAMES[code] || code}`;
        stats.injected++;
        if (r.createExecution && methodName === 'RunJob') {
          try {
            ctx.forceCreate = true;
            impl.RunJob(req, ctx);
          } catch (e) {
            // job name invalid etc.: nothing created
          }
        }
        const det = statusDetails(code, message, r);
        if (det) {
          trailer = new grpc.Metadata();
          trailer.set('grpc-status-details-bin', det);
        }
      } else {
        try {
          response = impl[methodName](req, ctx).response;
        } catch (e) {
          if (e.grpcCode === undefined) {
            log(`${methodName}: ${e.stack}`);
            code = grpc.status.INTERNAL;
            message = `runfake: ${e.message}`;
          } else {
            code = e.grpcCode;
            message = e.message;
          }
        }
      }
    }
    const delayMs = (config.latencyMs || 0) + (matched && matched.rule.delayMs ? matched.rule.delayMs : 0) + answerDelayMs;
    let tracked = false;
    if (methodName === 'RunJob') {
      tracked = true;
      runJobsInFlight.all++;
      runJobsInFlight.byJob.set(target, (runJobsInFlight.byJob.get(target) || 0) + 1);
      stats.maxInFlight = Math.max(stats.maxInFlight, runJobsInFlight.all);
    }
    const untrack = () => {
      if (!tracked) return;
      tracked = false;
      runJobsInFlight.all--;
      const n = runJobsInFlight.byJob.get(target) - 1;
      if (n > 0) runJobsInFlight.byJob.set(target, n);
      else runJobsInFlight.byJob.delete(target);
    };

    const line = {
      method: methodName,
      service: serviceName,
      time: new Date(recv).toISOString(),
      metadata: mdJson,
      deadline: deadlineMs,
      request: reqJson,
      status: code,
      statusName: CODE_NAMES[code] || String(code),
    };
    if (message && code !== grpc.status.OK) line.message = message;
    if (matched) line.rule = matched.index;
    if (matched && matched.fault) line.fault = matched.fault;
    Object.assign(line, faultsLib.connOf(call));
    if (delayMs) line.delayMs = delayMs;
    if (answerDelayMs) line.answerDelayMs = answerDelayMs;
    if (tracked) {
      line.inFlight = runJobsInFlight.all;
      line.inFlightJob = runJobsInFlight.byJob.get(target);
    }
    if (ctx.execution) line.execution = ctx.execution;
    if (ctx.operation) line.operation = ctx.operation;
    if (rp) line.requestParams = rp;
    if (unknown.length) line.unknownFields = unknown;
    if (decodeError) {
      line.decodeError = decodeError;
      line.requestBytes = raw.toString('base64');
    }
    if (!reqType) line.requestBytes = raw.toString('base64');
    record(line);
    bump(methodName, code);

    let cancelled = false;
    call.on('cancelled', () => {
      if (!cancelled) {
        cancelled = true;
        stats.clientCancelled++;
        untrack();
      }
    });
    const answer = () => {
      if (cancelled) return;
      untrack();
      if (code === grpc.status.OK) {
        callback(null, response);
      } else {
        const err = { code, details: message };
        if (trailer) err.metadata = trailer;
        callback(err);
      }
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  };
}

// ---------------------------------------------------------------------------
// Server

// channelz off: its per-call bookkeeping is nothing the tests read, and it costs CPU per call
const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.enable_channelz': 0 });
const rawDeserialize = (buf) => ({ [RAW]: Buffer.from(buf) });

const SERVICES = ['google.cloud.run.v2.Jobs', 'google.cloud.run.v2.Executions', 'google.longrunning.Operations'];
for (const sname of SERVICES) {
  const svc = sname.split('.').reduce((o, k) => o[k], grpcObject).service;
  const pbService = root.lookupService(sname);
  const def = {};
  const handlers = {};
  for (const [mname, m] of Object.entries(svc)) {
    // proto-loader's definition, with a deserializer that keeps the raw bytes:
    // the handler decodes them itself (to record unknown fields and decode errors)
    def[mname] = Object.assign({}, m, { requestDeserialize: rawDeserialize });
    const name = m.path.slice(m.path.lastIndexOf('/') + 1);
    const methodDesc = pbService.methods[name];
    if (m.requestStream || m.responseStream) continue; // none of the Run methods stream
    handlers[mname] = makeHandler(sname, name, methodDesc);
  }
  server.addService(def, handlers);
}

// Record calls to paths no service above has (e.g. a wrong package name), then
// answer UNIMPLEMENTED as grpc-js would. Uses a grpc-js internal; if it is not
// there the calls still get UNIMPLEMENTED, just unrecorded.
if (typeof server._retrieveHandler === 'function') {
  const orig = server._retrieveHandler.bind(server);
  const unknownHandlers = new Map();
  server._retrieveHandler = function (p) {
    const h = orig(p);
    if (h) return h;
    if (typeof p !== 'string' || !p.startsWith('/')) return h;
    let u = unknownHandlers.get(p);
    if (!u) {
      const slash = p.lastIndexOf('/');
      u = {
        func: makeHandler(p.slice(1, slash), p, null),
        serialize: () => Buffer.alloc(0),
        deserialize: rawDeserialize,
        type: 'unary',
        path: p,
      };
      if (unknownHandlers.size < 1000) unknownHandlers.set(p, u);
    }
    return u;
  };
}

function writeAtomic(file, text) {
  const tmp = `${file}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

let listenCpu = null;

function statsJson() {
  const cpu = process.cpuUsage();
  const since = listenCpu ? process.cpuUsage(listenCpu) : cpu;
  const ru = process.resourceUsage();
  return Object.assign({}, stats, {
    writtenAt: new Date().toISOString(),
    uptimeMs: Math.round(process.uptime() * 1000),
    jobsKnown: jobs.size,
    executionsKnown: executions.size,
    rules: config.rules.map((r, i) => {
      const c = ruleCounters.get(ruleKey(r, i)) || { seen: 0, fired: 0 };
      return { rule: r.raw, seen: c.seen, fired: c.fired };
    }),
    cpu: {
      userMicros: cpu.user,
      systemMicros: cpu.system,
      totalMicros: cpu.user + cpu.system,
      seconds: (cpu.user + cpu.system) / 1e6,
      // what serving cost, without loading the protos at start-up
      sinceListening: {
        userMicros: since.user,
        systemMicros: since.system,
        totalMicros: since.user + since.system,
        seconds: (since.user + since.system) / 1e6,
      },
    },
    maxRssKb: ru.maxRSS,
    faults: faults ? faults.stats() : undefined,
  });
}

function writeStats() {
  if (!args.stats) return;
  try {
    writeAtomic(args.stats, JSON.stringify(statsJson(), null, 2) + '\n');
  } catch (e) {
    log(`cannot write stats ${args.stats}: ${e.message}`);
  }
}

let stopping = false;
function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  const finish = () => {
    writeStats();
    if (recordFd !== null) {
      try {
        fs.closeSync(recordFd);
      } catch (e) { /* ignore */ }
    }
    process.exit(0);
  };
  const force = setTimeout(() => {
    server.forceShutdown();
    finish();
  }, 300);
  server.tryShutdown(() => {
    clearTimeout(force);
    finish();
  });
  void sig;
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGUSR1', () => writeStats());
process.on('SIGHUP', () => maybeReloadConfig(true));
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', () => shutdown('stdin'));
  process.stdin.on('error', () => shutdown('stdin'));
  process.stdin.resume();
}

// initial configuration
let faults = null;
try {
  faults = faultsLib.create(args, { parseCode, matchPattern, codeName: (c) => CODE_NAMES[c] || String(c) });
  if (args.jobs) addConfiguredJobs(JSON.parse(fs.readFileSync(args.jobs, 'utf8')), args.jobs);
  if (args.config) {
    maybeReloadConfig(true);
    if (stats.configErrors) throw new Error(`cannot load ${args.config}`);
  } else {
    applyConfig(null);
  }
} catch (e) {
  log(e.message);
  process.exit(2);
}

const bindHost = HOST.includes(':') && !HOST.startsWith('[') ? `[${HOST}]` : HOST;
let serverCreds;
try {
  serverCreds = args['tls-cert']
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: fs.readFileSync(args['tls-cert']),
      private_key: fs.readFileSync(args['tls-key']) }], false)
    : grpc.ServerCredentials.createInsecure();
} catch (e) {
  log(`TLS: ${e.message}`);
  process.exit(2);
}
server.bindAsync(`${bindHost}:${PORT}`, serverCreds, (err, port) => {
  if (err) {
    log(`cannot listen on ${bindHost}:${PORT}: ${err.message}`);
    process.exit(1);
  }
  listenCpu = process.cpuUsage();
  stats.listeningAt = new Date().toISOString();
  if (args['port-file']) writeAtomic(args['port-file'], `${port}\n`);
  process.stdout.write(`LISTENING ${port}\n`);
});
