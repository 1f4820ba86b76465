-- Legacy HTTP conventions that the gRPC-JSON transcoder cannot express.
-- The server asks for them with initial-metadata headers; this filter applies
-- them and removes the headers. It must stand BEFORE the transcoder in
-- http_filters, so that on the response path it sees the transcoded HTTP reply.
--   x-http-code:   the HTTP status to answer (201, 204, 403, 422 ...)
--   x-http-body:   the whole body (a legacy error envelope, ASCII JSON)
--   x-json-unwrap: answer only the value of this top-level field (a bare array)

-- The value of the top-level field `name`, which must be the first field.
local function first_field_value(json, name)
  local key = '{"' .. name .. '":'
  if json:sub(1, #key) ~= key then
    return nil
  end
  local start = #key + 1
  local depth, in_string, escaped = 0, false, false
  for i = start, #json do
    local c = json:sub(i, i)
    if in_string then
      if escaped then
        escaped = false
      elseif c == "\\" then
        escaped = true
      elseif c == '"' then
        in_string = false
      end
    elseif c == '"' then
      in_string = true
    elseif c == "[" or c == "{" then
      depth = depth + 1
    elseif c == "]" or c == "}" then
      depth = depth - 1
      if depth == 0 then
        return json:sub(start, i)
      end
    end
  end
  return nil
end

local function replace_body(handle, bytes, content_type)
  local headers = handle:headers()
  headers:replace("content-length", tostring(#bytes))
  headers:replace("content-type", content_type)
  handle:body():setBytes(bytes)
end

-- YoShop-style routes (api-docs/003) put the route in the query:
--   /index.php?s=/api/recharge/center&client=H5
-- The transcoder matches on the path only, so the request path is rewritten here,
-- before it, to /yoshop<s>?<the other parameters>: /yoshop/api/recharge/center?client=H5.
-- Every further s= route only needs an RPC bound to /yoshop<route>.
local function url_decode(text)
  text = text:gsub("+", " ")
  return (text:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

local function yoshop_path(path)
  local base, query = path:match("^([^?]*)%?(.*)$")
  if base ~= "/index.php" then
    return nil
  end
  local route, rest = nil, {}
  for pair in query:gmatch("[^&]+") do
    local key, value = pair:match("^([^=]*)=?(.*)$")
    if key == "s" then
      route = url_decode(value)
    else
      rest[#rest + 1] = pair
    end
  end
  if route == nil then
    return nil
  end
  if route:sub(1, 1) ~= "/" then
    route = "/" .. route
  end
  -- Letters, digits, / _ - only: nothing that could climb out of /yoshop.
  if not route:match("^[%w/_%-]+$") or route:find("//", 1, true) then
    return nil
  end
  local rewritten = "/yoshop" .. route
  if #rest > 0 then
    rewritten = rewritten .. "?" .. table.concat(rest, "&")
  end
  return rewritten
end

-- Envoy's own 400 replies (malformed JSON, a value of the wrong type, an unknown
-- query parameter) are text/plain. On the recharge families' paths they are
-- answered in that family's error envelope, HTTP 200, like every other error of
-- theirs (server/recharge/envelopes.py, docs/recharge.md).
-- The payment notification paths are left alone: providers read the status.
local RECHARGE_002 = {
  ["/api/recharge"] = true,
  ["/api/recharge/order"] = true,
  ["/api/recharge/history"] = true,
  ["/api/recharge/captcha"] = true,
}

local function json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

local BAD_REQUEST_ENVELOPES = {
  ["000"] = function(message) return '{"c":400,"m":' .. json_string(message) .. ',"d":null}' end,
  ["002"] = function(message)
    return '{"message":' .. json_string(message) .. ',"success":false,"code":400,"data":null}'
  end,
  ["003"] = function(message) return '{"status":500,"message":' .. json_string(message) .. ',"data":[]}' end,
}

local function recharge_family(path)
  local base = path:match("^[^?]*")
  if base:sub(1, 8) == "/charge/" then
    return "000"
  elseif RECHARGE_002[base] then
    return "002"
  elseif base:sub(1, 8) == "/yoshop/" then
    return "003"
  end
  return nil
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path")
  if path ~= nil and path:sub(1, 10) == "/index.php" then
    local rewritten = yoshop_path(path)
    if rewritten ~= nil then
      headers:replace(":path", rewritten)
      path = rewritten
    end
  end
  local family = path and recharge_family(path)
  if family ~= nil then
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "family", family)
  end
end

-- A text/plain 400 from Envoy itself on a recharge family path -> its envelope.
local function envelope_bad_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  if headers:get(":status") ~= "400" or content_type:sub(1, 10) ~= "text/plain" then
    return
  end
  local meta = handle:streamInfo():dynamicMetadata():get("vipay.legacy")
  local render = meta and BAD_REQUEST_ENVELOPES[meta.family]
  if render == nil then
    return
  end
  -- body() waits for the whole body, after which earlier header handles are stale.
  local text = handle:body():getBytes(0, handle:body():length())
  handle:headers():replace(":status", "200")
  replace_body(handle, render(text:match("^[^\n]*")), "application/json")
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local code = headers:get("x-http-code")
  local body = headers:get("x-http-body")
  local unwrap = headers:get("x-json-unwrap")
  if code == nil and body == nil and unwrap == nil then
    envelope_bad_request(handle)
    return
  end
  headers:remove("x-http-code")
  headers:remove("x-http-body")
  headers:remove("x-json-unwrap")
  if code ~= nil then
    headers:replace(":status", code)
  end
  if code == "204" then
    headers:remove("content-length")
    headers:remove("content-type")
    handle:body():setBytes("")
  elseif body ~= nil then
    replace_body(handle, body, "application/json")
  elseif unwrap ~= nil then
    local whole = handle:body():getBytes(0, handle:body():length())
    local value = first_field_value(whole, unwrap)
    if value ~= nil then
      replace_body(handle, value, "application/json")
    end
  end
end
