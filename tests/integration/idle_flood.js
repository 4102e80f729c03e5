// idle_flood.js PORT N — for test_serve_idle.sh: N clients connect to
// jobrelay serve on 127.0.0.1:PORT at once, each sends one GET /healthz and
// then stays connected, idle. Once every client has its answer (or was
// closed by the server), a new client sends GET /healthz and then a POST
// (a binary-mode CloudEvent of type test.ok, id "newcomer"), each on a new
// connection, while the N stay connected. Prints one JSON line:
// {n, ok: answers 200, closed: clients closed by the server, healthz: {status,
// ms}, post: {status, ms}}. Each step has a 60 s deadline (then exit 1).
'use strict';
const net = require('net');

const [port, n] = [Number(process.argv[2]), Number(process.argv[3])];
const deadline = setTimeout(() => { console.error('FAIL: idle_flood did not finish within 60 s'); process.exit(1); }, 60000);

// request: one request on a new connection; resolves {status, ms} at the answer's head
// (status 0 when the server closed first); keep: leave the connection open.
function request(text, keep) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let done = false;
    const finish = (status) => {
      if (done) return;
      done = true;
      resolve({ status, ms: Date.now() - t0, socket: s });
      if (!keep) s.destroy();
    };
    s.on('connect', () => s.write(text));
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = got.match(/^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n/);
      if (m) finish(Number(m[1]));
    });
    s.on('error', () => {});
    s.on('close', () => finish(0));
  });
}

(async () => {
  const idle = await Promise.all(Array.from({ length: n },
    () => request('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', true)));
  let closed = 0;
  for (const c of idle) {
    if (c.socket.destroyed || c.socket.readableEnded) closed++;
  }
  const healthz = await request('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', false);
  const post = await request('POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: newcomer\r\n' +
    'ce-source: s\r\nce-type: test.ok\r\nContent-Length: 2\r\n\r\nhi', false);
  const out = { n, ok: idle.filter((c) => c.status === 200).length, closed,
    healthz: { status: healthz.status, ms: healthz.ms }, post: { status: post.status, ms: post.ms } };
  for (const c of idle) c.socket.destroy();
  clearTimeout(deadline);
  console.log(JSON.stringify(out));
})();
