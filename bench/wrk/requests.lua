-- One wrk script for every workload: the requests come from a file written by the bench runner.
--
-- Usage: wrk ... -s bench/wrk/requests.lua -- <requests file>
-- Each line of the file is one request, tab-separated:
--   METHOD <tab> PATH <tab> HEADERS <tab> BODY
-- where HEADERS is "Name: value" pairs joined by "|" (e.g. a bearer token and a content type)
-- and BODY may be empty. Connections take the requests in turn, so a file with one line per
-- user spreads the load over every user (POST with a bearer token and a JSON body, a form
-- login, a GET with a bearer token). A header whose value is "{fresh}" gets a value never sent
-- before on every request (a fresh Idempotency-Key): random per thread, then a counter.
--
-- With a second argument "once" (wrk ... -- <requests file> once), each thread starts at the
-- first request and stops once it has had as many answers as the file has lines: with one
-- thread, every line is sent (a few at the end twice, as connections are still busy). It then
-- prints "BENCH_ONCE_DONE": wrk itself waits out --duration unless interrupted (SIGINT), and
-- reports as usual when it is.
--
-- done() prints one line, "BENCH_JSON {...}", with the latency percentiles, the request count,
-- and the errors, counting every response outside 2xx (wrk itself only counts >= 400).

local FRESH = "{fresh}"
local requests = {}
local next_index = 1
local fresh_prefix = nil
local fresh_count = 0
local non2xx = 0
local statuses = {}
local threads = {}
local once = false
local answered = 0

local function split(text, sep)
  local parts = {}
  local start = 1
  while true do
    local i = string.find(text, sep, start, true)
    if not i then
      table.insert(parts, string.sub(text, start))
      return parts
    end
    table.insert(parts, string.sub(text, start, i - 1))
    start = i + #sep
  end
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the requests file")
  for line in file:lines() do
    if #line > 0 then
      local fields = split(line, "\t")
      local headers = {}
      if fields[3] ~= nil and #fields[3] > 0 then
        for _, pair in ipairs(split(fields[3], "|")) do
          local name, value = string.match(pair, "^([^:]+):%s*(.*)$")
          headers[name] = value
        end
      end
      local body = fields[4]
      if body ~= nil and #body == 0 then
        body = nil
      end
      local fresh = nil
      for name, value in pairs(headers) do
        if value == FRESH then
          fresh = name
        end
      end
      if fresh ~= nil then
        -- Formatted per request, with the fresh value.
        table.insert(requests, {method = fields[1], path = fields[2], headers = headers,
                                body = body, fresh = fresh})
      else
        table.insert(requests, wrk.format(fields[1], fields[2], headers, body))
      end
    end
  end
  file:close()
  assert(#requests > 0, "the requests file is empty")
  local random = assert(io.open("/dev/urandom", "rb"))
  fresh_prefix = string.gsub(random:read(8), ".", function(c)
    return string.format("%02x", string.byte(c))
  end) .. "-"
  random:close()
  once = args[2] == "once"
  if once then
    next_index = 0
  else
    -- Threads start at different places so they do not all use the same user at once.
    next_index = (math.random(#requests) - 1)
  end
end

function request()
  next_index = next_index % #requests + 1
  local chosen = requests[next_index]
  if type(chosen) == "string" then
    return chosen
  end
  fresh_count = fresh_count + 1
  chosen.headers[chosen.fresh] = fresh_prefix .. fresh_count
  return wrk.format(chosen.method, chosen.path, chosen.headers, chosen.body)
end

function response(status, headers, body)
  answered = answered + 1
  if once and answered == #requests then
    io.write("BENCH_ONCE_DONE\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, _)
  local total_non2xx = 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    local seen = thread:get("statuses") or {}
    for status, count in pairs(seen) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(by_status) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"non2xx":%d},' ..
    '"non2xx_by_status":{%s},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, total_non2xx,
    table.concat(parts, ","),
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0),
    latency.max, latency.mean
  ))
end
