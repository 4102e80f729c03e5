#!/usr/bin/env node
'use strict';
// check_tokens.js GAUTH RUN PUBSUB SERVICE SUBJECT [USER_PROJECT]: every call the Run fake
// (RUN, its --record) and pstest (PUBSUB, its --record) saw carries
// `authorization: Bearer <token>` with a token gauth (GAUTH, its --record) issued by
// SERVICE (metadata, oauth2, ...) for SUBJECT; and x-goog-user-project = USER_PROJECT on
// every call when given, on none when empty. Prints a summary; exit 1 on the first problem.

const fs = require('fs');

const [gauthFile, runFile, pubsubFile, service, subject, userProject = ''] = process.argv.slice(2);
const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse) : []);
const problems = [];
const fail = (m) => problems.push(m);

const grants = read(gauthFile);
const ours = new Set(grants.filter((g) => g.token && g.service === service && g.subject === subject).map((g) => g.token));
const anyIssued = new Set(grants.filter((g) => g.token).map((g) => g.token));
if (!ours.size) fail(`gauth issued no ${service} token for ${subject}`);

const calls = read(runFile).map((r) => ({ peer: 'run', method: r.method, md: r.metadata || {} }))
  .concat(read(pubsubFile).map((r) => ({ peer: 'pubsub', method: r.method, md: r.metadata || {} })));
const need = { 'run RunJob': 3, 'pubsub /google.pubsub.v1.Publisher/Publish': 3,
  'pubsub /google.pubsub.v1.Publisher/GetTopic': 1, 'pubsub /google.pubsub.v1.Subscriber/StreamingPull': 1 };
const seen = {};
for (const c of calls) {
  const what = `${c.peer} ${c.method}`;
  seen[what] = (seen[what] || 0) + 1;
  const a = c.md.authorization;
  const m = /^Bearer (\S+)$/.exec(typeof a === 'string' ? a : '');
  if (!m) fail(`${what}: authorization ${JSON.stringify(a)}, not one Bearer token`);
  else if (!ours.has(m[1])) {
    fail(`${what}: a Bearer token gauth did not issue as ${service} for ${subject}` +
      (anyIssued.has(m[1]) ? ' (issued for other credentials)'
        : m[1].split('.').length === 3 ? ' (a self-signed JWT: no token endpoint was asked)'
          : ` (not issued by gauth: ${m[1].slice(0, 24)}...)`));
  }
  const up = c.md['x-goog-user-project'];
  if (userProject && up !== userProject) fail(`${what}: x-goog-user-project ${JSON.stringify(up)}, expected ${userProject}`);
  if (!userProject && up !== undefined) fail(`${what}: x-goog-user-project ${JSON.stringify(up)} without a quota project`);
}
for (const [what, n] of Object.entries(need)) {
  if ((seen[what] || 0) < n) fail(`${what}: ${seen[what] || 0} calls, expected at least ${n}`);
}

const uniq = [...new Set(problems)];
console.log(JSON.stringify({ service, subject, tokensIssued: ours.size, tokenRequests: grants.filter((g) => g.service === service).length, calls: seen }));
if (uniq.length) {
  for (const p of uniq.slice(0, 12)) console.error(`FAIL: ${p}`);
  if (uniq.length > 12) console.error(`FAIL: ... and ${uniq.length - 12} more`);
  process.exit(1);
}
