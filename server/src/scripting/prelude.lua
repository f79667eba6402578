-- strand's Lua prelude: the `redis` library and the sandbox, run once when a
-- shard creates its Lua state. It receives the Rust helpers (`api`) and the
-- real globals table, and returns the runner (the top-level xpcall) and the
-- environment user scripts run in. Everything it uses later is captured in
-- locals here, so a script cannot change how the library behaves.

local api, G = ...

local type, error, tostring, tonumber, select, rawget, rawset, setmetatable, getmetatable =
  type, error, tostring, tonumber, select, rawget, rawset, setmetatable, getmetatable
local raw_pcall, raw_xpcall, raw_loadstring, setfenv = pcall, xpcall, loadstring, setfenv
local sbyte, ssub, sfind, sgsub = string.byte, string.sub, string.find, string.gsub
local concat = table.concat
local killed, where, errinfo = api.killed, api.where, api.errinfo

local READONLY = 'Attempt to modify a readonly table'

local function refuse()
  error(READONLY, 2)
end

-- A read-only view of `t`.
local function readonly(t)
  local proxy = setmetatable({}, { __index = t, __newindex = refuse, __metatable = {} })
  api.protect(proxy)
  return proxy
end

-- Redis's luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets ERR.
local function error_table(s)
  local code, msg = 'ERR', s
  if sbyte(s, 1) == 45 then
    local sp = sfind(s, ' ', 1, true)
    if sp then
      code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1)
    else
      msg = ssub(s, 2)
    end
  end
  msg = sgsub(sgsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return { err = code .. ' ' .. msg }
end

-- The redis library -------------------------------------------------------
-- call, pcall, sha1hex, log, setresp, set_repl and acl_check_cmd are Rust
-- functions (a Lua wrapper would lose the caller's line to tail calls).

local redis = api.redis

function redis.error_reply(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  if sbyte(e, 1) ~= 45 then
    e = '-' .. e
  end
  return error_table(e)
end

function redis.status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return { ok = s }
end

function redis.replicate_commands()
  return true
end

function redis.breakpoint()
  return false
end

function redis.debug() end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- math.random as Redis: its own rand48 generator, the same sequence on every
-- start (per shard in strand), reseeded only by math.randomseed.
rawset(math, 'random', api.random)
rawset(math, 'randomseed', api.randomseed)

-- The sandbox --------------------------------------------------------------

-- The environment scripts run in: reads fall through to the globals, writes fail.
local env = setmetatable({}, { __index = G, __newindex = refuse, __metatable = {} })
api.protect(env)
api.protect(G)

-- Errors raised by the Lua library come back as tables; pcall gives scripts
-- their message. A killed script cannot catch its own death.
local function after_pcall(ok, ...)
  if not ok then
    if killed() then
      error('Script killed by user with SCRIPT KILL...', 0)
    end
    local e = ...
    local t = type(e)
    if t == 'table' then
      local m = rawget(e, 'err')
      if type(m) == 'string' then
        return false, m
      end
    elseif t == 'userdata' then
      local m = errinfo(e)
      if m then
        return false, m
      end
    end
    return false, e
  end
  return true, ...
end

local function safe_pcall(...)
  return after_pcall(raw_pcall(...))
end

local function after_xpcall(ok, ...)
  if not ok and killed() then
    error('Script killed by user with SCRIPT KILL...', 0)
  end
  return ok, ...
end

-- An error raised by a Rust function, as Lua code raising it would have: a table or a string.
local function lua_error(e)
  if type(e) == 'userdata' then
    local m, plain = errinfo(e)
    if m then
      return plain and m or { err = m }
    end
  end
  return e
end

local function safe_xpcall(f, h)
  return after_xpcall(raw_xpcall(f, function(e)
    return h(lua_error(e))
  end))
end

local function safe_loadstring(s, name)
  if type(s) == 'string' and sbyte(s, 1) == 27 then
    return nil, 'loading binary chunks is not allowed'
  end
  local f, e = raw_loadstring(s, name)
  if f then
    setfenv(f, env)
  end
  return f, e
end

local function safe_load(fn, name)
  if type(fn) == 'string' then
    return safe_loadstring(fn, name)
  end
  local pieces = {}
  while true do
    local p = fn()
    if p == nil or p == '' then
      break
    end
    if type(p) ~= 'string' then
      return nil, 'reader function must return a string'
    end
    pieces[#pieces + 1] = p
  end
  return safe_loadstring(concat(pieces), name or '=(load)')
end

-- Redis's message handler: the error as a table with where it was raised.
local function handler(err)
  local source, line = where()
  err = lua_error(err)
  if type(err) == 'table' then
    local m = rawget(err, 'err')
    if type(m) == 'number' then
      m = tostring(m)
    end
    err = { err = m }
  else
    err = { err = 'ERR ' .. tostring(err) }
  end
  if line then
    err.source = source
    err.line = line
  end
  return err
end

for _, name in ipairs({
  'print', 'setfenv', 'getfenv', 'newproxy', 'module', 'require', 'dofile', 'loadfile',
  'package', 'debug', 'os', 'io',
}) do
  rawset(G, name, nil)
end

rawset(G, 'pcall', safe_pcall)
rawset(G, 'xpcall', safe_xpcall)
rawset(G, 'loadstring', safe_loadstring)
rawset(G, 'load', safe_load)
rawset(G, 'rawset', api.rawset)
rawset(G, 'setmetatable', api.setmetatable)
rawset(G, '__redis__err__handler', handler)
rawset(G, 'redis', readonly(redis))
for _, lib in ipairs({ 'bit', 'cjson', 'cmsgpack' }) do
  rawset(G, lib, api[lib])
end
for _, lib in ipairs({ 'string', 'table', 'math', 'coroutine', 'bit', 'cjson', 'cmsgpack' }) do
  rawset(G, lib, readonly(rawget(G, lib)))
end
rawset(G, '_G', env)
-- ('x'):upper() looks methods up through the read-only string library.
local string_meta = getmetatable('')
if string_meta then
  rawset(string_meta, '__index', rawget(G, 'string'))
end

setmetatable(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = refuse,
  __metatable = {},
})

local function run(f)
  return raw_xpcall(f, handler)
end

return run, env
