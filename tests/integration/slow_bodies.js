// slow_bodies.js PORT PID OPTIONS-JSON — for test_serve_memory.sh: opens
// OPTIONS.n connections to jobrelay serve on 127.0.0.1:PORT at once, each
// sending POST headers (OPTIONS.headers, Content-Length OPTIONS.bytes, and
// "Expect: 100-continue" when OPTIONS.expect100; "{i}" in a header value
// becomes the connection's number) and then its body slowly,
// OPTIONS.chunk bytes every OPTIONS.everyMs ms (with expect100, only after a
// 100 Continue). A connection stops sending once it has an answer. Meanwhile
// the server's VmRSS (/proc/PID/status) is sampled every 10 ms. Prints one
// JSON line: {statuses: {code: count}, continues, rssStartKb, rssMaxKb,
// rssEndKb, sentBeforeAnswer: [body bytes sent before each answer came],
// retryAfter: [values]}. Every connection must end (answer or close)
// within OPTIONS.deadlineMs (default 60 s), else it exits 1.
'use strict';
const fs = require('fs');
const net = require('net');

const [port, pid] = [Number(process.argv[2]), Number(process.argv[3])];
const o = Object.assign({ n: 60, bytes: 10 << 20, chunk: 256 << 10, everyMs: 25, headers: {},
  expect100: false, deadlineMs: 60000 }, JSON.parse(process.argv[4] || '{}'));

function rssKb() {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : 0;
}

const out = { statuses: {}, continues: 0, rssStartKb: rssKb(), rssMaxKb: 0, rssEndKb: 0,
  sentBeforeAnswer: [], retryAfter: [] };
out.rssMaxKb = out.rssStartKb;
const sampler = setInterval(() => { out.rssMaxKb = Math.max(out.rssMaxKb, rssKb()); }, 10);

function one(_, i) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(o.chunk, 'x');
    let sent = 0;
    let got = Buffer.alloc(0);
    let answered = false;
    let timer = null;
    const pump = () => {
      if (answered || s.destroyed || sent >= o.bytes) return;
      const n = Math.min(o.chunk, o.bytes - sent);
      s.write(chunk.subarray(0, n));
      sent += n;
      timer = setTimeout(pump, o.everyMs);
    };
    const finish = () => {
      clearTimeout(timer);
      const text = got.toString('latin1');
      const finals = text.split('\r\n\r\n').filter((h) => /^HTTP\/1\.1 [2-5]\d\d/.test(h));
      const m = finals.length ? finals[0].match(/^HTTP\/1\.1 (\d{3})/) : null;
      const code = m ? m[1] : 'closed';
      out.statuses[code] = (out.statuses[code] || 0) + 1;
      const ra = finals.length ? finals[0].match(/\r\nretry-after: *(\d+)/i) : null;
      if (ra) out.retryAfter.push(Number(ra[1]));
      resolve();
    };
    s.on('connect', () => {
      const h = { Host: 'x', 'Content-Length': String(o.bytes) };
      for (const [k, v] of Object.entries(o.headers)) h[k] = String(v).replace('{i}', String(i));
      if (o.expect100) h.Expect = '100-continue';
      s.write('POST / HTTP/1.1\r\n' + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
      if (!o.expect100) pump();
    });
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      const text = got.toString('latin1');
      if (/^HTTP\/1\.1 100 /.test(text) && !timer && !answered && sent === 0) {
        out.continues++;
        pump();
      }
      if (!answered && /HTTP\/1\.1 [2-5]\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n/.test(text)) {
        answered = true;
        out.sentBeforeAnswer.push(sent);
        s.end();
      }
    });
    s.on('error', () => {});
    s.on('close', finish);
  });
}

const guard = setTimeout(() => { console.error('FAIL: connections still open after ' + o.deadlineMs + ' ms'); process.exit(1); }, o.deadlineMs);
Promise.all(Array.from({ length: o.n }, one)).then(() => {
  clearTimeout(guard);
  clearInterval(sampler);
  out.rssMaxKb = Math.max(out.rssMaxKb, rssKb());
  out.rssEndKb = rssKb();
  console.log(JSON.stringify(out));
});
