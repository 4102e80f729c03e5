#!/usr/bin/env node
'use strict';
// Self-check of the fake Run API: starts server.js on a random loopback port,
// talks to it with a grpc-js client built from the same Google protos, and
// checks answers, records, injected errors, status details and stats.
// Exit 0 when every check passes, 1 otherwise.

const fs = require('fs');
const os = require('os');
const path = require('path');
const assert = require('assert');
const { spawn, execFileSync } = require('child_process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const gpf = require('google-proto-files');

const PROTO_ROOT = path.resolve(gpf.getProtoPath('..'));
const FILES = ['google/cloud/run/v2/job.proto', 'google/cloud/run/v2/execution.proto',
  'google/longrunning/operations.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'];
const pkgDef = protoLoader.loadSync(FILES, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] });
const G = grpc.loadPackageDefinition(pkgDef);
const root = new protobuf.Root();
root.resolvePath = (o, t) => (path.isAbsolute(t) ? t : path.join(PROTO_ROOT, t));
root.loadSync(FILES, { keepCase: false });
root.resolveAll();
const Execution = root.lookupType('google.cloud.run.v2.Execution');
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');
const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');
const RunJobRequest = root.lookupType('google.cloud.run.v2.RunJobRequest');

const ENV = Object.assign({}, process.env, { METADATA_SERVER_DETECTION: 'none', GCE_METADATA_HOST: '127.0.0.1:9' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runfake-selftest-'));
const P = 'projects/proj-1/locations/us-central1';
const job = (id) => `${P}/jobs/${id}`;

let passed = 0;
let failed = 0;
const children = [];

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}\n       ${(e && e.stack ? e.stack : String(e)).split('\n').slice(0, 6).join('\n       ')}`);
  }
}

function writeConfig(file, obj) {
  const t = `${file}.tmp`;
  fs.writeFileSync(t, JSON.stringify(obj));
  fs.renameSync(t, file);
}

function startServer(extraArgs, name) {
  const rec = path.join(tmp, `${name}.record.jsonl`);
  const stats = path.join(tmp, `${name}.stats.json`);
  const portFile = path.join(tmp, `${name}.port`);
  const argv = [path.join(__dirname, 'server.js'), '--port', '0', '--record', rec, '--stats', stats, '--port-file', portFile].concat(extraArgs);
  const child = spawn(process.execPath, argv, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const to = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^LISTENING (\d+)\n/.exec(out);
      if (m) {
        clearTimeout(to);
        resolve({ child, port: Number(m[1]), rec, stats, portFile, stdout: () => out, stderr: () => stderr });
      }
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}: ${stderr}`)));
  });
}

function clients(port) {
  const addr = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  const opts = { 'grpc.primary_user_agent': 'jobrelay-selftest/1.0' };
  return {
    jobs: new G.google.cloud.run.v2.Jobs(addr, creds, opts),
    execs: new G.google.cloud.run.v2.Executions(addr, creds, opts),
    ops: new G.google.longrunning.Operations(addr, creds, opts),
    raw: new grpc.Client(addr, creds, opts),
  };
}

function call(client, method, req, mdObj, deadlineMs) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(mdObj || {})) md.set(k, v);
  return new Promise((resolve) => {
    client[method](req, md, { deadline: Date.now() + (deadlineMs || 5000) }, (err, res) => resolve({ err, res }));
  });
}

function rawCall(client, pathName, bytes) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(pathName, (b) => b, (b) => b, bytes, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => resolve({ err, res }));
  });
}

function records(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const lastRecord = (file) => records(file).slice(-1)[0];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rp = (name) => ({ 'x-goog-request-params': `location=${name.split('/')[3]}` });

async function main() {
  const cfg = path.join(tmp, 'main.config.json');
  const jobsFile = path.join(tmp, 'jobs.json');
  fs.writeFileSync(jobsFile, JSON.stringify([{ name: job('preset-a'), labels: { team: 'x' } }, { name: job('preset-b') }]));
  writeConfig(cfg, { jobs: [{ name: job('from-config'), labels: { env: 'test' } }] });
  const s = await startServer(['--config', cfg, '--jobs', jobsFile], 'main');
  const c = clients(s.port);
  let firstExec = null;

  await check('port file holds the port', async () => {
    assert.strictEqual(fs.readFileSync(s.portFile, 'utf8').trim(), String(s.port));
  });

  await check('RunJob returns an Operation whose metadata packs the Execution', async () => {
    const req = {
      name: job('hello'),
      overrides: {
        containerOverrides: [{ env: [{ name: 'A', value: 'b' }], args: ['x'], clearArgs: false }],
        taskCount: 2,
        timeout: { seconds: 600 },
      },
    };
    const { err, res } = await call(c.jobs, 'RunJob', req, { 'x-goog-request-params': 'location=us-central1', 'x-goog-api-client': 'gl-c/12 grpc/1.51.1 jobrelay/0.1' });
    assert.ifError(err);
    assert.match(res.name, /^projects\/proj-1\/locations\/us-central1\/operations\/[0-9a-f-]{36}$/);
    assert.strictEqual(res.done, false);
    assert.strictEqual(res.metadata.type_url, 'type.googleapis.com/google.cloud.run.v2.Execution');
    const e = Execution.toObject(Execution.decode(res.metadata.value), { longs: String, enums: String });
    assert.match(e.name, /^projects\/proj-1\/locations\/us-central1\/jobs\/hello\/executions\/hello-[a-z0-9]{5}$/);
    assert.strictEqual(e.job, 'hello');
    assert.ok(e.logUri.startsWith('https://console.cloud.google.com/logs/viewer?'), e.logUri);
    assert.ok(Number(e.createTime.seconds) > 1.6e9);
    assert.strictEqual(e.taskCount, 2);
    assert.deepStrictEqual(e.template.containers[0].args, ['x']);
    assert.deepStrictEqual(e.template.containers[0].env.map((v) => [v.name, v.value]), [['A', 'b']]);
    assert.strictEqual(e.template.timeout.seconds, '600');
    firstExec = e.name;

    const r = lastRecord(s.rec);
    assert.strictEqual(r.method, 'RunJob');
    assert.strictEqual(r.status, 0);
    assert.strictEqual(r.statusName, 'OK');
    assert.ok(!Number.isNaN(Date.parse(r.time)));
    assert.strictEqual(r.metadata['x-goog-request-params'], 'location=us-central1');
    assert.strictEqual(r.metadata['x-goog-api-client'], 'gl-c/12 grpc/1.51.1 jobrelay/0.1');
    assert.match(r.metadata['user-agent'], /jobrelay-selftest\/1\.0/);
    assert.ok(r.deadline > 0 && r.deadline <= 5000, `deadline ${r.deadline}`);
    assert.deepStrictEqual(r.request, {
      name: job('hello'),
      overrides: { containerOverrides: [{ args: ['x'], env: [{ name: 'A', value: 'b' }] }], taskCount: 2, timeout: '600s' },
    });
    assert.strictEqual(r.execution, e.name);
    assert.strictEqual(r.operation, res.name);
    assert.deepStrictEqual(r.requestParams, { ok: true, expected: { location: 'us-central1' } });
    assert.strictEqual(r.unknownFields, undefined);
  });

  await check('record: no deadline -> null; wrong routing header -> requestParams.ok=false', async () => {
    await new Promise((resolve) => c.jobs.GetJob({ name: job('hello') }, new grpc.Metadata(), (err) => resolve(err)));
    const r = lastRecord(s.rec);
    assert.strictEqual(r.method, 'GetJob');
    assert.strictEqual(r.deadline, null);
    assert.strictEqual(r.requestParams.ok, false);
  });

  await check('GetExecution / GetOperation / GetJob over what RunJob created', async () => {
    let { err, res } = await call(c.execs, 'GetExecution', { name: firstExec }, { 'x-goog-request-params': `name=${encodeURIComponent(firstExec)}` });
    assert.ifError(err);
    assert.strictEqual(res.name, firstExec);
    assert.strictEqual(res.succeededCount, 2); // run_ms 0: done at once
    assert.strictEqual(res.conditions[0].state, 'CONDITION_SUCCEEDED');
    assert.strictEqual(lastRecord(s.rec).requestParams.ok, true);
    const opName = records(s.rec).find((x) => x.execution === firstExec).operation;
    ({ err, res } = await call(c.ops, 'GetOperation', { name: opName }));
    assert.ifError(err);
    assert.strictEqual(res.done, true);
    assert.strictEqual(res.result, 'response');
    assert.strictEqual(Execution.decode(res.response.value).name, firstExec);
    ({ err, res } = await call(c.jobs, 'GetJob', { name: job('hello') }, rp(job('hello'))));
    assert.ifError(err);
    assert.strictEqual(res.executionCount, 1);
    assert.strictEqual(res.latestCreatedExecution.name, firstExec);
    assert.strictEqual(res.latestCreatedExecution.completionStatus, 'EXECUTION_SUCCEEDED');
    ({ err } = await call(c.execs, 'GetExecution', { name: `${job('hello')}/executions/nope` }));
    assert.strictEqual(err && err.code, grpc.status.NOT_FOUND);
  });

  await check('ListExecutions and ListJobs paginate', async () => {
    for (let i = 0; i < 4; i++) assert.ifError((await call(c.jobs, 'RunJob', { name: job('many') }, rp(job('many')))).err);
    const seen = [];
    let token = '';
    let pages = 0;
    do {
      const { err, res } = await call(c.execs, 'ListExecutions', { parent: job('many'), pageSize: 3, pageToken: token });
      assert.ifError(err);
      seen.push(...res.executions.map((e) => e.name));
      token = res.nextPageToken;
      pages++;
    } while (token);
    assert.strictEqual(pages, 2);
    assert.strictEqual(new Set(seen).size, 4);
    const names = [];
    token = '';
    do {
      const { err, res } = await call(c.jobs, 'ListJobs', { parent: P, pageSize: 2, pageToken: token }, { 'x-goog-request-params': 'location=us-central1' });
      assert.ifError(err);
      names.push(...res.jobs.map((j) => j.name));
      token = res.nextPageToken;
    } while (token);
    assert.deepStrictEqual(names, ['from-config', 'hello', 'many', 'preset-a', 'preset-b'].map(job));
    const { err } = await call(c.jobs, 'ListJobs', { parent: P, pageToken: 'garbage' });
    assert.strictEqual(err && err.code, grpc.status.INVALID_ARGUMENT);
    const r = records(s.rec).filter((x) => x.method === 'ListJobs')[0];
    assert.deepStrictEqual(r.request, { parent: P, pageSize: 2 });
  });

  await check('injected UNAVAILABLE (config file re-read mid-run)', async () => {
    writeConfig(cfg, { rules: [{ job: 'flaky', code: 'UNAVAILABLE', message: 'backend down' }] });
    const { err } = await call(c.jobs, 'RunJob', { name: job('flaky') }, rp(job('flaky')));
    assert.strictEqual(err && err.code, grpc.status.UNAVAILABLE);
    assert.strictEqual(err.details, 'backend down');
    const r = lastRecord(s.rec);
    assert.strictEqual(r.status, 14);
    assert.strictEqual(r.statusName, 'UNAVAILABLE');
    assert.strictEqual(r.rule, 0);
    assert.strictEqual(r.execution, undefined);
    // other jobs unaffected
    assert.ifError((await call(c.jobs, 'RunJob', { name: job('steady') }, rp(job('steady')))).err);
  });

  await check('RESOURCE_EXHAUSTED with RetryInfo + ErrorInfo in grpc-status-details-bin', async () => {
    writeConfig(cfg, { rules: [{ job: '*', code: 8, message: 'quota', retry_delay_ms: 1500, error_info: { reason: 'RATE_LIMIT_EXCEEDED', metadata: { quota_limit: 'x' } } }] });
    const { err } = await call(c.jobs, 'RunJob', { name: job('quota') }, rp(job('quota')));
    assert.strictEqual(err && err.code, grpc.status.RESOURCE_EXHAUSTED);
    const bin = err.metadata.get('grpc-status-details-bin');
    assert.strictEqual(bin.length, 1);
    const st = Status.decode(bin[0]);
    assert.strictEqual(st.code, 8);
    assert.strictEqual(st.message, 'quota');
    assert.strictEqual(st.details.length, 2);
    assert.strictEqual(st.details[0].type_url, 'type.googleapis.com/google.rpc.RetryInfo');
    const ri = RetryInfo.decode(st.details[0].value);
    assert.strictEqual(Number(ri.retryDelay.seconds), 1);
    assert.strictEqual(ri.retryDelay.nanos, 500000000);
    assert.strictEqual(st.details[1].type_url, 'type.googleapis.com/google.rpc.ErrorInfo');
    const ei = ErrorInfo.decode(st.details[1].value);
    assert.strictEqual(ei.reason, 'RATE_LIMIT_EXCEEDED');
    assert.strictEqual(ei.domain, 'run.googleapis.com');
    assert.strictEqual(lastRecord(s.rec).status, 8);
  });

  await check('every / times / method scoping', async () => {
    writeConfig(cfg, { rules: [
      { job: 'every3', code: 'ABORTED', every: 3 },
      { job: 'twice', code: 'UNAVAILABLE', times: 2 },
      { job: '*', method: 'GetJob', code: 'PERMISSION_DENIED' },
    ] });
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await call(c.jobs, 'RunJob', { name: job('every3') })).err?.code || 0);
    assert.deepStrictEqual(codes, [0, 0, 10, 0, 0, 10]);
    const codes2 = [];
    for (let i = 0; i < 3; i++) codes2.push((await call(c.jobs, 'RunJob', { name: job('twice') })).err?.code || 0);
    assert.deepStrictEqual(codes2, [14, 14, 0]);
    assert.strictEqual((await call(c.jobs, 'GetJob', { name: job('twice') })).err?.code, grpc.status.PERMISSION_DENIED);
  });

  await check('delay_ms + short deadline -> DEADLINE_EXCEEDED, execution still created; create_execution with an error', async () => {
    writeConfig(cfg, { rules: [{ job: 'slow', delay_ms: 1500 }, { job: 'ambig', code: 'INTERNAL', create_execution: true }] });
    const t0 = Date.now();
    const { err } = await call(c.jobs, 'RunJob', { name: job('slow') }, {}, 100);
    assert.strictEqual(err && err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 1400);
    const r = lastRecord(s.rec);
    assert.strictEqual(r.method, 'RunJob');
    assert.strictEqual(r.status, 0);
    assert.strictEqual(r.delayMs, 1500);
    assert.ok(r.deadline <= 100);
    let l = await call(c.execs, 'ListExecutions', { parent: job('slow') });
    assert.strictEqual(l.res.executions.length, 1);
    const e2 = await call(c.jobs, 'RunJob', { name: job('ambig') });
    assert.strictEqual(e2.err && e2.err.code, grpc.status.INTERNAL);
    const r2 = lastRecord(s.rec);
    assert.strictEqual(r2.status, 13);
    assert.match(r2.execution, /\/jobs\/ambig\/executions\/ambig-/);
    l = await call(c.execs, 'ListExecutions', { parent: job('ambig') });
    assert.deepStrictEqual(l.res.executions.map((x) => x.name), [r2.execution]);
  });

  await check('execution that runs, then fails; LRO done with error', async () => {
    writeConfig(cfg, { executions: [{ job: 'longrun', run_ms: 1000, outcome: 'failed', failure_reason: 'boom' }] });
    const { err, res } = await call(c.jobs, 'RunJob', { name: job('longrun') });
    assert.ifError(err);
    const name = Execution.decode(res.metadata.value).name;
    let g = await call(c.execs, 'GetExecution', { name });
    assert.strictEqual(g.res.reconciling, true);
    assert.strictEqual(g.res.completionTime, null);
    assert.strictEqual(g.res.runningCount, 1);
    let op = await call(c.ops, 'GetOperation', { name: res.name });
    assert.strictEqual(op.res.done, false);
    await sleep(1100);
    g = await call(c.execs, 'GetExecution', { name });
    assert.strictEqual(g.res.reconciling, false);
    assert.strictEqual(g.res.failedCount, 1);
    assert.strictEqual(g.res.conditions[0].state, 'CONDITION_FAILED');
    assert.strictEqual(g.res.conditions[0].message, 'boom');
    assert.strictEqual(g.res.conditions[0].executionReason, 'NON_ZERO_EXIT_CODE');
    assert.ok(g.res.completionTime);
    op = await call(c.ops, 'GetOperation', { name: res.name });
    assert.strictEqual(op.res.done, true);
    assert.strictEqual(op.res.result, 'error');
    assert.match(op.res.error.message, /boom/);
  });

  await check('execution that times out: failed tasks, no execution_reason, LRO DEADLINE_EXCEEDED', async () => {
    writeConfig(cfg, { executions: [{ job: 'tmo', run_ms: 0, outcome: 'timed_out' }] });
    const { err, res } = await call(c.jobs, 'RunJob', { name: job('tmo') });
    assert.ifError(err);
    const name = Execution.decode(res.metadata.value).name;
    const g = await call(c.execs, 'GetExecution', { name });
    assert.strictEqual(g.res.failedCount, 1);
    assert.strictEqual(g.res.conditions[0].state, 'CONDITION_FAILED');
    assert.match(g.res.conditions[0].message, /timeout/);
    assert.notStrictEqual(g.res.conditions[0].reasons, 'executionReason');
    const op = await call(c.ops, 'GetOperation', { name: res.name });
    assert.strictEqual(op.res.error.code, grpc.status.DEADLINE_EXCEEDED);
  });

  await check('CancelExecution of a running execution', async () => {
    writeConfig(cfg, { executions: { '*': { run_ms: 60000 } } });
    const { res } = await call(c.jobs, 'RunJob', { name: job('cancelme') });
    const name = Execution.decode(res.metadata.value).name;
    const cx = await call(c.execs, 'CancelExecution', { name });
    assert.ifError(cx.err);
    assert.strictEqual(cx.res.done, true);
    const g = await call(c.execs, 'GetExecution', { name });
    assert.strictEqual(g.res.cancelledCount, 1);
    assert.strictEqual(g.res.conditions[0].executionReason, 'CANCELLED');
    const again = await call(c.execs, 'CancelExecution', { name });
    assert.strictEqual(again.err && again.err.code, grpc.status.FAILED_PRECONDITION);
  });

  await check('unknown request fields and unknown methods are recorded', async () => {
    const good = Buffer.from(RunJobRequest.encode(RunJobRequest.fromObject({ name: job('raw'), overrides: { taskCount: 3 } })).finish());
    // + field 9 (varint 1) at top level: not in Google's RunJobRequest
    const bytes = Buffer.concat([good, Buffer.from([9 << 3, 1])]);
    const { err } = await rawCall(c.raw, '/google.cloud.run.v2.Jobs/RunJob', bytes);
    assert.ifError(err);
    const r = lastRecord(s.rec);
    assert.deepStrictEqual(r.request, { name: job('raw'), overrides: { taskCount: 3 } });
    assert.deepStrictEqual(r.unknownFields, ['(root): unknown field 9 (wire type 0) in google.cloud.run.v2.RunJobRequest']);
    // nested: ContainerOverride{args:"x", field 9:"A"} inside overrides (field 4)
    const co = Buffer.from([0x12, 1, 0x78, 0x4a, 1, 0x41]);
    const ov = Buffer.concat([Buffer.from([0x0a, co.length]), co]);
    const nm = Buffer.from(job('raw'));
    const nested = Buffer.concat([Buffer.from([0x0a, nm.length]), nm, Buffer.from([0x22, ov.length]), ov]);
    assert.ifError((await rawCall(c.raw, '/google.cloud.run.v2.Jobs/RunJob', nested)).err);
    assert.deepStrictEqual(lastRecord(s.rec).unknownFields,
      ['overrides.containerOverrides[0]: unknown field 9 (wire type 2) in google.cloud.run.v2.RunJobRequest.Overrides.ContainerOverride']);
    assert.deepStrictEqual(lastRecord(s.rec).request, { name: job('raw'), overrides: { containerOverrides: [{ args: ['x'] }] } });
    const u = await rawCall(c.raw, '/google.cloud.run.v2.Job/RunJob', good);
    assert.strictEqual(u.err && u.err.code, grpc.status.UNIMPLEMENTED);
    const r2 = lastRecord(s.rec);
    assert.strictEqual(r2.method, '/google.cloud.run.v2.Job/RunJob');
    assert.strictEqual(r2.status, 12);
    assert.strictEqual(r2.requestBytes, good.toString('base64'));
    const d = await call(c.execs, 'DeleteExecution', { name: `${job('x')}/executions/y` });
    assert.strictEqual(d.err && d.err.code, grpc.status.UNIMPLEMENTED);
    assert.strictEqual(lastRecord(s.rec).method, 'DeleteExecution');
  });

  await check('invalid names -> INVALID_ARGUMENT; strict_jobs -> NOT_FOUND', async () => {
    writeConfig(cfg, { strict_jobs: true });
    assert.strictEqual((await call(c.jobs, 'RunJob', { name: 'jobs/x' })).err?.code, grpc.status.INVALID_ARGUMENT);
    assert.strictEqual((await call(c.jobs, 'RunJob', { name: job('never-seen') })).err?.code, grpc.status.NOT_FOUND);
    assert.ifError((await call(c.jobs, 'RunJob', { name: job('from-config') })).err);
  });

  await check('limits: an env value over 32768 bytes, 1001 args, task_count 10001, timeout over 168h -> INVALID_ARGUMENT', async () => {
    writeConfig(cfg, {});
    const run = (ov) => call(c.jobs, 'RunJob', { name: job('limits'), overrides: ov });
    const env = (n) => ({ containerOverrides: [{ env: [{ name: 'PAYLOAD_B64', value: 'A'.repeat(n) }] }] });
    assert.ifError((await run(env(32768))).err);
    const over = await run(env(32769));
    assert.strictEqual(over.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(over.err.details, /PAYLOAD_B64.*32769 bytes/);
    assert.strictEqual(lastRecord(s.rec).execution, undefined);
    const args = (n) => ({ containerOverrides: [{ args: Array(n).fill('a') }] });
    assert.ifError((await run(args(1000))).err);
    assert.strictEqual((await run(args(1001))).err?.code, grpc.status.INVALID_ARGUMENT);
    assert.ifError((await run({ taskCount: 10000, timeout: { seconds: 604800 } })).err);
    assert.strictEqual((await run({ taskCount: 10001 })).err?.code, grpc.status.INVALID_ARGUMENT);
    assert.strictEqual((await run({ timeout: { seconds: 604800, nanos: 1000000 } })).err?.code, grpc.status.INVALID_ARGUMENT);
  });

  await check('SIGTERM: exits 0 promptly and writes stats with CPU usage', async () => {
    const t0 = Date.now();
    const code = await new Promise((resolve) => {
      s.child.removeAllListeners('exit');
      s.child.on('exit', (c2) => resolve(c2));
      s.child.kill('SIGTERM');
    });
    assert.strictEqual(code, 0);
    assert.ok(Date.now() - t0 < 2000);
    const st = JSON.parse(fs.readFileSync(s.stats, 'utf8'));
    assert.ok(st.cpu.userMicros > 0 && st.cpu.systemMicros >= 0);
    assert.ok(st.cpu.sinceListening.totalMicros <= st.cpu.totalMicros);
    assert.strictEqual(st.calls, records(s.rec).length);
    assert.ok(st.byMethod.RunJob.codes.OK > 5);
    assert.strictEqual(st.byMethod.RunJob.codes.UNAVAILABLE, 3);
    assert.strictEqual(s.stdout(), `LISTENING ${s.port}\n`);
  });

  await check('CLI flags: --error UNAVAILABLE --error-times 1 --retry-delay-ms 250 --latency-ms 20', async () => {
    const s2 = await startServer(['--error', 'UNAVAILABLE', '--error-times', '1', '--retry-delay-ms', '250', '--latency-ms', '20'], 'cli');
    const c2 = clients(s2.port);
    const t0 = Date.now();
    const a = await call(c2.jobs, 'RunJob', { name: job('j') });
    assert.ok(Date.now() - t0 >= 18);
    assert.strictEqual(a.err && a.err.code, grpc.status.UNAVAILABLE);
    const st = Status.decode(a.err.metadata.get('grpc-status-details-bin')[0]);
    assert.strictEqual(RetryInfo.decode(st.details[0].value).retryDelay.nanos, 250000000);
    assert.ifError((await call(c2.jobs, 'RunJob', { name: job('j') })).err);
    s2.child.kill('SIGTERM');
    await new Promise((r) => s2.child.on('exit', r));
  });

  await check('faults: --fault-answer-delay-ms 300-400: execution made on arrival, answer 300-400 ms later, seeded', async () => {
    const s4 = await startServer(['--fault-answer-delay-ms', '300-400', '--fault-seed', '7'], 'adelay');
    const c4 = clients(s4.port);
    const req = (k) => ({ name: job('slowrun'), overrides: { containerOverrides: [{ env: [{ name: 'JOBRELAY_KEY', value: k }] }] } });
    const t0 = Date.now();
    const a = await call(c4.jobs, 'RunJob', req('k-1'));
    assert.ifError(a.err);
    assert.ok(Date.now() - t0 >= 295, `answered after ${Date.now() - t0} ms`);
    const r1 = lastRecord(s4.rec);
    assert.ok(r1.answerDelayMs >= 300 && r1.answerDelayMs <= 400, JSON.stringify(r1));
    assert.strictEqual(r1.delayMs, r1.answerDelayMs);
    assert.ok(!r1.fault);
    // a client that gives up (or dies) before the answer still leaves the execution
    const b = await call(c4.jobs, 'RunJob', req('k-2'), {}, 100);
    assert.strictEqual(b.err && b.err.code, grpc.status.DEADLINE_EXCEEDED);
    const r2 = lastRecord(s4.rec);
    assert.ok(r2.execution && r2.status === 0 && r2.inFlight >= 1, JSON.stringify(r2));
    const l = await call(c4.execs, 'ListExecutions', { parent: job('slowrun') });
    assert.strictEqual(l.res.executions.length, 2);
    assert.ok(!lastRecord(s4.rec).delayMs, 'only RunJob answers are delayed');
    // the same seed, key and call number give the same delay
    const s5 = await startServer(['--fault-answer-delay-ms', '300-400', '--fault-seed', '7'], 'adelay2');
    const c5 = clients(s5.port);
    assert.ifError((await call(c5.jobs, 'RunJob', req('k-1'))).err);
    assert.strictEqual(lastRecord(s5.rec).answerDelayMs, r1.answerDelayMs);
    for (const x of [s4, s5]) {
      x.child.kill('SIGTERM');
      await new Promise((r) => x.child.on('exit', r));
    }
    const st = JSON.parse(fs.readFileSync(s4.stats, 'utf8'));
    assert.strictEqual(st.faults.answer_delayed, 2);
    assert.ok(st.clientCancelled >= 1);
    c4.jobs.close(); c4.execs.close(); c5.jobs.close();
  });

  await check('--tls-cert/--tls-key: TLS with the given certificate; a plaintext client is refused', async () => {
    const key = path.join(tmp, 'tls.key');
    const crt = path.join(tmp, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1',
      '-subj', '/CN=run.googleapis.com', '-addext', 'subjectAltName=DNS:run.googleapis.com'], { stdio: 'ignore' });
    const s3 = await startServer(['--tls-cert', crt, '--tls-key', key], 'tls');
    const creds = grpc.credentials.createSsl(fs.readFileSync(crt));
    const opts = { 'grpc.ssl_target_name_override': 'run.googleapis.com', 'grpc.default_authority': 'run.googleapis.com' };
    const tjobs = new G.google.cloud.run.v2.Jobs(`127.0.0.1:${s3.port}`, creds, opts);
    const a = await call(tjobs, 'RunJob', { name: job('tls') }, { authorization: 'Bearer t-1' });
    assert.ifError(a.err);
    const rec = fs.readFileSync(s3.rec, 'utf8').trim().split('\n').map(JSON.parse);
    assert.strictEqual(rec[0].metadata.authorization, 'Bearer t-1');
    const plain = clients(s3.port);
    const b = await call(plain.jobs, 'RunJob', { name: job('tls') }, {}, 2000);
    assert.ok(b.err, 'a plaintext call must fail');
    tjobs.close();
    plain.jobs.close();
    s3.child.kill('SIGTERM');
    await new Promise((r) => s3.child.on('exit', r));
  });
}

main().catch((e) => {
  failed++;
  console.log(`FAIL - selftest crashed: ${e.stack}`);
}).finally(() => {
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  console.log(`runfake selftest: ${passed} passed, ${failed} failed`);
  if (!failed && !process.env.SELFTEST_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`(files kept in ${tmp})`);
  process.exit(failed ? 1 : 0);
});
