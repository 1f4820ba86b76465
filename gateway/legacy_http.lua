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

function envoy_on_response(handle)
  local headers = handle:headers()
  local code = headers:get("x-http-code")
  local body = headers:get("x-http-body")
  local unwrap = headers:get("x-json-unwrap")
  if code == nil and body == nil and unwrap == nil then
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
