// serve_client.js PORT SCRIPT — an HTTP client for the serve tests. SCRIPT is
// the body of an async function that may use:
//   await post(path, headers, body)        -> {status, headers, body}   (node:http)
//   await capture(file, extraHeaders)      -> sends a .http capture as a real request:
//                                             its method, path, headers (less Host and
//                                             Content-Length, which are recomputed) and body
//   await raw(text, {delayMs, chunk})      -> writes text on a new socket (chunk bytes every
//                                             delayMs, default all at once), reads until the
//                                             server closes; {status, text, ms, closedEarly}
//   await conn()                           -> one kept-alive socket: await c.send(text) writes a
//                                             request and reads one response {status, headers,
//                                             body} (status 0 when the server closed instead);
//                                             c.close()
//   records()                              -> the Run API fake's RunJob records ($REC)
//   env(record)                            -> its container env as an object
//   expect(cond, what)                     -> exits 1 with `what` when cond is false
// Exits 0 when the script returns, 1 on the first failed expectation or error.
'use strict';
const fs = require('fs');
const http = require('http');
const net = require('net');

const port = Number(process.argv[2]);
const script = process.argv[3];
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(path, headers, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    const h = Object.assign({}, headers || {});
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) {
      h['content-length'] = data.length;
    }
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: h, agent },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({
          status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString(),
        }));
      });
    req.on('error', reject);
    req.end(data);
  });
}

// parseCapture: a .http file (request line, headers, blank line, body; CRLF or LF).
function parseCapture(file) {
  let text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  const sep = text.match(/\r?\n\r?\n/);
  const head = sep ? text.slice(0, sep.index) : text;
  const body = sep ? text.slice(sep.index + sep[0].length) : '';
  const lines = head.split(/\r?\n/);
  const [method, path] = lines[0].split(' ');
  const headers = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.push([l.slice(0, i).trim(), l.slice(i + 1).trim()]);
  }
  return { method, path, headers, body };
}

function capture(file, extra) {
  const c = parseCapture(file);
  const h = {};
  for (const [k, v] of c.headers) {
    const lk = k.toLowerCase();
    if (lk !== 'host' && lk !== 'content-length') h[k] = v;
  }
  Object.assign(h, extra || {});
  return post(c.path || '/', h, c.body);
}

function raw(text, opt) {
  const o = Object.assign({ delayMs: 0, chunk: 0 }, opt || {});
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    const got = [];
    let off = 0;
    let closedEarly = false;
    let timer = null;
    const data = Buffer.from(text);
    const pump = () => {
      if (s.destroyed) return;
      if (!o.chunk) {
        s.write(data);
        off = data.length;
        return;
      }
      if (off >= data.length) return;
      s.write(data.subarray(off, off + o.chunk));
      off += o.chunk;
      timer = setTimeout(pump, o.delayMs);
    };
    s.on('connect', pump);
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      closedEarly = off < data.length;
      const t = Buffer.concat(got).toString();
      const m = t.match(/^HTTP\/1\.1 (\d{3})/);
      resolve({ status: m ? Number(m[1]) : 0, text: t, ms: Date.now() - t0, closedEarly });
    });
    s.on('end', () => s.end());
  });
}

// parseResponse: one HTTP/1.1 response at the start of buf, or null while incomplete.
function parseResponse(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString().split('\r\n');
  const status = Number((lines[0].match(/^HTTP\/1\.1 (\d{3})/) || [])[1] || 0);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const len = status === 204 ? 0 : Number(headers['content-length'] || 0);
  if (buf.length < end + 4 + len) return null;
  return { status, headers, body: buf.subarray(end + 4, end + 4 + len).toString(), used: end + 4 + len };
}

function conn() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let waiting = null;
    let closed = false;
    const check = () => {
      if (!waiting) return;
      const r = parseResponse(buf);
      if (r) {
        buf = buf.subarray(r.used);
        const w = waiting;
        waiting = null;
        w(r);
      } else if (closed) {
        const w = waiting;
        waiting = null;
        w({ status: 0, headers: {}, body: buf.toString() });
      }
    };
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); check(); });
    s.on('error', () => {});
    s.on('close', () => { closed = true; check(); });
    s.on('connect', () => resolve({
      send: (text) => new Promise((res) => { waiting = res; if (!closed) s.write(text); check(); }),
      close: () => s.destroy(),
    }));
    s.once('error', reject);
  });
}

function records() {
  const f = process.env.REC;
  if (!f || !fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((r) => r.method === 'RunJob');
}

const env = (r) => Object.fromEntries(
  (((r.request.overrides || {}).containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));

function expect(cond, what) {
  if (!cond) {
    console.error('FAIL: ' + what);
    process.exit(1);
  }
}

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
new AsyncFunction('post', 'capture', 'raw', 'conn', 'records', 'env', 'expect', 'fs', script)(
  post, capture, raw, conn, records, env, expect, fs)
  .then(() => { agent.destroy(); process.exit(0); })
  .catch((e) => { console.error('FAIL: ' + (e && e.stack || e)); process.exit(1); });
