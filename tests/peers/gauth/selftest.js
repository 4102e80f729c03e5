#!/usr/bin/env node
'use strict';
// Self-check of the gauth stand-ins: starts server.js on loopback ports 0 with a
// throwaway certificate (openssl), and checks each grant, the metadata server,
// the control file (fail and recover) and the record. Exit 0 when all pass.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const assert = require('assert');
const { spawn, execFileSync } = require('child_process');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gauth-selftest-'));
const f = (n) => path.join(tmp, n);
let passed = 0;
let failed = 0;
let child;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}\n       ${String(e && e.stack ? e.stack : e).split('\n').slice(0, 5).join('\n       ')}`);
  }
}

function req(kind, port, method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const mod = kind === 'https' ? https : http;
    const opts = { host: '127.0.0.1', port, method, path: p, headers: Object.assign({}, headers || {}) };
    if (kind === 'https') Object.assign(opts, { ca: fs.readFileSync(f('tls.crt')), servername: 'oauth2.googleapis.com' });
    const r = mod.request(opts, (res) => {
      let d = '';
      res.on('data', (c) => { d += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(d); } catch { /* text */ }
        resolve({ status: res.statusCode, headers: res.headers, text: d, json });
      });
    });
    r.on('error', reject);
    if (body !== undefined) r.end(body); else r.end();
  });
}
const form = (o) => [new URLSearchParams(o).toString(), { 'content-type': 'application/x-www-form-urlencoded' }];
const records = () => fs.readFileSync(f('record.jsonl'), 'utf8').trim().split('\n').map(JSON.parse);

function assertion(key, kid, claims) {
  const h = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid })).toString('base64url');
  const c = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = crypto.sign('RSA-SHA256', Buffer.from(`${h}.${c}`), key).toString('base64url');
  return `${h}.${c}.${sig}`;
}

async function main() {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('tls.key'), '-out', f('tls.crt'),
    '-days', '1', '-subj', '/CN=oauth2.googleapis.com', '-addext', 'subjectAltName=DNS:oauth2.googleapis.com'], { stdio: 'ignore' });
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const sa = { type: 'service_account', project_id: 'p', private_key_id: 'k1', private_key: pem,
    client_email: 'sa@p.iam.gserviceaccount.com', client_id: '1', token_uri: 'https://oauth2.googleapis.com/token' };
  fs.writeFileSync(f('sa.json'), JSON.stringify(sa));
  const user = { type: 'authorized_user', client_id: 'cid', client_secret: 'csecret', refresh_token: 'rt-1' };
  fs.writeFileSync(f('user.json'), JSON.stringify(user));
  child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--metadata', '127.0.0.1:0', '--https', '127.0.0.1:0',
    '--tls-cert', f('tls.crt'), '--tls-key', f('tls.key'), '--record', f('record.jsonl'), '--control', f('control.json'),
    '--service-account', f('sa.json'), '--user', f('user.json'), '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]); });
    child.on('exit', (c) => reject(new Error(`gauth exited ${c}`)));
  });
  const mport = Number(/metadata=[^ ]*:(\d+)/.exec(line)[1]);
  const hport = Number(/https=[^ ]*:(\d+)/.exec(line)[1]);
  const tokens = new Set();

  await check('metadata: probe answers Metadata-Flavor: Google; token needs the request header; email, project-id', async () => {
    const probe = await req('http', mport, 'GET', '/');
    assert.strictEqual(probe.status, 200);
    assert.strictEqual(probe.headers['metadata-flavor'], 'Google');
    const tp = '/computeMetadata/v1/instance/service-accounts/default/token';
    assert.strictEqual((await req('http', mport, 'GET', tp)).status, 403);
    const t = await req('http', mport, 'GET', tp, undefined, { 'Metadata-Flavor': 'Google' });
    assert.strictEqual(t.status, 200);
    assert.strictEqual(t.json.token_type, 'Bearer');
    assert.ok(t.json.expires_in > 0);
    tokens.add(t.json.access_token);
    const e = await req('http', mport, 'GET', '/computeMetadata/v1/instance/service-accounts/default/email', undefined, { 'Metadata-Flavor': 'Google' });
    assert.strictEqual(e.text, 'lab-sa@lab-project.iam.gserviceaccount.com');
    const p = await req('http', mport, 'GET', '/computeMetadata/v1/project/project-id', undefined, { 'Metadata-Flavor': 'Google' });
    assert.strictEqual(p.text, 'lab-project');
  });

  await check('oauth2 refresh_token: the user file\'s token is accepted, a wrong one is invalid_grant', async () => {
    const ok = await req('https', hport, 'POST', '/token', ...form({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'csecret', refresh_token: 'rt-1' }));
    assert.strictEqual(ok.status, 200, ok.text);
    tokens.add(ok.json.access_token);
    const no = await req('https', hport, 'POST', '/token', ...form({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'csecret', refresh_token: 'rt-2' }));
    assert.strictEqual(no.status, 400);
    assert.strictEqual(no.json.error, 'invalid_grant');
  });

  await check('oauth2 jwt-bearer: a signed assertion passes; bad signature, aud, scope, expiry do not', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = { iss: sa.client_email, aud: sa.token_uri, scope: 'https://www.googleapis.com/auth/cloud-platform', iat: now, exp: now + 3600 };
    const post = (a) => req('https', hport, 'POST', '/token', ...form({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: a }));
    const ok = await post(assertion(privateKey, 'k1', good));
    assert.strictEqual(ok.status, 200, ok.text);
    tokens.add(ok.json.access_token);
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    for (const [a, why] of [
      [assertion(other, 'k1', good), 'Signature'],
      [assertion(privateKey, 'k1', Object.assign({}, good, { aud: 'https://x/token' })), 'aud'],
      [assertion(privateKey, 'k1', Object.assign({}, good, { scope: 'email' })), 'scope'],
      [assertion(privateKey, 'k1', Object.assign({}, good, { iat: now - 7200, exp: now - 3600 })), 'expired'],
      [assertion(privateKey, 'k2', good), 'kid'],
    ]) {
      const r = await post(a);
      assert.strictEqual(r.status, 400, why);
      assert.strictEqual(r.json.error, 'invalid_grant', why);
      assert.ok(r.json.error_description.includes(why), `${why}: ${r.text}`);
    }
  });

  await check('sts token exchange, then iamcredentials generateAccessToken with the STS token only', async () => {
    const s = await req('https', hport, 'POST', '/v1/token', ...form({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'oidc-1', subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', audience: '//iam.googleapis.com/x',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'https://www.googleapis.com/auth/cloud-platform' }));
    assert.strictEqual(s.status, 200, s.text);
    tokens.add(s.json.access_token);
    const p = '/v1/projects/-/serviceAccounts/sa%40p.iam.gserviceaccount.com:generateAccessToken';
    const body = JSON.stringify({ scope: ['https://www.googleapis.com/auth/cloud-platform'] });
    const no = await req('https', hport, 'POST', p, body, { 'content-type': 'application/json', authorization: 'Bearer nope' });
    assert.strictEqual(no.status, 401);
    const ok = await req('https', hport, 'POST', p, body, { 'content-type': 'application/json', authorization: `Bearer ${s.json.access_token}` });
    assert.strictEqual(ok.status, 200, ok.text);
    assert.ok(Date.parse(ok.json.expireTime) > Date.now());
    tokens.add(ok.json.accessToken);
  });

  await check('control file: fail with 500 and invalid_grant, expires_in, delay_ms, and back', async () => {
    const tp = '/computeMetadata/v1/instance/service-accounts/default/token';
    const md = { 'Metadata-Flavor': 'Google' };
    const rt = () => req('https', hport, 'POST', '/token', ...form({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'csecret', refresh_token: 'rt-1' }));
    fs.writeFileSync(f('control.json'), JSON.stringify({ fail: { metadata: 500, oauth2: 'invalid_grant' }, expires_in: 90 }));
    assert.strictEqual((await req('http', mport, 'GET', tp, undefined, md)).status, 500);
    assert.strictEqual((await req('http', mport, 'GET', '/')).status, 200);
    const r = await rt();
    assert.strictEqual(r.status, 400);
    assert.strictEqual(r.json.error, 'invalid_grant');
    fs.writeFileSync(f('control.json'), JSON.stringify({ expires_in: 90 }));
    const t = await req('http', mport, 'GET', tp, undefined, md);
    assert.strictEqual(t.status, 200);
    assert.strictEqual(t.json.expires_in, 90);
    tokens.add(t.json.access_token);
    fs.writeFileSync(f('control.json'), JSON.stringify({ delay_ms: { metadata: 300 } }));
    const t0 = Date.now();
    const d = await req('http', mport, 'GET', tp, undefined, md);
    assert.strictEqual(d.status, 200);
    assert.ok(Date.now() - t0 >= 290, 'delay_ms');
    tokens.add(d.json.access_token);
    fs.unlinkSync(f('control.json'));
    const u = await rt();
    assert.strictEqual(u.status, 200);
    assert.strictEqual(u.json.expires_in, 3600);
    tokens.add(u.json.access_token);
  });

  await check('record: every request, every issued token once, all tokens distinct', async () => {
    const recs = records();
    const issued = recs.filter((r) => r.token).map((r) => r.token);
    assert.deepStrictEqual(new Set(issued), tokens);
    assert.strictEqual(issued.length, tokens.size);
    assert.ok(recs.every((r) => r.time && r.service && r.status));
    assert.strictEqual(recs.filter((r) => r.delayMs === 300).length, 1);
    assert.strictEqual(recs.filter((r) => r.service === 'oauth2' && r.status === 400).length, 7);
    assert.strictEqual(recs.filter((r) => r.service === 'metadata-probe').length, 2);
  });

  await check('loopback only: a non-loopback address is refused (exit 2)', async () => {
    const c = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--metadata', '0.0.0.0:0'], { stdio: 'ignore' });
    assert.strictEqual(await new Promise((r) => c.on('exit', r)), 2);
  });
}

main().catch((e) => {
  failed++;
  console.log(`FAIL - selftest crashed: ${e.stack}`);
}).finally(() => {
  if (child) child.kill('SIGTERM');
  console.log(`gauth selftest: ${passed} passed, ${failed} failed`);
  if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`(files kept in ${tmp})`);
  process.exit(failed ? 1 : 0);
});
