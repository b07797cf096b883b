-- wrk script: a streaming chat completion (wrk reads the whole SSE body, so
-- its latency is the stream's duration; ttft.py and k6/stream.js measure
-- the first token). Usage: wrk -s stream.lua ... -- [api-key]
local key = nil

function init(args)
  key = args[1]
end

function request()
  local headers = { ["Content-Type"] = "application/json", ["x-tenant"] = "bench" }
  if key ~= nil and key ~= "" then
    headers["Authorization"] = "Bearer " .. key
  end
  local body = '{"model":"gpt-4o-mini","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"Say hello to the load test."}]}'
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "data: [DONE]", 1, true) then
    error("stream did not end cleanly: status " .. status)
  end
end
