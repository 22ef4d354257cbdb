-- wrk script: POST /mqtt/bindings with a new valid device ID per request and a
-- policy-compliant password. One wrk thread (-t1) keeps the counter unique.
local counter = 0
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer bench" }

request = function()
  counter = counter + 1
  local body = string.format(
    '{"deviceId":"imei:3599%011d","password":"Bench-Password-0123456789#x"}', counter)
  return wrk.format("POST", "/mqtt/bindings", headers, body)
end
