#!/usr/bin/env bash
# Push authentication (docs/auth.md) end to end: `jobrelay serve` with an
# auth: section, over real HTTP on loopback, dispatching to the Run API fake.
# RSA keys are made in the test (Node's crypto), the JWKS is a file, or is
# served by a small Node HTTP server on 127.0.0.1 for jwks_url; tokens are
# signed in the test. Each token of the JWT matrix gets the status docs/auth.md names,
# only the events with a passing token reach the Run API, and no part of any
# token shows up in jobrelay's log. Then auth.mode cloud_run_iam: tokens as
# Cloud Run IAM hands them on (signature replaced by its marker) pass there
# and get 401 in the default mode; X-Serverless-Authorization is preferred
# to Authorization; two audiences; the refusal matrix again in that mode.
. "$(dirname "$0")/serve_lib.sh"

AUD="https://jobrelay-abc-ew.a.run.app/"
AUD2="https://jobrelay-eventarc.example/"
EMAIL="eventarc-trigger@acme-prod.iam.gserviceaccount.com"
export WORK

# Keys, the JWKS (k1 only) and the tokens, as "name status header-value" lines.
node -e '
const crypto = require("crypto"), fs = require("fs");
const [work, aud, email, aud2] = process.argv.slice(1);
const k1 = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const k2 = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = (k, kid) => Object.assign(k.publicKey.export({ format: "jwk" }), { kid, alg: "RS256", use: "sig" });
fs.writeFileSync(work + "/jwks.json", JSON.stringify({ keys: [jwk(k1, "k1")] }));
fs.writeFileSync(work + "/jwks2.json", JSON.stringify({ keys: [jwk(k1, "k1"), jwk(k2, "k2")] }));
const b64 = (s) => Buffer.from(s).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const claims = (o) => Object.assign({ iss: "https://accounts.google.com", aud, email,
  email_verified: true, iat: now - 10, exp: now + 3590, sub: "1", azp: "1" }, o);
const rs = (key, hdr, c) => {
  const si = b64(JSON.stringify(hdr)) + "." + b64(JSON.stringify(c));
  return si + "." + crypto.sign("sha256", Buffer.from(si), key.privateKey).toString("base64url");
};
const H1 = { alg: "RS256", kid: "k1", typ: "JWT" };
const tok = (c, hdr, key) => "Bearer " + rs(key || k1, hdr || H1, claims(c));
// as Cloud Run IAM hands a token it verified on to the container
const strip = (c, hdr) => "Bearer " + b64(JSON.stringify(hdr || H1)) + "." + b64(JSON.stringify(claims(c))) + ".SIGNATURE_REMOVED_BY_GOOGLE";
const pem = k1.publicKey.export({ type: "spki", format: "pem" });
const hsSi = b64(JSON.stringify({ alg: "HS256", kid: "k1" })) + "." + b64(JSON.stringify(claims({})));
const cases = [
  ["valid", 204, tok({})],
  ["issuer_without_scheme", 204, tok({ iss: "accounts.google.com" })],
  ["expired", 401, tok({ iat: now - 7200, exp: now - 3600 })],
  ["not_yet_valid", 401, tok({ iat: now + 3600, exp: now + 7200 })],
  ["wrong_audience", 403, tok({ aud: "https://other-service.a.run.app/" })],
  ["wrong_issuer", 401, tok({ iss: "https://evil.example" })],
  ["wrong_email", 403, tok({ email: "attacker@evil.example" })],
  ["email_not_verified", 403, tok({ email_verified: false })],
  ["unknown_kid", 401, tok({}, { alg: "RS256", kid: "k2" }, k2)],
  ["alg_none", 401, "Bearer " + b64(JSON.stringify({ alg: "none", kid: "k1" })) + "." + b64(JSON.stringify(claims({}))) + "."],
  ["hs256_public_key_secret", 401, "Bearer " + hsSi + "." + crypto.createHmac("sha256", pem).update(hsSi).digest("base64url")],
  ["bad_signature", 401, tok({}, H1, k2)],
  ["malformed", 401, "Bearer not.a-jwt"],
  ["not_bearer", 401, "Basic dXNlcjpwYXNz"],
  ["missing", 401, ""],
  ["stripped_by_cloud_run", 401, strip({})],
  ["lifetime_over_an_hour", 401, tok({ iat: now - 10, exp: now + 7200 })],
  // X-Serverless-Authorization (the 4th element) is checked, not Authorization
  ["xsa_preferred", 204, "Bearer not.a-jwt", tok({})],
  ["xsa_wrong_email", 403, tok({}), tok({ email: "attacker@evil.example" })],
];
fs.writeFileSync(work + "/cases.json", JSON.stringify(cases));
// auth.mode cloud_run_iam, audience [aud, aud2]
const iam = [
  ["iam-valid", 204, strip({})],
  ["iam-second_audience", 204, strip({ aud: aud2 })],
  ["iam-audience_array", 204, strip({ aud: ["https://other/", aud2] })],
  ["iam-issuer_without_scheme", 204, strip({ iss: "accounts.google.com" })],
  ["iam-xsa_preferred", 204, "Bearer not.a-jwt", strip({})],
  ["iam-xsa_wrong_email", 403, strip({}), strip({ email: "attacker@evil.example" })],
  ["iam-xsa_signed", 401, strip({}), tok({})],
  ["iam-signed_not_stripped", 401, tok({})],
  ["iam-empty_signature", 401, strip({}).replace(/SIGNATURE_REMOVED_BY_GOOGLE$/, "")],
  ["iam-expired", 401, strip({ iat: now - 7200, exp: now - 3600 })],
  ["iam-not_yet_valid", 401, strip({ iat: now + 3600, exp: now + 7200 })],
  ["iam-lifetime_over_an_hour", 401, strip({ iat: now - 10, exp: now + 7200 })],
  ["iam-wrong_audience", 403, strip({ aud: "https://other-service.a.run.app/" })],
  ["iam-wrong_issuer", 401, strip({ iss: "https://evil.example" })],
  ["iam-wrong_email", 403, strip({ email: "attacker@evil.example" })],
  ["iam-email_not_verified", 403, strip({ email_verified: false })],
  ["iam-alg_none", 401, strip({}, { alg: "none", kid: "k1" })],
  ["iam-alg_hs256", 401, strip({}, { alg: "HS256", kid: "k1" })],
  ["iam-malformed", 401, "Bearer not.a-jwt"],
  ["iam-malformed_payload", 401, "Bearer " + b64(JSON.stringify(H1)) + ".bm90IGpzb24.SIGNATURE_REMOVED_BY_GOOGLE"],
  ["iam-not_bearer", 401, "Basic dXNlcjpwYXNz"],
  ["iam-missing", 401, ""],
];
fs.writeFileSync(work + "/cases_iam.json", JSON.stringify(iam));
' "$WORK" "$AUD" "$EMAIL" "$AUD2"

write_config() { # write_config FILE LINE [AUDIENCE]
	cat >"$1" <<YAML
project: demo-project
region: europe-west2
call_timeout: 5s
auth:
  audience: ${3:-"$AUD"}
  allowed_emails: [ "$EMAIL" ]
  $2
routes:
  - name: authed
    match: { type: test.auth }
    job: authed
    overrides:
      env: { CASE: "{{id}}" }
YAML
}
write_config "$WORK/file.yaml" "jwks_file: $WORK/jwks.json"

start_fake
JOBRELAY_CONFIG="$WORK/file.yaml" start_serve

# matrix FILE PREFIX: posts every case of FILE ([name, status, authorization,
# x-serverless-authorization]) and checks its status, and that exactly the
# passing cases (ids starting with PREFIX) were dispatched.
matrix() {
	CASES="$1" PREFIX="$2" client '
const cases = JSON.parse(fs.readFileSync(process.env.CASES, "utf8"));
for (const [name, want, authz, xsa] of cases) {
  const h = { "ce-specversion": "1.0", "ce-id": name, "ce-source": "//test/auth",
              "ce-type": "test.auth", "content-type": "application/json" };
  if (authz) h.authorization = authz;
  if (xsa) h["x-serverless-authorization"] = xsa;
  const r = await post("/", h, "{}");
  expect(r.status === want, name + ": status " + r.status + ", expected " + want + " (" + r.body + ")");
}
const passed = cases.filter((c) => c[1] === 204).map((c) => c[0]).sort();
const ran = records().map((r) => env(r).CASE).filter((c) => c.startsWith(process.env.PREFIX)).sort();
expect(JSON.stringify(ran) === JSON.stringify(passed),
       "dispatched " + JSON.stringify(ran) + ", expected only " + JSON.stringify(passed));
'
}

# no_token_in_log FILE: the refusals of FILE's cases were logged, and no 16
# bytes of any of their tokens appear in the log.
no_token_in_log() {
	local want rejected
	want=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).filter((c) => c[1] !== 204).length)' "$1")
	rejected=$(grep -c '"msgid":"AUTH-REJECTED"' "$SERVE_LOG" || true)
	assert_eq "$rejected" "$want" "AUTH-REJECTED lines"
	node -e '
const fs = require("fs");
const [cases, log] = [JSON.parse(fs.readFileSync(process.argv[1], "utf8")), fs.readFileSync(process.argv[2], "utf8")];
for (const [name, , ...values] of cases) {
  for (const v of values) {
    const token = v.replace(/^(Bearer|Basic) /, "");
    for (const part of token.split(".").filter((p) => p.length >= 8 && p !== "SIGNATURE_REMOVED_BY_GOOGLE")) {
      for (let i = 0; i + 16 <= part.length; i += 16) {
        if (log.includes(part.slice(i, i + 16))) {
          console.error("FAIL: the log holds part of the " + name + " token"); process.exit(1);
        }
      }
    }
  }
}
' "$1" "$SERVE_LOG"
}

echo "== the JWT matrix against a jwks_file"
matrix "$WORK/cases.json" ""

echo "== the log says why, and holds nothing of any token"
no_token_in_log "$WORK/cases.json"
grep -q '"reason":"token expired"' "$SERVE_LOG" || fail "no AUTH-REJECTED line with reason 'token expired'"
grep -q '"reason":"email not allowed"' "$SERVE_LOG" || fail "no AUTH-REJECTED line with reason 'email not allowed'"
grep -q '"reason":"token signature removed by Cloud Run IAM (see auth.mode)"' "$SERVE_LOG" ||
	fail "no AUTH-REJECTED line for the token stripped by Cloud Run"
grep -q '"reason":"token lifetime over one hour"' "$SERVE_LOG" ||
	fail "no AUTH-REJECTED line with reason 'token lifetime over one hour'"
grep -q '"header":"x-serverless-authorization"' "$SERVE_LOG" ||
	fail "no AUTH-REJECTED line naming X-Serverless-Authorization"
alive "the JWT matrix"
stop_serve
assert_eq "$SERVE_RC" 0 "serve exit status after SIGTERM"

echo "== jwks_url on a loopback HTTP server: fetched at start, then refreshed for an unknown kid"
mkfifo "$WORK/jwks.out"
node -e '
const http = require("http"), fs = require("fs");
const [work] = process.argv.slice(1);
let n = 0;
const srv = http.createServer((req, res) => {
  n++;
  // from the second request on, the rotated set (k1 and k2)
  const body = fs.readFileSync(work + (n === 1 ? "/jwks.json" : "/jwks2.json"));
  fs.writeFileSync(work + "/jwks.requests", String(n));
  res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=3600" });
  res.end(body);
});
srv.listen(0, "127.0.0.1", () => console.log("LISTENING " + srv.address().port));
' "$WORK" >"$WORK/jwks.out" &
JWKS_PID=$!
SERVE_PIDS+=("$JWKS_PID")
exec 6<"$WORK/jwks.out"
JWKS_PORT=
while read -r -u 6 line; do
	case "$line" in LISTENING\ *) JWKS_PORT=${line#LISTENING }; break ;; esac
done
exec 6<&-
[ -n "$JWKS_PORT" ] || fail "the JWKS server did not start"
write_config "$WORK/url.yaml" "jwks_url: http://127.0.0.1:$JWKS_PORT/oauth2/v3/certs"
JOBRELAY_CONFIG="$WORK/url.yaml" start_serve
assert_eq "$(cat "$WORK/jwks.requests")" 1 "JWKS fetches at start"
grep -q '"msgid":"JWKS-LOADED"' "$SERVE_LOG" || fail "no JWKS-LOADED line"
URL_CASES='
const cases = Object.fromEntries(JSON.parse(fs.readFileSync(process.env.WORK + "/cases.json", "utf8")).map((c) => [c[0], c[2]]));
const send = (id, authz) => post("/", { "ce-specversion": "1.0", "ce-id": id, "ce-source": "//test/auth",
  "ce-type": "test.auth", "content-type": "application/json", authorization: authz }, "{}");
'
client "$URL_CASES"'
let r = await send("url-valid", cases.valid);
expect(r.status === 204, "valid token with jwks_url: " + r.status);
// k2 is unknown: 401, and a refresh starts that brings it
r = await send("url-k2-first", cases.unknown_kid);
expect(r.status === 401, "unknown kid before the refresh: " + r.status);
'
# the refresh is done when jobrelay logs its second JWKS-LOADED line
wait_lines "$SERVE_LOG" '"msgid":"JWKS-LOADED"' 2
client "$URL_CASES"'
// the retry (Pub/Sub push retries on its own) passes now
const r = await send("url-k2-retry", cases.unknown_kid);
expect(r.status === 204, "unknown kid after the refresh: " + r.status);
const ran = records().map((x) => env(x).CASE).filter((c) => c.startsWith("url-")).sort();
expect(JSON.stringify(ran) === JSON.stringify(["url-k2-retry", "url-valid"]), "dispatched " + JSON.stringify(ran));
'
assert_eq "$(cat "$WORK/jwks.requests")" 2 "JWKS fetches after one unknown kid"
stop_serve
assert_eq "$SERVE_RC" 0 "serve exit status after SIGTERM"

echo "== auth.mode cloud_run_iam, two audiences: tokens as Cloud Run IAM hands them on"
unset K_SERVICE
write_config "$WORK/iam.yaml" "mode: cloud_run_iam" "[ \"$AUD\", \"$AUD2\" ]"
JOBRELAY_CONFIG="$WORK/iam.yaml" start_serve
matrix "$WORK/cases_iam.json" "iam-"
no_token_in_log "$WORK/cases_iam.json"
grep -q '"reason":"token signature was not removed by Cloud Run IAM"' "$SERVE_LOG" ||
	fail "no AUTH-REJECTED line for a signed token in mode cloud_run_iam"
grep -q '"msgid":"AUTH-MODE"' "$SERVE_LOG" || fail "no AUTH-MODE line (not on Cloud Run: a warning)"
if grep -q '"msgid":"JWKS-' "$SERVE_LOG"; then
	fail "mode cloud_run_iam loaded or fetched a JWKS"
fi
alive "the cloud_run_iam matrix"
stop_serve
assert_eq "$SERVE_RC" 0 "serve exit status after SIGTERM"
echo "PASS"
