-- wrk script: requests rotate over tenants (x-tenant) and keys, for raw
-- throughput with several namespaces live at once; counts answers by status.
-- Usage: wrk -s mixed.lua ... -- key1,key2 tenant1,tenant2
local keys, tenants = {}, {}
local n = 0
local statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function split(s)
  local out = {}
  for part in string.gmatch(s or "", "[^,]+") do table.insert(out, part) end
  return out
end

function init(args)
  keys = split(args[1])
  tenants = split(args[2] or "bench,team-a,team-b")
end

function request()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json", ["x-tenant"] = tenants[(n % #tenants) + 1] }
  if #keys > 0 then
    headers["Authorization"] = "Bearer " .. keys[(n % #keys) + 1]
  end
  local body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the load test."}]}'
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("mixed tenants: %d requests, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
