// slow_next.js PORT DELAY_MS — for test_serve_idle.sh: on one connection to
// jobrelay serve on 127.0.0.1:PORT, sends GET /healthz and reads its answer;
// then, with DELAY_MS > 0, sends a second GET /healthz one byte every
// DELAY_MS ms from right after the first answer; with DELAY_MS 0 sends
// nothing more. Waits for the server to close the connection (60 s at most,
// else exit 1) and prints one JSON line: {first: status of the first answer,
// status: status of what came after it (0: nothing, a silent close), ms:
// from the first answer to the close, sent: bytes of the second request sent}.
'use strict';
const net = require('net');

const [port, delay] = [Number(process.argv[2]), Number(process.argv[3])];
const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
const s = net.connect(port, '127.0.0.1');
let got = '';
let first = 0;
let t0 = 0;
let sent = 0;
let timer = null;
const guard = setTimeout(() => { console.error('FAIL: the server kept the connection 60 s'); process.exit(1); }, 60000);

const drip = () => {
  if (s.destroyed || sent >= req.length) return;
  s.write(req[sent++]);
  timer = setTimeout(drip, delay);
};
s.on('connect', () => s.write(req));
s.on('data', (d) => {
  got += d.toString('latin1');
  const end = got.indexOf('\r\n\r\n');
  if (!first && end >= 0) {
    first = Number((got.match(/^HTTP\/1\.1 (\d{3})/) || [])[1] || -1);
    const len = Number((got.match(/\r\ncontent-length: *(\d+)/i) || [])[1] || 0);
    got = got.slice(end + 4 + len);
    t0 = Date.now();
    if (delay > 0) drip();
  }
});
s.on('error', () => {});
s.on('close', () => {
  clearTimeout(timer);
  clearTimeout(guard);
  const m = got.match(/^HTTP\/1\.1 (\d{3})/);
  console.log(JSON.stringify({ first, status: m ? Number(m[1]) : 0, ms: Date.now() - t0, sent }));
});
