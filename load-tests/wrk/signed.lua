-- wrk script: the chat.lua request signed as an external client
-- (load-tests/external.yaml), each with the next line of a file written by
-- load-tests/sign_requests.py (`timestamp nonce signature`): a nonce is
-- accepted once, so the file must hold more lines than the run sends.
-- Usage: wrk -s signed.lua ... -- FILE
local lines = {}
local next_line = 0
local body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load test."}]}'

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
end

function request()
  next_line = next_line + 1
  local ts, nonce, sig = string.match(lines[next_line] or "", "(%S+) (%S+) (%S+)")
  local headers = {
    ["Content-Type"] = "application/json",
    ["x-tenant"] = "bench",
    ["x-sluice-key-id"] = "partner",
    ["x-sluice-timestamp"] = ts or "",
    ["x-sluice-nonce"] = nonce or "",
    ["x-sluice-signature"] = sig or "",
  }
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end
