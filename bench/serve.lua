-- bench/serve.lua: wrk script for bench/serve.sh — POST / with a binary-mode
-- Cloud Storage "finalized" CloudEvent (ce-* headers, JSON data), the form
-- Eventarc delivers. WRK_DELAY_MS > 0 makes each connection wait that long
-- between its requests (a rate cap of connections * 1000 / delay per second).
wrk.method = "POST"
wrk.path = "/"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "1587627537231057"
wrk.headers["ce-source"] = "//storage.googleapis.com/projects/_/buckets/acme-uploads"
wrk.headers["ce-type"] = "google.cloud.storage.object.v1.finalized"
wrk.headers["ce-subject"] = "objects/in/2026-11-26/data.csv"
wrk.headers["ce-time"] = "2026-11-26T10:00:00.230Z"
wrk.headers["ce-bucket"] = "acme-uploads"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
wrk.body = '{"bucket":"acme-uploads","contentType":"text/csv","crc32c":"rTVTeQ==",' ..
	'"etag":"CNHZkbuF/ugCEAE=","generation":"1587627537231057",' ..
	'"id":"acme-uploads/in/2026-11-26/data.csv/1587627537231057",' ..
	'"kind":"storage#object","md5Hash":"kF8MuJ5+CTJxvyhHS1xzRg==","metageneration":"1",' ..
	'"name":"in/2026-11-26/data.csv","size":"352","storageClass":"STANDARD",' ..
	'"timeCreated":"2026-11-26T10:00:00.230Z","updated":"2026-11-26T10:00:00.230Z"}'

-- WRK_GET=1: GET /healthz instead (answered on the HTTP thread alone: the noise floor)
if os.getenv("WRK_GET") == "1" then
	wrk.method = "GET"
	wrk.path = "/healthz"
	wrk.body = nil
	wrk.headers = {}
end

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if delay_ms > 0 then
	function delay()
		return delay_ms
	end
end
