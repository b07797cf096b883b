-- wrk script: a small non-streaming chat completion, optionally with an API key.
-- Usage: wrk -s chat.lua ... -- [api-key]
local key = nil

function init(args)
  key = args[1]
end

function request()
  local headers = { ["Content-Type"] = "application/json", ["x-tenant"] = "bench" }
  if key ~= nil and key ~= "" then
    headers["Authorization"] = "Bearer " .. key
  end
  local body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load test."}]}'
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end
