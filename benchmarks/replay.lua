-- wrk script shared by every scenario of benchmarks/run.py.
--
--   wrk ... -s benchmarks/replay.lua URL -- METHOD CLIENTS_FILE EXPECTED_STATUS MODE THREADS
--
-- CLIENTS_FILE has one line per simulated browser, tab-separated:
--   path <TAB> Cookie header value (may be empty) <TAB> urlencoded body (may be empty)
-- run.py writes it after obtaining real sessions (and tickets).
--
-- MODE "cycle": every thread sends the browsers' requests round robin, each
-- thread starting at a different place (the same browsers reload pages).
-- MODE "once": each browser sends one request only; thread k of THREADS takes
-- lines k, k + THREADS, ... If a thread runs out it starts again, and counts
-- the requests it had to repeat in "reused".
--
-- Only EXPECTED_STATUS counts as success. done() prints one line
-- "BENCH_JSON {...}" that run.py parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  method = args[1]
  expected = tonumber(args[3])
  mode = args[4] or "cycle"
  local nthreads = tonumber(args[5] or "1")
  requests_ = {}
  local line_number = 0
  for line in io.lines(args[2]) do
    if mode ~= "once" or line_number % nthreads == id then
      local path, cookie, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
      if path then
        local headers = {}
        if cookie ~= "" then headers["Cookie"] = cookie end
        if body == "" then
          body = nil
        else
          headers["Content-Type"] = "application/x-www-form-urlencoded"
        end
        table.insert(requests_, wrk.format(method, path, headers, body))
      end
    end
    line_number = line_number + 1
  end
  if #requests_ == 0 then
    error("no clients for thread " .. id .. " in " .. args[2])
  end
  if mode == "once" then
    index = 0
  else
    index = (id * 37) % #requests_
  end
  sent = 0
  reused = 0
  ok = 0
  unexpected = {}
end

function request()
  sent = sent + 1
  if mode == "once" and sent > #requests_ then
    reused = reused + 1
  end
  index = index % #requests_ + 1
  return requests_[index]
end

function response(status, headers, body)
  if status == expected then
    ok = ok + 1
  else
    local key = tostring(status)
    unexpected[key] = (unexpected[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local ok_total, reused_total = 0, 0
  local statuses = {}
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    reused_total = reused_total + thread:get("reused")
    for status, count in pairs(thread:get("unexpected")) do
      statuses[status] = (statuses[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(statuses) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  io.write("BENCH_JSON ", string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, "ok": %d, "reused": %d, ' ..
    '"unexpected": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p99_9": %d}}',
    summary.duration, summary.requests, summary.bytes, ok_total, reused_total,
    table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)), "\n")
end
