#!/usr/bin/env node
'use strict';
// gauth: stand-ins for Google's credential endpoints, for jobrelay's production lab
// (tests/lab): the GCE metadata server (plain HTTP), the OAuth2 token endpoint
// (refresh_token and jwt-bearer grants), STS token exchange, IAM Credentials
// generateAccessToken, and a JWKS. Node's http/https/crypto only. Every issued
// token is unique and every request is recorded (--record, JSONL); a control file
// (--control, JSON, read on every request) makes any service fail and recover
// while the stand-in runs. Loopback addresses only; it never connects anywhere.
// See README.md.

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');

const USAGE = `usage: node server.js [flags]
  --metadata ADDR:PORT   serve the metadata server (plain HTTP) here (repeatable)
  --https ADDR:PORT      serve oauth2 / sts / iamcredentials / jwks over TLS here (repeatable)
  --tls-cert F --tls-key F  the certificate (chain) and key of the --https listeners
  --record F             append one JSON line per request to F
  --control F            JSON control file, read on every request (see README)
  --service-account F    a service-account key file (JSON) whose jwt-bearer assertions are accepted (repeatable)
  --user F               an authorized_user file (JSON) whose refresh token is accepted (repeatable)
  --jwks F               the JWKS served at GET /oauth2/v3/certs
  --email E              the metadata server's default service account (default lab-sa@lab-project.iam.gserviceaccount.com)
  --project-id P         the metadata server's project id (default lab-project)
  --scope S              a scope jwt-bearer assertions must carry (default https://www.googleapis.com/auth/cloud-platform)
  --expires-in N         expires_in of issued tokens, seconds (default 3600; the control file can change it)
  --exit-on-stdin-close  stop when stdin reaches EOF
`;

function parseArgs(argv) {
  const multi = new Set(['metadata', 'https', 'service-account', 'user']);
  const bool = new Set(['exit-on-stdin-close', 'help']);
  const o = { metadata: [], https: [], 'service-account': [], user: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || (!USAGE.includes(`--${a} `) && a !== 'help')) throw new Error(`unknown argument ${argv[i]}`);
    if (bool.has(a)) { o[a] = true; continue; }
    if (i + 1 >= argv.length) throw new Error(`--${a} needs a value`);
    if (multi.has(a)) o[a].push(argv[++i]); else o[a] = argv[++i];
  }
  return o;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
  if (args.help) { process.stdout.write(USAGE); process.exit(0); }
  if (!args.metadata.length && !args.https.length) throw new Error('give --metadata and/or --https');
  if (args.https.length && !(args['tls-cert'] && args['tls-key'])) throw new Error('--https needs --tls-cert and --tls-key');
} catch (e) {
  process.stderr.write(`gauth: ${e.message}\n${USAGE}`);
  process.exit(2);
}

const log = (m) => process.stderr.write(`gauth: ${m}\n`);
const EMAIL = args.email || 'lab-sa@lab-project.iam.gserviceaccount.com';
const PROJECT = args['project-id'] || 'lab-project';
const SCOPE = args.scope || 'https://www.googleapis.com/auth/cloud-platform';
const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';

function splitAddr(a) {
  const m = /^(.*):(\d+)$/.exec(a);
  const host = m && m[1].replace(/^\[(.*)\]$/, '$1');
  if (!m || !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) {
    log(`refusing to listen on ${a}: loopback ADDR:PORT only`);
    process.exit(2);
  }
  return { host, port: Number(m[2]) };
}

function readJson(f) {
  return JSON.parse(fs.readFileSync(f, 'utf8'));
}

const serviceAccounts = new Map(); // client_email -> {key, kid, tokenUri}
const users = []; // {client_id, client_secret, refresh_token}
try {
  for (const f of args['service-account']) {
    const k = readJson(f);
    if (k.type !== 'service_account' || !k.client_email || !k.private_key) throw new Error(`${f}: not a service-account key`);
    serviceAccounts.set(k.client_email, {
      pub: crypto.createPublicKey(k.private_key), kid: k.private_key_id, tokenUri: k.token_uri || DEFAULT_TOKEN_URI,
    });
  }
  for (const f of args.user) {
    const u = readJson(f);
    if (u.type !== 'authorized_user' || !u.refresh_token) throw new Error(`${f}: not an authorized_user file`);
    users.push(u);
  }
} catch (e) {
  log(e.message);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// control file and record

let control = {};
let controlStamp = '';
function readControl() {
  if (!args.control) return control;
  let st;
  try {
    st = fs.statSync(args.control);
  } catch {
    control = {};
    controlStamp = '';
    return control;
  }
  const stamp = `${st.ino}/${st.size}/${st.mtimeMs}`;
  if (stamp !== controlStamp) {
    try {
      const text = fs.readFileSync(args.control, 'utf8').trim();
      control = text ? JSON.parse(text) : {};
      controlStamp = stamp;
    } catch (e) {
      log(`control file ${args.control}: ${e.message} (previous control kept)`);
    }
  }
  return control;
}

const recordFd = args.record ? fs.openSync(args.record, 'a') : null;
function record(obj) {
  if (recordFd !== null) fs.writeSync(recordFd, `${JSON.stringify(obj)}\n`);
}

let seq = 0;
const issued = new Map(); // token -> {service, subject}
function newToken(service, subject) {
  seq++;
  const t = `ya29.lab-${service}-${seq}-${crypto.randomBytes(8).toString('hex')}`;
  issued.set(t, { service, subject });
  return t;
}
function expiresIn() {
  const c = readControl();
  const n = Number(c.expires_in !== undefined ? c.expires_in : (args['expires-in'] || 3600));
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 3600;
}

// ---------------------------------------------------------------------------
// requests

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let n = 0;
    req.on('data', (d) => {
      n += d.length;
      if (n <= 1 << 20) chunks.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function parseForm(req, body) {
  const ct = String(req.headers['content-type'] || '');
  if (/json/.test(ct)) {
    try {
      const o = JSON.parse(body);
      return typeof o === 'object' && o ? o : {};
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

const WATCHED_HEADERS = ['metadata-flavor', 'authorization', 'user-agent', 'x-goog-user-project', 'content-type'];

// The failure the control file asks for, for this service: null, or [status, body].
function injected(service) {
  const f = (readControl().fail || {})[service];
  if (f === undefined || f === null || f === false || f === 0) return null;
  if (f === 'invalid_grant') return [400, { error: 'invalid_grant', error_description: 'gauth: injected invalid_grant' }];
  const code = Number(f);
  return [Number.isInteger(code) && code >= 400 && code <= 599 ? code : 500,
    { error: 'internal_failure', error_description: `gauth: injected ${f}` }];
}

function send(res, status, body, headers) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'application/text' : 'application/json; charset=utf-8';
  res.writeHead(status, Object.assign({ 'content-type': type, 'content-length': Buffer.byteLength(text) }, headers || {}));
  res.end(text);
}

async function handle(listener, req, res) {
  const body = req.method === 'POST' ? await readBody(req) : '';
  const url = new URL(req.url, 'http://x');
  const rec = {
    time: new Date().toISOString(), listener, method: req.method, host: req.headers.host || '', path: url.pathname,
    headers: Object.fromEntries(WATCHED_HEADERS.filter((h) => req.headers[h] !== undefined).map((h) => [h, req.headers[h]])),
  };
  let out;
  try {
    out = listener.startsWith('metadata') ? metadata(req, url, rec) : await tokenServices(req, url, body, rec);
  } catch (e) {
    out = [500, { error: 'internal_failure', error_description: `gauth: ${e.message}` }];
  }
  const delay = Number((readControl().delay_ms || {})[rec.service]);
  if (Number.isFinite(delay) && delay > 0) {
    rec.delayMs = Math.min(delay, 600000);
    await new Promise((r) => setTimeout(r, rec.delayMs));
  }
  rec.status = out[0];
  if (out[0] >= 400) rec.error = typeof out[1] === 'string' ? out[1] : out[1].error_description || out[1].error || JSON.stringify(out[1]);
  record(rec);
  send(res, out[0], out[1], out[2]);
}

// spelled so: gRPC core compares the response header's name case-sensitively, as GCE sends it
const FLAVOR = { 'Metadata-Flavor': 'Google' };

function metadata(req, url, rec) {
  const p = url.pathname;
  if (p === '/' || p === '') {
    rec.service = 'metadata-probe';
    const f = injected('metadata-probe');
    return f ? [f[0], 'injected failure'] : [200, 'computeMetadata/\n', FLAVOR];
  }
  rec.service = 'metadata';
  if (req.headers['metadata-flavor'] !== 'Google') return [403, 'Missing Metadata-Flavor:Google header.', FLAVOR];
  if (req.headers['x-forwarded-for']) return [403, 'X-Forwarded-For is not allowed.', FLAVOR];
  const base = '/computeMetadata/v1/instance/service-accounts/default/';
  if (p === `${base}token`) {
    const f = injected('metadata');
    if (f) return [f[0], 'injected failure', FLAVOR];
    if (url.searchParams.get('scopes')) rec.scopes = url.searchParams.get('scopes');
    rec.token = newToken('metadata', EMAIL);
    rec.subject = EMAIL;
    return [200, { access_token: rec.token, expires_in: expiresIn(), token_type: 'Bearer' }, FLAVOR];
  }
  if (p === `${base}email`) return [200, EMAIL, FLAVOR];
  if (p === '/computeMetadata/v1/project/project-id') return [200, PROJECT, FLAVOR];
  if (p === '/computeMetadata/v1/instance/service-accounts/default/scopes') return [200, `${SCOPE}\n`, FLAVOR];
  return [404, 'Not found', FLAVOR];
}

const b64url = (s) => Buffer.from(s, 'base64url');

// verifyAssertion: the jwt-bearer assertion of a service-account key: [subject, claims] or throws a reason.
function verifyAssertion(assertion) {
  const parts = String(assertion || '').split('.');
  if (parts.length !== 3) throw new Error('assertion is not a JWT');
  let header;
  let claims;
  try {
    header = JSON.parse(b64url(parts[0]).toString('utf8'));
    claims = JSON.parse(b64url(parts[1]).toString('utf8'));
  } catch {
    throw new Error('assertion header or claims are not JSON');
  }
  if (header.alg !== 'RS256') throw new Error(`assertion alg ${header.alg}, not RS256`);
  const sa = serviceAccounts.get(claims.iss);
  if (!sa) throw new Error(`assertion iss ${claims.iss}: no such service account`);
  if (header.kid !== undefined && header.kid !== sa.kid) throw new Error('assertion kid is not the key id');
  if (!crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), sa.pub, b64url(parts[2]))) {
    throw new Error('invalid JWT Signature.');
  }
  if (claims.aud !== sa.tokenUri) throw new Error(`assertion aud ${claims.aud}, not ${sa.tokenUri}`);
  const scopes = String(claims.scope || '').split(/\s+/).filter(Boolean);
  if (!scopes.includes(SCOPE)) throw new Error(`assertion scope ${claims.scope || '(none)'} lacks ${SCOPE}`);
  const now = Date.now() / 1000;
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') throw new Error('assertion iat/exp not numbers');
  if (claims.iat > now + 60) throw new Error('assertion issued in the future');
  if (claims.exp < now - 60) throw new Error('assertion expired');
  if (claims.exp <= claims.iat || claims.exp - claims.iat > 3600) throw new Error('assertion lifetime not in (0, 3600] s');
  return [claims.iss, claims];
}

async function tokenServices(req, url, body, rec) {
  const p = url.pathname;
  const bad = (msg, error) => [400, { error: error || 'invalid_request', error_description: msg }];
  if (req.method === 'GET' && p === '/oauth2/v3/certs') {
    rec.service = 'jwks';
    const f = injected('jwks');
    if (f) return f;
    if (!args.jwks) return [404, { error: 'not_found', error_description: 'no --jwks' }];
    return [200, fs.readFileSync(args.jwks, 'utf8'), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' }];
  }
  if (req.method === 'POST' && p === '/token') {
    rec.service = 'oauth2';
    const form = parseForm(req, body);
    rec.grant_type = form.grant_type;
    const f = injected('oauth2');
    if (f) return f;
    if (form.grant_type === 'refresh_token') {
      const u = users.find((x) => x.refresh_token === form.refresh_token);
      if (!u) return bad('Bad Request', 'invalid_grant');
      if (u.client_id !== form.client_id || u.client_secret !== form.client_secret) {
        return [401, { error: 'invalid_client', error_description: 'Unauthorized' }];
      }
      rec.subject = u.client_id;
      rec.token = newToken('oauth2', u.client_id);
      return [200, { access_token: rec.token, expires_in: expiresIn(), token_type: 'Bearer', scope: SCOPE }];
    }
    if (form.grant_type === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      let sub;
      try {
        [sub, rec.claims] = verifyAssertion(form.assertion);
      } catch (e) {
        return bad(e.message, 'invalid_grant');
      }
      rec.subject = sub;
      rec.token = newToken('oauth2', sub);
      return [200, { access_token: rec.token, expires_in: expiresIn(), token_type: 'Bearer' }];
    }
    return bad(`unsupported grant_type ${form.grant_type}`, 'unsupported_grant_type');
  }
  if (req.method === 'POST' && p === '/v1/token') {
    rec.service = 'sts';
    const form = parseForm(req, body);
    rec.grant_type = form.grant_type;
    rec.audience = form.audience;
    const f = injected('sts');
    if (f) return f;
    if (form.grant_type !== 'urn:ietf:params:oauth:grant-type:token-exchange') return bad(`grant_type ${form.grant_type}`, 'unsupported_grant_type');
    if (!form.subject_token || !form.subject_token_type) return bad('subject_token and subject_token_type are required');
    rec.subject = form.subject_token;
    rec.token = newToken('sts', form.subject_token);
    return [200, { access_token: rec.token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: expiresIn() }];
  }
  const m = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(p);
  if (req.method === 'POST' && m) {
    rec.service = 'iamcredentials';
    const f = injected('iamcredentials');
    if (f) return f;
    const auth = /^Bearer (.+)$/.exec(String(req.headers.authorization || ''));
    const by = auth && issued.get(auth[1]);
    // a federated (STS) token, or a user's or service account's OAuth2 token (impersonation)
    if (!by || (by.service !== 'sts' && by.service !== 'oauth2')) return [401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }];
    const email = decodeURIComponent(m[1]);
    rec.subject = email;
    rec.token = newToken('iamcredentials', email);
    const expire = new Date(Date.now() + expiresIn() * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    return [200, { accessToken: rec.token, expireTime: expire }];
  }
  rec.service = 'unknown';
  return [404, { error: 'not_found', error_description: `gauth: no ${req.method} ${p}` }];
}

// ---------------------------------------------------------------------------
// listeners

const servers = [];
let tlsOpts = null;
try {
  if (args.https.length) tlsOpts = { cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']) };
} catch (e) {
  log(`TLS: ${e.message}`);
  process.exit(2);
}

function listen(kind, addr) {
  const { host, port } = splitAddr(addr);
  return new Promise((resolve) => {
    const h = (req, res) => handle(kind, req, res);
    const srv = kind === 'metadata' ? http.createServer(h) : https.createServer(tlsOpts, h);
    srv.keepAliveTimeout = 5000;
    srv.on('error', (e) => {
      log(`cannot listen on ${addr}: ${e.message}`);
      process.exit(1);
    });
    srv.listen(port, host, () => {
      servers.push(srv);
      resolve(`${kind}=${host}:${srv.address().port}`);
    });
  });
}

function stop() {
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}

Promise.all(args.metadata.map((a) => listen('metadata', a)).concat(args.https.map((a) => listen('https', a))))
  .then((bound) => process.stdout.write(`LISTENING ${bound.join(' ')}\n`));
