// check_records.js RECORD_FILE SCRIPT — loads the fake's JSONL records as
// `recs` (RunJob only as `runs`) and evaluates SCRIPT, which calls
// expect(cond, what). Exits 1 on the first failed expectation.
'use strict';
const fs = require('fs');
const [file, script] = process.argv.slice(2);
const recs = fs.existsSync(file)
  ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  : [];
const runs = recs.filter((r) => r.method === 'RunJob');
const env = (r) => Object.fromEntries(
  ((r.request.overrides || {}).containerOverrides || [{}])[0].env?.map((e) => [e.name, e.value]) || []);
function expect(cond, what) {
  if (!cond) {
    console.error('FAIL: ' + what);
    console.error(JSON.stringify(runs.slice(0, 5), null, 1));
    process.exit(1);
  }
}
eval(script);
