#!/usr/bin/env node
// front.js — a TCP front on loopback for tests: forwards every connection to --target, and on
// the `blackhole` command stops forwarding on the connections open at that moment, in both
// directions, without closing them: what a NAT or load balancer that dropped a connection
// does to its two ends. Connections made later are forwarded normally. See README.md.
//
//   node front.js --target 127.0.0.1:8085 [--port 0] [--host 127.0.0.1]
//
// stdout: `LISTENING <port>` once it accepts connections, then one line per command on
// stdin: `OK <json>` or `ERR <text>`. EOF on stdin, SIGTERM or SIGINT stop it.
'use strict';

const net = require('net');
const readline = require('readline');

function usage(msg) {
  process.stderr.write(`front: ${msg}\nusage: node front.js --target HOST:PORT [--port N] [--host H]\n`);
  process.exit(2);
}

function isLoopback(h) {
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const opts = { host: '127.0.0.1', port: 0, target: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const v = argv[i + 1];
  if (v === undefined) usage(`${argv[i]} needs a value`);
  if (argv[i] === '--host') opts.host = v;
  else if (argv[i] === '--port') opts.port = Number(v);
  else if (argv[i] === '--target') opts.target = v;
  else usage(`unknown flag ${argv[i]}`);
}
if (!opts.target) usage('--target is required');
const m = /^(.*):(\d+)$/.exec(opts.target);
if (!m) usage(`--target ${opts.target}: expected host:port`);
const target = { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
// it never connects anywhere but loopback, and listens on loopback only
if (!isLoopback(opts.host)) usage(`--host ${opts.host} is not a loopback address`);
if (!isLoopback(target.host)) usage(`--target ${opts.target} is not a loopback address`);

const stats = { connections: 0, open: 0, blackholed: 0, c2s: 0, s2c: 0, dropped: 0 };
const pairs = new Set();

// pipe forwards a's bytes to b unless the pair is blackholed; then they are read and dropped
// (the sender's kernel sees them acknowledged, and nothing reaches the other end).
function pipe(pair, a, b, counter) {
  a.on('data', (buf) => {
    if (pair.blackholed) {
      stats.dropped += buf.length;
      return;
    }
    stats[counter] += buf.length;
    if (b.destroyed) return;
    if (!b.write(buf)) {
      a.pause();
      b.once('drain', () => a.resume());
    }
  });
  // an end or error is passed on while forwarding; a blackholed pair's other side hears nothing
  // and stays open, except that when the client goes, the server's side is closed too (the
  // server would find out by itself, later; the test does not wait for that)
  const gone = () => {
    if (!pair.blackholed || a === pair.client) b.destroy();
    a.destroy();
  };
  a.on('end', gone);
  a.on('error', gone);
  a.on('close', () => {
    if (pair.client.destroyed && pair.server.destroyed && pairs.delete(pair)) stats.open--;
  });
}

const server = net.createServer({ pauseOnConnect: true }, (client) => {
  const upstream = net.connect(target.port, target.host);
  const pair = { client, server: upstream, blackholed: false };
  pairs.add(pair);
  stats.connections++;
  stats.open++;
  pipe(pair, client, upstream, 'c2s');
  pipe(pair, upstream, client, 's2c');
  upstream.on('connect', () => client.resume());
});

function command(line) {
  const a = line.trim().split(/\s+/);
  switch (a[0]) {
    case 'blackhole': {
      let n = 0;
      for (const p of pairs) {
        if (!p.blackholed) {
          p.blackholed = true;
          n++;
        }
      }
      stats.blackholed += n;
      return { blackholed: n };
    }
    case 'stats':
      return stats;
    default:
      throw new Error(`unknown command ${JSON.stringify(a[0])} (blackhole, stats, quit)`);
  }
}

function stop() {
  for (const p of pairs) {
    p.client.destroy();
    p.server.destroy();
  }
  server.close();
  process.exit(0);
}

server.on('error', (e) => {
  process.stderr.write(`front: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    if (line.trim() === 'quit') {
      process.stdout.write('OK {}\n', stop);
      return;
    }
    try {
      process.stdout.write(`OK ${JSON.stringify(command(line))}\n`);
    } catch (e) {
      process.stdout.write(`ERR ${e.message}\n`);
    }
  });
  rl.on('close', stop);
});
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
