#!/usr/bin/env node
/*
 * gen_events.js — deterministic NDJSON of Cloud Storage "object finalized"
 * CloudEvents, as Eventarc delivers them in structured mode, for benchmarks.
 *
 *   node bench/gen_events.js [--full] COUNT [SEED] > events.ndjson
 *
 * The data is the google-cloudevents StorageObjectData shape
 * (tests/data/google-cloudevents/testdata/google/events/cloud/storage/v1/
 * StorageObjectData-simple.json),
 * with values drawn from a seeded PRNG, so the same COUNT, SEED and shape
 * always give the same bytes.
 *
 * Two shapes (SIZE=full in the environment is the same as --full):
 *   default  15 of the sample's 17 data fields: without selfLink and
 *            mediaLink, the two API URLs, which only repeat the bucket, the
 *            (URL-encoded) name and the generation. Lines are 749-880
 *            bytes, 805 on average: the ~800-byte event of the benchmark's
 *            issue. Every field a route of bench/routes20.yaml conditions on
 *            is there (its two templates that read the links are optional,
 *            {{...?}}), and the token count stays close to a full event's.
 *   --full   all 17 fields, as Cloud Storage itself sends them; about 1,052
 *            bytes a line.
 * Both shapes draw the same random numbers, so event i differs between them
 * only by the two links, and routes the same way.
 *
 * Buckets, folders and extensions are mixed so that bench/routes20.yaml
 * routes some events to one route, a few to two, and leaves the rest
 * unrouted. About 1 name in 40 has a space, a quote or non-ASCII letters
 * (escaped in the URLs, and a JSON escape in the name), as real uploads do.
 */
'use strict';

const args = process.argv.slice(2);
const full = args[0] === '--full' ? (args.shift(), true) : process.env.SIZE === 'full';
const count = Number(args[0]);
const seed = Number(args[1] || 1);
if (!Number.isInteger(count) || count < 0 || !Number.isInteger(seed) || args.length > 2) {
  process.stderr.write('usage: node gen_events.js [--full] COUNT [SEED] > events.ndjson\n');
  process.exit(2);
}

/* mulberry32: small, fast and fully deterministic. */
let state = seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const chars = (alpha, n) => {
  let s = '';
  for (let i = 0; i < n; i++) s += alpha[Math.floor(rand() * alpha.length)];
  return s;
};
const b64 = (bytes) => {
  const n = Math.ceil(bytes / 3) * 4;
  const pad = (3 - (bytes % 3)) % 3;
  return chars(B64, n - pad) + '='.repeat(pad);
};

/* weight, bucket, folders, [extension, content type] */
const BUCKETS = [
  [30, 'acme-uploads', ['in', 'in/partner-a', 'in/partner-b'],
    [['.csv', 'text/csv'], ['.csv', 'text/csv'], ['.json', 'application/json'],
     ['.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet']]],
  [15, 'acme-lake-raw', ['ev/dt=2024-05-01', 'ev/dt=2024-05-02', 'clicks'],
    [['.parquet', 'application/octet-stream'], ['.avro', 'application/avro'],
     ['.json.gz', 'application/gzip']]],
  [15, 'acme-media', ['photos', 'photos/2024', 'video'],
    [['.jpg', 'image/jpeg'], ['.png', 'image/png'], ['.mp4', 'video/mp4'],
     ['.heic', 'image/heic']]],
  [15, 'acme-app-logs', ['logs/api', 'logs/worker', 'logs/batch'],
    [['.log', 'text/plain'], ['.log.gz', 'application/gzip']]],
  [10, 'acme-backups', ['db/daily', 'db/hourly'],
    [['.sql.gz', 'application/gzip'], ['.tar.zst', 'application/zstd']]],
  [10, 'acme-web', ['js', 'css', 'img'],
    [['.js', 'text/javascript'], ['.css', 'text/css'], ['.svg', 'image/svg+xml']]],
  [5, 'acme-models', ['ranker', 'embedder'],
    [['.onnx', 'application/octet-stream'], ['.json', 'application/json']]],
];
const TOTAL_WEIGHT = BUCKETS.reduce((s, b) => s + b[0], 0);
const STEMS = ['orders', 'sales', 'stock', 'export', 'part-17', 'IMG_4821', 'session', 'report',
  'app', 'main', 'events'];
const ODD = ['Überblick 2024', 'facture n°12', 'report "final"', 'données été', 'Q3 plan (v2)'];
const CLASSES = ['STANDARD', 'STANDARD', 'STANDARD', 'NEARLINE', 'COLDLINE'];

function pickBucket() {
  let r = rand() * TOTAL_WEIGHT;
  for (const b of BUCKETS) {
    if ((r -= b[0]) < 0) return b;
  }
  return BUCKETS[0];
}

const pad = (n, w) => String(n).padStart(w, '0');
const BASE_MS = Date.UTC(2024, 4, 1, 0, 0, 0);

function event(i) {
  const [, bucket, folders, kinds] = pickBucket();
  const [ext, ctype] = pick(kinds);
  const stem = rand() < 0.025 ? pick(ODD) : `${pick(STEMS)}-${chars(ALNUM, 4)}`;
  const name = `${pick(folders)}/${stem}${ext}`;
  const ms = BASE_MS + i * 37 + int(0, 36);
  const time = new Date(ms).toISOString();
  const generation = String(ms * 1000 + int(0, 999));
  const enc = encodeURIComponent(name);
  const id = String(9000000000000000 + i * 7919 + int(0, 7918));
  const data = {
    bucket,
    contentType: ctype,
    crc32c: b64(4),
    etag: b64(10),
    generation,
    id: `${bucket}/${name}/${generation}`,
    kind: 'storage#object',
    md5Hash: b64(16),
    mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${bucket}/o/${enc}?generation=${generation}&alt=media`,
    metageneration: '1',
    name,
    selfLink: `https://www.googleapis.com/storage/v1/b/${bucket}/o/${enc}`,
    size: String(int(200, 50000000)),
    storageClass: pick(CLASSES),
    timeCreated: time,
    timeStorageClassUpdated: time,
    updated: time,
  };
  if (!full) {
    delete data.mediaLink;
    delete data.selfLink;
  }
  return {
    specversion: '1.0',
    id,
    source: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
    type: 'google.cloud.storage.object.v1.finalized',
    subject: `objects/${name}`,
    time,
    datacontenttype: 'application/json',
    bucket,
    data,
  };
}

/* Write in large chunks; respect back-pressure so memory stays flat. */
const out = process.stdout;
let i = 0;
function write() {
  while (i < count) {
    let chunk = '';
    for (let k = 0; k < 2000 && i < count; k++, i++) chunk += JSON.stringify(event(i)) + '\n';
    if (!out.write(chunk)) {
      out.once('drain', write);
      return;
    }
  }
}
write();
