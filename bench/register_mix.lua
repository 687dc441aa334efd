-- The register mix of quality.md for wrk: register a user, register it again (the
-- periodic check-in), unregister it. Each wrk thread cycles through its own users in
-- rounds of `span` users, so a user's next request is sent `span` requests after its
-- previous one, long after that one was answered as long as span exceeds the
-- connections of a thread: the three steps of one user never race.
-- Arguments: product license_id(or "") span pause_ms tag [bearer token]

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local product = args[1] or "bench"
  local license_id = args[2] or ""
  span = tonumber(args[3] or "200")
  pause = tonumber(args[4] or "0")
  local tag = args[5] or ""
  n = 0
  errors = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local token = args[6] or ""
  if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
  local id_part = ""
  if license_id ~= "" then id_part = ',"license_id":' .. license_id end
  prefix = '{"product":"' .. product .. '"' .. id_part .. ',"user":"' .. tag .. 't' .. id .. '-'
end

local paths = {"/api/v4/register", "/api/v4/register", "/api/v4/unregister"}

function request()
  local step = math.floor(n / span) % 3
  local user = n % span
  n = n + 1
  local body = prefix .. user .. '","os_hostname":"bench-host","ip_local":"10.0.0.1"}'
  return wrk.format(nil, paths[step + 1], nil, body)
end

function delay()
  return pause
end

function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local errs = 0
  for _, thread in ipairs(threads) do
    errs = errs + thread:get("errors")
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d socket_errors=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, errs, socket_errors,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
