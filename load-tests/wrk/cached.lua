-- wrk script: fixed-output chat requests (temperature 0) to the catalog
-- model `cached`, cycling over N distinct prompts (1 = the same request
-- every time). Usage: wrk -s cached.lua ... -- [N] [offset]
local n, offset, i = 1, 0, 0

function init(args)
  n = tonumber(args[1] or "1")
  offset = tonumber(args[2] or "0")
  i = math.random(0, n - 1)
end

function request()
  i = (i + 1) % n
  local body = string.format(
    '{"model":"cached","temperature":0,"max_tokens":16,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to load test %d."}]}',
    i + offset)
  return wrk.format("POST", "/v1/chat/completions", { ["Content-Type"] = "application/json" }, body)
end
