-- wrk script for the meshward bench.
-- * If BENCH_TOKEN_FILE is set, each request carries the next token of that
--   file (one per line) as "Authorization: Bearer <token>", cycling; requests
--   are pre-formatted in init() so the generator pays almost nothing per request.
-- * done() prints one line "WRKJSON {...}" that the harness parses, including
--   wrk's count of non-2xx/3xx responses (errors.status).
-- No response() callback: it would make wrk parse every body and could make
-- the single-core generator the bottleneck. Exact status codes are checked by
-- the pre-flight requests and by oha's status distribution.

local token_file = os.getenv("BENCH_TOKEN_FILE")
-- If BENCH_BODY_FILE is set, every request is a POST of that file's bytes
-- (Content-Type: BENCH_CONTENT_TYPE).
local body_file = os.getenv("BENCH_BODY_FILE")

if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
end

if token_file and token_file ~= "" then
  local reqs = {}
  local n = 0
  local i = 0

  function init(args)
    for line in io.lines(token_file) do
      if line ~= "" then
        n = n + 1
        reqs[n] = wrk.format(nil, nil, { ["Host"] = "bench", ["Authorization"] = "Bearer " .. line })
      end
    end
    i = 0
  end

  function request()
    i = i % n + 1
    return reqs[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"lat_p50_us":%d,"lat_p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
