-- Legacy HTTP conventions that the gRPC-JSON transcoder cannot express (docs/edge.md).
-- It must stand BEFORE the transcoder in http_filters, so that on the response path
-- it sees the transcoded HTTP reply.
-- Requests:  /index.php?s=<route> -> /yoshop<route> (003); form bodies -> JSON on the
--            documented POST/PATCH paths of 000, 001 and 002.
-- Responses: the server asks with initial-metadata headers, applied and removed here:
--   x-http-code:   the HTTP status to answer (201, 204, 403, 422 ...)
--   x-http-body:   the whole body (a legacy error envelope, ASCII JSON)
-- and, for an operation that declares unwrap (legacy_operations.lua), a success answers
-- only the value of that top-level field (a bare array).
--            Envoy's own refusals (text/plain) on a family's path -> that family's
--            envelope; gRPC and Envoy headers removed.

-- The value of the top-level field `name`, which must be the first field. Byte codes, not
-- one-character strings: a page of orders is ~7 KB, and LuaJIT compiles string.byte.
local QUOTE, BACKSLASH, OPEN_SQUARE, CLOSE_SQUARE, OPEN_CURLY, CLOSE_CURLY = 34, 92, 91, 93, 123, 125
local function first_field_value(json, name)
  local key = '{"' .. name .. '":'
  if json:sub(1, #key) ~= key then
    return nil
  end
  local start = #key + 1
  local byte = string.byte
  local depth, in_string, escaped = 0, false, false
  for i = start, #json do
    local c = byte(json, i)
    if in_string then
      if escaped then
        escaped = false
      elseif c == BACKSLASH then
        escaped = true
      elseif c == QUOTE then
        in_string = false
      end
    elseif c == QUOTE then
      in_string = true
    elseif c == OPEN_SQUARE or c == OPEN_CURLY then
      depth = depth + 1
    elseif c == CLOSE_SQUARE or c == CLOSE_CURLY then
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
  headers:replace("content-type", content_type)
  headers:replace("content-length", tostring(#bytes))
  local meta = handle:streamInfo():dynamicMetadata():get("vipay.legacy")
  if meta and meta.head then
    return -- the answer to HEAD has headers only: a body would be read as the next answer
  end
  -- body(true): a headers-only answer (a trailers-only gRPC error) gets a body too,
  -- instead of a content-length that nothing follows.
  handle:body(true):setBytes(bytes)
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


-- ---------------------------------------------------------------------------
-- Which family's envelope each path gets, and where a form body is accepted: declared
-- once on each RPC (protos/vipay/legacy/v1/options.proto) and generated into this table
-- by `make protos`. Relative to Envoy's working directory, the repository (server/platform/envoy.py).
-- Payment notification paths have no envelope: providers read the status and body the
-- server chose.
local DECLARED = dofile("gateway/legacy_operations.lua")
local EXACT, TEMPLATED = {}, {} -- path -> its operations; operations on templated paths
for _, op in ipairs(DECLARED.operations) do
  if op.path ~= nil then
    EXACT[op.path] = EXACT[op.path] or {}
    table.insert(EXACT[op.path], op)
  else
    table.insert(TEMPLATED, op)
  end
end

-- The operations declared on a path (any method): exact paths first.
local function operations_at(base)
  local found = EXACT[base]
  if found ~= nil then
    return found
  end
  found = {}
  for _, op in ipairs(TEMPLATED) do
    if base:match(op.pattern) then
      found[#found + 1] = op
    end
  end
  return found
end

-- The family's envelope name ("000".."004") for a path, or nil.
local function family_of(base)
  local ops = operations_at(base)
  if #ops > 0 then
    return ops[1].envelope
  end
  for _, family in ipairs(DECLARED.prefixes) do
    if base:sub(1, #family.prefix) == family.prefix then
      return family.envelope
    end
  end
  return nil
end

local function json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

-- Envoy's refusal texts name proto types and echo the client's input; what reaches the
-- client is a short description of the field at fault, or nothing.
local TYPE_WORDS = {
  INT32 = "a 32-bit integer", INT64 = "an integer", UINT32 = "a non-negative integer",
  UINT64 = "a non-negative integer", DOUBLE = "a number", FLOAT = "a number", BOOL = "true or false",
  STRING = "a string", MESSAGE = "an object", ENUM = "one of the allowed values",
}

-- (field or nil, description, summary) for the first line of an Envoy refusal.
local function describe_refusal(text, status)
  local line = (text:match("^[^\n]*") or ""):sub(1, 500)
  if status == 400 then
    local unknown = line:match('^Could not find field "([%w_%.%-]+)"')
    if unknown ~= nil then
      return unknown, "The " .. unknown .. " parameter is not allowed.", "The given data was invalid."
    end
    local field, rest = line:match("^([%a_][%w_%.]*): (.*)$")
    if field ~= nil then
      local kind = rest:match("for type TYPE_(%u+%d*)")
      local words = kind and TYPE_WORDS[kind] or "valid"
      return field, "The " .. field .. " must be " .. words .. ".", "The given data was invalid."
    end
    -- Malformed JSON: the parser's own words, unless they name our types.
    if line ~= "" and not line:find("vipay.", 1, true) then
      return nil, nil, line:sub(1, 200)
    end
    return nil, nil, "The request body is not valid JSON of the expected shape."
  end
  local names = {
    [404] = "Not Found", [405] = "Method Not Allowed", [413] = "Payload Too Large",
    [415] = "Unsupported Media Type", [431] = "Request Header Fields Too Large",
    [503] = "Service Unavailable", [504] = "Gateway Timeout",
  }
  return nil, nil, names[status] or (status >= 500 and "Server Error" or "Bad Request")
end

-- family -> function(status, field, description, summary) -> http status, body.
-- 001 answers 422 for bad input (ThinkSNS); the others answer bad input with HTTP 200
-- and the code in the body, as their own errors do; other statuses are kept.
local ENVELOPES = {
  ["001"] = function(status, field, description, summary)
    local errors = "{}"
    if field ~= nil then
      errors = "{" .. json_string(field) .. ":[" .. json_string(description) .. "]}"
    end
    return (status == 400 and 422 or status), '{"message":' .. json_string(summary) .. ',"errors":' .. errors .. "}"
  end,
  ["000"] = function(status, field, description, summary)
    return (status == 400 and 200 or status),
      '{"c":' .. status .. ',"m":' .. json_string(description or summary) .. ',"d":null}'
  end,
  ["002"] = function(status, field, description, summary)
    local data = "null"
    if field ~= nil then
      data = '{"errors":{' .. json_string(field) .. ":[" .. json_string(description) .. "]}}"
    end
    return (status == 400 and 200 or status), '{"message":' .. json_string(description or summary)
      .. ',"success":false,"code":' .. status .. ',"data":' .. data .. "}"
  end,
  ["003"] = function(status, field, description, summary)
    return (status == 400 and 200 or status),
      '{"status":500,"message":' .. json_string(description or summary) .. ',"data":[]}'
  end,
  ["004"] = function(status, field, description, summary)
    return (status == 400 and 200 or status),
      '{"status":' .. status .. ',"message":' .. json_string(description or summary) .. ',"data":null}'
  end,
}

-- ---------------------------------------------------------------------------
-- application/x-www-form-urlencoded bodies on the JSON POST/PATCH paths declaring form_body
-- become a JSON object of strings: proto3 JSON accepts "3" for an int32 field, so
-- `quantity=3` and {"quantity": 3} get the same answer, and a bad value the same 422.
local function form_path(method, base)
  for _, op in ipairs(operations_at(base)) do
    if op.form and op.method == method then
      return true
    end
  end
  return false
end

local function form_to_json(form)
  local order, values = {}, {}
  for pair in form:gmatch("[^&]+") do
    local key, value = pair:match("^([^=]*)=?(.*)$")
    key = url_decode(key)
    if key ~= "" then
      if values[key] == nil then
        order[#order + 1] = key
      end
      values[key] = url_decode(value) -- the last one wins, as in PHP
    end
  end
  local parts = {}
  for _, key in ipairs(order) do
    parts[#parts + 1] = json_string(key) .. ":" .. json_string(values[key])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The field whose value alone a success answers (the operation's declared unwrap; the
-- server no longer says so in a response header, which cost it a separate metadata send).
local function unwrap_field(method, base)
  if method == "HEAD" then
    method = "GET" -- the same answer's headers
  end
  for _, op in ipairs(operations_at(base)) do
    if op.unwrap ~= nil and op.method == method then
      return op.unwrap
    end
  end
  return nil
end

local function convert_form(handle, headers, method, base)
  local content_type = (headers:get("content-type") or ""):lower()
  if content_type:sub(1, 33) ~= "application/x-www-form-urlencoded" or not form_path(method, base) then
    return
  end
  local body = handle:body() -- the whole body (bounded by the listener's buffer limit: 413)
  local fresh = handle:headers() -- earlier header handles are stale after body()
  fresh:replace("content-type", "application/json")
  if body ~= nil then -- no body at all: an empty message, as for JSON
    local json = form_to_json(body:getBytes(0, body:length()))
    fresh:replace("content-length", tostring(#json))
    body:setBytes(json)
  end
end

-- The public door serves the documented HTTP paths only (README, docs/edge.md):
-- api-docs 000-004, /ping, /api/v2/vip/membership, the payment, refund and App Store
-- notification paths. The transcoder answers 404 for a wrong verb or an unknown
-- path below these prefixes.
local PUBLIC_PATHS = {
  ["/ping"] = true, ["/api/v2/bootstrappers"] = true, ["/api/recharge"] = true, ["/index.php"] = true,
}
local PUBLIC_PREFIXES = { "/api/v2/vip/", "/charge/", "/api/recharge/", "/v1/openapi/", "/api/refunds/" }

-- Reads that are the same for every anonymous caller: the edge may cache them (envoy.yaml).
local CATALOGS = {
  ["/api/v2/vip/configs"] = true, ["/api/v2/bootstrappers"] = true, ["/charge/index"] = true, ["/api/recharge"] = true,
}

local function public_path(base)
  if PUBLIC_PATHS[base] then
    return true
  end
  for _, prefix in ipairs(PUBLIC_PREFIXES) do
    if base:sub(1, #prefix) == prefix then
      return true
    end
  end
  return false
end

-- gRPC's own request headers are the transcoder's to set: a client's grpc-timeout,
-- grpc-encoding, te or binary (-bin) metadata would reach the gRPC server, which fails
-- the call before our code runs (issue 18).
local function strip_grpc_headers(headers)
  local names = {}
  for name, _ in pairs(headers) do
    local lower = name:lower()
    if lower:sub(1, 5) == "grpc-" or lower == "te" or lower:sub(-4) == "-bin" then
      names[#names + 1] = name
    end
  end
  for _, name in ipairs(names) do
    headers:remove(name)
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  -- Envoy's local_reply_config envelopes only the refusals this filter never saw.
  handle:streamInfo():dynamicMetadata():set("vipay.legacy", "seen", true)
  local credentialed = headers:get("authorization") ~= nil or headers:get("access-token") ~= nil
  if credentialed then
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "credentialed", true)
  end
  if headers:get(":method") == "HEAD" then
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "head", true)
  end
  local path = headers:get(":path")
  if path == nil then
    return
  end
  -- Raw gRPC (and gRPC-Web) belongs to the internal door: GRPC_HOST:GRPC_PORT.
  local content_type = (headers:get("content-type") or ""):lower()
  if content_type:sub(1, 16) == "application/grpc" then
    -- Envoy dresses a local reply to a gRPC request as a gRPC answer (HTTP 200 and
    -- grpc-status); envoy_on_response turns it back into this plain 415.
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "refused_grpc", true)
    handle:respond({ [":status"] = "415", ["content-type"] = "text/plain" }, "gRPC is not served on this port\n")
    return
  end
  if not public_path(path:match("^[^?]*")) then
    handle:respond({ [":status"] = "404", ["content-type"] = "text/plain" }, "Not Found\n")
    return
  end
  strip_grpc_headers(headers)
  if path:sub(1, 10) == "/index.php" then
    local rewritten = yoshop_path(path)
    if rewritten ~= nil then
      headers:replace(":path", rewritten)
      path = rewritten
    end
  end
  local base = path:match("^[^?]*")
  if CATALOGS[base] and headers:get(":method") == "GET" and not credentialed then
    -- The same answer whatever the query (catalogs take no parameter) or host: one edge
    -- cache entry per catalog, which clients cannot multiply.
    headers:replace(":path", base)
    headers:replace(":authority", "catalog")
  end
  local family = family_of(base)
  if family ~= nil then
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "family", family)
    convert_form(handle, headers, headers:get(":method"), base)
  end
  local unwrap = unwrap_field(headers:get(":method"), base)
  if unwrap ~= nil then
    handle:streamInfo():dynamicMetadata():set("vipay.legacy", "unwrap", unwrap)
  end
end

-- ---------------------------------------------------------------------------
-- Responses.
local INTERNAL_HEADERS = {
  "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding", "grpc-encoding",
  "x-envoy-upstream-service-time", "x-envoy-decorator-operation",
}
-- A legacy body the server sends in a header: longer than this is not passed on (the
-- server bounds it too; this keeps a runaway header from reaching clients or logs).
local MAX_HTTP_BODY = 8192

local function family(handle)
  local meta = handle:streamInfo():dynamicMetadata():get("vipay.legacy")
  return meta and meta.family
end

-- A text/plain refusal by Envoy itself (transcoder, router, buffer limits) on a family path.
local function envelope_local_reply(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  local status = tonumber(headers:get(":status") or "")
  if status == nil or status < 400 or content_type:sub(1, 10) ~= "text/plain" then
    return
  end
  if status == 503 then
    -- Shed (circuit breaker overflow) or no healthy server: come back in a second.
    headers:replace("retry-after", "1")
  end
  local render = ENVELOPES[family(handle)]
  if render == nil then
    return
  end
  local text = handle:body() and handle:body():getBytes(0, handle:body():length()) or ""
  local code, body = render(status, describe_refusal(text, status))
  handle:headers():replace(":status", tostring(code))
  replace_body(handle, body, "application/json")
end

-- grpc-status -> HTTP, for a gRPC answer that reached an HTTP client untranscoded.
local GRPC_TO_HTTP = { ["3"] = "400", ["5"] = "404", ["7"] = "403", ["8"] = "429", ["14"] = "503", ["16"] = "401" }

function envoy_on_response(handle)
  local headers = handle:headers()
  local meta = handle:streamInfo():dynamicMetadata():get("vipay.legacy")
  if meta and meta.refused_grpc then
    -- Envoy dressed it as a headers-only gRPC answer: the plain 415 again, with its text.
    headers:replace(":status", "415")
    replace_body(handle, "gRPC is not served on this port\n", "text/plain")
  elseif (headers:get("content-type") or ""):sub(1, 16) == "application/grpc" then
    -- A gRPC error the transcoder left as is (trailers-only, e.g. the server failed
    -- before our interceptor ran): never an HTTP 200 with an empty body.
    local grpc_status = headers:get("grpc-status") or "13"
    local status = GRPC_TO_HTTP[grpc_status] or "500"
    local summary
    if not (meta and meta.seen) then
      status, summary = "400", "Bad Request" -- refused by Envoy before any filter ran ('#' in the path)
    end
    headers:replace(":status", status)
    if family(handle) == nil then
      -- No envelope on this path: a short text, never a bodyless answer.
      summary = summary or select(3, describe_refusal("", tonumber(status)))
      replace_body(handle, summary .. "\n", "text/plain")
    else
      headers:replace("content-type", "text/plain") -- the family's envelope below
    end
  end
  for _, name in ipairs(INTERNAL_HEADERS) do
    headers:remove(name)
  end
  if meta and meta.credentialed and headers:get("cache-control") == nil then
    headers:replace("cache-control", "private, no-store") -- a caller's own answer: no shared cache keeps it
  end
  if headers:get("access-control-allow-origin") ~= nil and (headers:get("cache-control") or ""):sub(1, 8) == "max-age=" then
    -- A cacheable catalog with CORS headers (added after the edge cache): they depend on the Origin.
    headers:replace("vary", "Origin")
  end
  local code = headers:get("x-http-code")
  local body = headers:get("x-http-body")
  local unwrap = nil
  if meta and meta.unwrap and code == nil and body == nil and headers:get(":status") == "200"
      and (headers:get("content-type") or ""):sub(1, 16) == "application/json" then
    unwrap = meta.unwrap -- a transcoded success of an operation that declares unwrap
  end
  if code == nil and body == nil and unwrap == nil then
    envelope_local_reply(handle)
    return
  end
  headers:remove("x-http-code")
  headers:remove("x-http-body")
  if code ~= nil and not code:match("^[1-5]%d%d$") then
    code = "500"
  end
  if body ~= nil and #body > MAX_HTTP_BODY then
    -- Only errors carry a body here. Families that answer errors with HTTP 200 get their
    -- generic bad-input code inside (004: 4001, OPENAPI_INVALID_PARAMS), the others keep
    -- the status; the message no longer echoes what made it so long.
    local fam = family(handle) or "001"
    local status = tonumber(code or "500")
    local inner = status
    if status < 400 then
      inner = fam == "004" and 4001 or 400
    end
    local _, replacement = ENVELOPES[fam](inner, nil, nil,
      status >= 500 and "Server Error" or "The given data was invalid.")
    body = replacement
  end
  if code ~= nil then
    headers:replace(":status", code)
  end
  if code == "204" then
    headers:remove("content-length")
    headers:remove("content-type")
    local body = handle:body()
    if body ~= nil then
      body:setBytes("")
    end
  elseif body ~= nil then
    replace_body(handle, body, "application/json")
  elseif unwrap ~= nil and handle:body() ~= nil then
    local whole = handle:body():getBytes(0, handle:body():length())
    local value = first_field_value(whole, unwrap)
    if value ~= nil then
      replace_body(handle, value, "application/json")
    end
  end
end
