//! Lua scripting: the engine behind EVAL, EVALSHA and SCRIPT.
//!
//! Each shard has its own Lua 5.1 state ([`Engine`]), created by the first
//! script that runs there, with Redis's `redis` library and sandbox (see
//! `scripting/prelude.lua`): no `os`, `io`, `loadfile`, `dofile`, `require`;
//! globals are read-only and reading a missing one is an error;
//! `math.random` is Redis's rand48 generator. A script runs on the shard
//! that owns its keys (the dispatcher routes EVAL by its `numkeys` keys), so
//! `redis.call` runs command handlers directly, on the same [`Ctx`], and
//! refuses keys another shard owns. The whole script runs inside one
//! keyspace group: its writes reach the log as one atomic record. A script
//! whose KEYS live on several shards runs on a scratch shard holding copies
//! of them ([`crate::gather`]), and may touch only those keys.
//!
//! Compiled scripts are cached per shard by SHA-1; every body EVAL or SCRIPT
//! LOAD saw is also kept in [`crate::shard::Shared::script_bodies`], so
//! EVALSHA works on any shard (a shard that misses compiles it from there).
//!
//! A script past `busy-reply-threshold` marks its shard busy
//! ([`Running`]): the other shards answer BUSY for commands bound to it, and
//! SCRIPT KILL (from a connection on another shard) asks the count hook to
//! stop it, unless it already wrote.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod libs;

use mlua::{ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use crate::command::{self, err, flags, Ctx, Route};
use crate::reply::Reply;
use crate::shard::Shared;

/// Answer for a command bound to a shard whose script is past busy-reply-threshold.
pub const BUSY: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// EVALSHA of a script no shard has seen.
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
/// Answer for a script SHUTDOWN stopped (its writes are dropped).
pub const KILLED_BY_SHUTDOWN: &str = "ERR Script killed by SHUTDOWN; none of its writes were kept";
/// SCRIPT KILL with no busy script.
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
/// SCRIPT KILL of a script that already wrote.
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

const READONLY: &str = "Attempt to modify a readonly table";
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
const NON_LOCAL_KEY: &str = "ERR Script attempted to access a non local key in a cluster node: strand keeps each key on one shard; \
     pass every key the script uses in KEYS and give them a common {hash tag}";
const NOT_DECLARED: &str = "ERR Script attempted to access a key it did not pass in KEYS: its keys live on several shards, \
     so it may touch only those keys (or give them a common {hash tag})";
const RULE_ACROSS: &str = "CROSSSLOT a compaction rule joins two time series of one shard: give the keys a common {hash tag}";
const ALL_SHARDS: &str =
    "ERR This Redis command runs on every shard and cannot be called from a script when strand has more than one shard";
const NOT_ALLOWED: &str = "ERR This Redis command is not allowed from script";

/// Chunk name of the prelude (its frames are not the user's).
const PRELUDE: &str = "=strand_prelude";

/// Instructions between two looks at the clock (and at SCRIPT KILL).
const HOOK_EVERY: u32 = 10_000;
/// Nesting of Lua tables turned into a reply (cyclic tables stop here).
const MAX_DEPTH: usize = 1_000;

/// A shard's running script as the other shards see it (in [`Shared::scripts`]).
#[derive(Default, Debug)]
pub struct Running {
    /// Id of the script running now (0: none).
    pub run: AtomicU64,
    /// Set once the script has run past busy-reply-threshold.
    pub busy: AtomicBool,
    /// Whether the script called a write command (SCRIPT KILL then answers UNKILLABLE).
    pub wrote: AtomicBool,
    /// The run id SCRIPT KILL asked to stop.
    pub kill: AtomicU64,
}

/// Whether `shard` runs a script past busy-reply-threshold: commands for it are answered BUSY.
pub fn is_busy(shared: &Shared, shard: usize) -> bool {
    shared.scripts.get(shard).is_some_and(|r| r.busy.load(Ordering::Acquire))
}

/// SCRIPT KILL: asks every busy shard to stop its script.
pub fn kill(shared: &Shared) -> Reply {
    let busy: Vec<&Running> = shared.scripts.iter().filter(|r| r.busy.load(Ordering::Acquire)).collect();
    if busy.is_empty() {
        return Reply::error(NOTBUSY);
    }
    if busy.iter().any(|r| r.wrote.load(Ordering::Acquire)) {
        return Reply::error(UNKILLABLE);
    }
    for r in busy {
        r.kill.store(r.run.load(Ordering::Acquire), Ordering::Release);
    }
    Reply::Ok
}

/// SHA-1 of `body` as 40 lower-case hex digits.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// What the script being run shares with the hook and the helpers of the prelude.
struct RunState {
    shared: Arc<Shared>,
    shard: usize,
    /// When the running script started (None: idle).
    started: Cell<Option<Instant>>,
    threshold_ms: Cell<u64>,
    /// This run's id (see [`Running::run`]).
    run: Cell<u64>,
    busy: Cell<bool>,
    /// Set by the hook when SCRIPT KILL (or SHUTDOWN) stopped the script: the line it was on.
    killed_at: Cell<Option<i32>>,
    /// The script was stopped because the server shuts down: its writes are not logged.
    shutdown: Cell<bool>,
    /// SHA-1 of the running script, for the slow-script warning.
    sha: RefCell<String>,
    /// redis.setresp(3) was called.
    resp3: Cell<bool>,
    /// EVAL_RO, EVALSHA_RO or a `no-writes` shebang: write commands are refused.
    readonly: Cell<bool>,
    /// The shard was over its memory budget when the script started: DENYOOM commands are refused.
    oom: Cell<bool>,
    /// rand48 state for math.random.
    rand: Cell<u64>,
}

impl RunState {
    fn slot(&self) -> Option<&Running> {
        self.shared.scripts.get(self.shard)
    }
}

/// A compiled script.
#[derive(Clone)]
struct Script {
    f: Function,
    /// `#!lua flags=no-writes`.
    no_writes: bool,
}

/// One shard's Lua state and script cache.
pub struct Engine {
    lua: Lua,
    scripts: HashMap<String, Script>,
    /// The redis library (`call` and `pcall` are set for each run).
    redis: Table,
    /// The real globals table (KEYS and ARGV are set there).
    globals: Table,
    /// The read-only environment scripts run in.
    env: Table,
    /// `xpcall(f, __redis__err__handler)`.
    runner: Function,
    state: Rc<RunState>,
    runs: u64,
}

/// The start state of Redis's rand48 (`x = {0x330E, 0xABCD, 0x1234}`).
const RAND48_START: u64 = 0x1234_ABCD_330E;

fn lrand48(state: &Cell<u64>) -> i64 {
    let x = state.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & ((1 << 48) - 1);
    state.set(x);
    (x >> 17) as i64
}

/// An error a Rust function of the redis library raises into Lua.
#[derive(Debug)]
enum ScriptError {
    /// Raised as Redis raises `{err = "CODE message"}` (redis.call's failures).
    Table(String),
    /// Raised as a Lua string, like the errors of Lua's own library.
    Plain(String),
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::Table(m) | ScriptError::Plain(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ScriptError {}

/// A `{err = text}` error for Lua.
fn raise(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ScriptError::Table(text.into()))
}

/// A plain-string error for Lua.
fn plain(text: &str) -> mlua::Error {
    mlua::Error::external(ScriptError::Plain(text.to_string()))
}

/// `luaL_checktype(L, n, LUA_TTABLE)`.
fn table_arg(lua: &Lua, v: Value, n: usize) -> mlua::Result<Table> {
    match v {
        Value::Table(t) => Ok(t),
        other => Err(plain(&format!(
            "{}bad argument #{n} to '{}' (table expected, got {})",
            caller_where(lua),
            called_as(lua),
            type_name(&other)
        ))),
    }
}

/// Lua's name of a value's type.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        _ => "userdata",
    }
}

/// The name the running C function was called by, as `luaL_argerror` shows it.
fn called_as(lua: &Lua) -> String {
    lua.inspect_stack(0).and_then(|d| d.names().name.map(|n| n.into_owned())).unwrap_or_else(|| "?".into())
}

/// The [`ScriptError`] inside an error that crossed Lua.
fn script_error_of(e: &mlua::Error) -> Option<&ScriptError> {
    match e {
        mlua::Error::CallbackError { cause, .. } => script_error_of(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ScriptError>(),
        _ => None,
    }
}

/// The innermost cause of an error, without callback tracebacks.
fn innermost(e: &mlua::Error) -> &mlua::Error {
    match e {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        other => other,
    }
}

/// `luaL_where(L, 1)`: "source:line: " of the Lua function calling the running C function.
fn caller_where(lua: &Lua) -> String {
    match lua.inspect_stack(1) {
        Some(d) if d.curr_line() > 0 => format!("{}:{}: ", d.source().short_src.unwrap_or_default(), d.curr_line()),
        _ => String::new(),
    }
}

/// `luaL_checkint`: a number (or numeric string), truncated to a C int.
fn check_int(lua: &Lua, v: Option<&Value>, n: usize) -> mlua::Result<i32> {
    let number = match v {
        Some(v) => lua.coerce_number(v.clone())?,
        None => None,
    };
    match number {
        Some(x) => Ok(x as i64 as i32),
        None => {
            let got = v.map_or("no value", type_name);
            let msg = format!("{}bad argument #{n} to '{}' (number expected, got {got})", caller_where(lua), called_as(lua));
            Err(mlua::Error::external(ScriptError::Plain(msg)))
        }
    }
}

/// Redis's `math.random`: Lua 5.1's, over rand48.
fn math_random(lua: &Lua, rand: &Cell<u64>, args: MultiValue) -> mlua::Result<f64> {
    const MAX: i64 = i32::MAX as i64;
    let r = (lrand48(rand) % MAX) as f64 / MAX as f64;
    let empty = |n: usize| plain(&format!("{}bad argument #{n} to '{}' (interval is empty)", caller_where(lua), called_as(lua)));
    match args.len() {
        0 => Ok(r),
        1 => {
            let u = check_int(lua, args.front(), 1)?;
            if u < 1 {
                return Err(empty(1));
            }
            Ok((r * u as f64).floor() + 1.0)
        }
        2 => {
            let l = check_int(lua, args.front(), 1)?;
            let u = check_int(lua, args.get(1), 2)?;
            if l > u {
                return Err(empty(2));
            }
            Ok((r * (u as f64 - l as f64 + 1.0)).floor() + l as f64)
        }
        _ => Err(mlua::Error::external(ScriptError::Plain(format!("{}wrong number of arguments", caller_where(lua))))),
    }
}

fn lua_err(e: mlua::Error) -> Reply {
    Reply::error(format!("ERR Lua engine: {e}"))
}

/// The rand48 state of `engine`'s `math.random` (the start state before the first script).
pub(crate) fn rand_state(engine: Option<&Engine>) -> u64 {
    engine.map_or(RAND48_START, |e| e.state.rand.get())
}

/// Puts `engine`'s `math.random` back to `state` (a void run of a script over several shards drew nothing).
pub(crate) fn set_rand_state(engine: Option<&Engine>, state: u64) {
    if let Some(e) = engine {
        e.state.rand.set(state);
    }
}

/// Whether `reply` says SHUTDOWN or SCRIPT KILL stopped the script.
pub(crate) fn stopped(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e == KILLED_BY_SHUTDOWN || e == KILLED)
}

impl Engine {
    /// A fresh Lua state with the redis library and the sandbox.
    pub fn new(shared: Arc<Shared>, shard: usize) -> Result<Engine, Reply> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default()).map_err(lua_err)?;
        let state = Rc::new(RunState {
            shared,
            shard,
            started: Cell::new(None),
            threshold_ms: Cell::new(5000),
            run: Cell::new(0),
            busy: Cell::new(false),
            killed_at: Cell::new(None),
            shutdown: Cell::new(false),
            sha: RefCell::new(String::new()),
            resp3: Cell::new(false),
            readonly: Cell::new(false),
            oom: Cell::new(false),
            rand: Cell::new(RAND48_START),
        });
        let api = Self::api(&lua, &state).map_err(lua_err)?;
        let globals = lua.globals();
        let prelude = lua.load(include_str!("scripting/prelude.lua")).set_name(PRELUDE).set_mode(ChunkMode::Text);
        let (runner, env): (Function, Table) = prelude.call((api.clone(), globals.clone())).map_err(lua_err)?;
        let redis: Table = api.get("redis").map_err(lua_err)?;
        let hook_state = state.clone();
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |lua, _| hook(lua, &hook_state));
        Ok(Engine { lua, scripts: HashMap::new(), redis, globals, env, runner, state, runs: 0 })
    }

    /// The helpers of the prelude that live in Rust, and the Rust half of the redis library.
    fn api(lua: &Lua, state: &Rc<RunState>) -> mlua::Result<Table> {
        let api = lua.create_table()?;
        let st = state.clone();
        api.set("killed", lua.create_function(move |_, ()| Ok(st.killed_at.get().is_some()))?)?;
        api.set("where", lua.create_function(|lua, ()| Ok(raiser(lua).map_or((None, None), |(src, line)| (Some(src), Some(line)))))?)?;
        api.set(
            "errinfo",
            lua.create_function(|_, e: Value| {
                Ok(match &e {
                    Value::Error(e) => match script_error_of(e) {
                        Some(ScriptError::Table(m)) => (Some(m.clone()), false),
                        Some(ScriptError::Plain(m)) => (Some(m.clone()), true),
                        None => (Some(innermost(e).to_string()), true),
                    },
                    _ => (None, false),
                })
            })?,
        )?;
        let st = state.clone();
        api.set("random", lua.create_function(move |lua, args: MultiValue| math_random(lua, &st.rand, args))?)?;
        let st = state.clone();
        api.set(
            "randomseed",
            lua.create_function(move |lua, args: MultiValue| {
                let seed = check_int(lua, args.front(), 1)?;
                st.rand.set(((seed as u32 as u64) << 16) | 0x330E);
                Ok(())
            })?,
        )?;
        let protected: Rc<RefCell<Vec<Table>>> = Rc::default();
        let list = protected.clone();
        api.set(
            "protect",
            lua.create_function(move |_, t: Table| {
                list.borrow_mut().push(t);
                Ok(())
            })?,
        )?;
        let list = protected.clone();
        api.set(
            "rawset",
            lua.create_function(move |lua, (t, k, v): (Value, Value, Value)| {
                let t = table_arg(lua, t, 1)?;
                if list.borrow().contains(&t) {
                    return Err(plain(READONLY));
                }
                t.raw_set(k, v).map_err(|e| plain(&innermost(&e).to_string()))?;
                Ok(t)
            })?,
        )?;
        let list = protected;
        api.set(
            "setmetatable",
            lua.create_function(move |lua, (t, mt): (Value, Value)| {
                let t = table_arg(lua, t, 1)?;
                let mt = match mt {
                    Value::Nil => None,
                    Value::Table(mt) => Some(mt),
                    _ => return Err(plain(&format!("{}bad argument #2 to 'setmetatable' (nil or table expected)", caller_where(lua)))),
                };
                if list.borrow().contains(&t) {
                    return Err(plain(READONLY));
                }
                let locked = t.metatable().is_some_and(|m| !matches!(m.raw_get::<Value>("__metatable"), Ok(Value::Nil)));
                if locked {
                    return Err(plain(&format!("{}cannot change a protected metatable", caller_where(lua))));
                }
                t.set_metatable(mt);
                Ok(t)
            })?,
        )?;
        let redis = lua.create_table()?;
        redis.set(
            "sha1hex",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("ERR wrong number of arguments"));
                }
                let s = match args.front() {
                    Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => lua.coerce_string(v.clone())?,
                    _ => None,
                };
                Ok(s.map_or_else(|| sha1hex(b""), |s| sha1hex(&s.as_bytes())))
            })?,
        )?;
        let st = state.clone();
        redis.set(
            "log",
            lua.create_function(move |lua, args: MultiValue| {
                if args.len() < 2 {
                    return Err(raise("ERR redis.log() requires two arguments or more."));
                }
                let level = args.front().cloned().map(|v| lua.coerce_number(v)).transpose()?.flatten();
                let level = level.ok_or_else(|| raise("ERR First argument must be a number (log level)."))?;
                if !(0.0..=3.0).contains(&level) {
                    return Err(raise("ERR Invalid debug level."));
                }
                let mut parts = Vec::new();
                for v in args.iter().skip(1) {
                    if let Value::String(_) | Value::Integer(_) | Value::Number(_) = v {
                        if let Some(s) = lua.coerce_string(v.clone())? {
                            parts.push(s.to_string_lossy());
                        }
                    }
                }
                let msg = parts.join(" ");
                let sha = st.sha.borrow();
                match level as i64 {
                    0 | 1 => tracing::debug!(script = %sha, "{msg}"),
                    2 => tracing::info!(script = %sha, "{msg}"),
                    _ => tracing::warn!(script = %sha, "{msg}"),
                }
                Ok(())
            })?,
        )?;
        let st = state.clone();
        redis.set(
            "setresp",
            lua.create_function(move |lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("ERR redis.setresp() requires one argument."));
                }
                match args.front().cloned().map(|v| lua.coerce_number(v)).transpose()?.flatten().map(|v| v as i64) {
                    Some(v @ (2 | 3)) => st.resp3.set(v == 3),
                    _ => return Err(raise("ERR RESP version must be 2 or 3.")),
                }
                Ok(())
            })?,
        )?;
        redis.set(
            "set_repl",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("ERR redis.set_repl() requires one argument."));
                }
                match args.front().cloned().map(|v| lua.coerce_number(v)).transpose()?.flatten().map(|v| v as i64) {
                    Some(0..=3) => Ok(()),
                    _ => Err(raise("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")),
                }
            })?,
        )?;
        redis.set(
            "acl_check_cmd",
            lua.create_function(|_, args: MultiValue| {
                let argv = lua_args(args).map_err(raise)?;
                let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                command::lookup(&refs).map(|_| true).ok_or_else(|| raise("ERR Invalid command passed to redis.acl_check_cmd()"))
            })?,
        )?;
        redis.set("REDIS_VERSION", command::connection::REDIS_VERSION)?;
        redis.set("REDIS_VERSION_NUM", version_num(command::connection::REDIS_VERSION))?;
        api.set("redis", redis)?;
        libs::install(lua, &api)?;
        Ok(api)
    }

    /// Compiles a script body (with an optional `#!lua` shebang line).
    fn compile(&self, body: &[u8]) -> Result<Script, Reply> {
        let (skip, no_writes) = shebang(body)?;
        let f = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                Reply::error(format!("ERR Error compiling script (new function): {msg}"))
            })?;
        Ok(Script { f, no_writes })
    }

    /// The cached script `sha`, compiled from `body` (or from the shared registry) on a miss.
    fn script(&mut self, sha: &str, body: Option<&[u8]>) -> Result<Script, Reply> {
        if let Some(s) = self.scripts.get(sha) {
            return Ok(s.clone());
        }
        let script = match body {
            Some(body) => {
                let script = self.compile(body)?;
                let mut bodies = self.state.shared.script_bodies.lock().unwrap_or_else(|p| p.into_inner());
                bodies.entry(sha.to_string()).or_insert_with(|| Arc::from(body));
                script
            }
            None => {
                let body = self.state.shared.script_bodies.lock().unwrap_or_else(|p| p.into_inner()).get(sha).cloned();
                let body = body.ok_or_else(|| Reply::error(NOSCRIPT))?;
                self.compile(&body)?
            }
        };
        self.scripts.insert(sha.to_string(), script.clone());
        Ok(script)
    }

    /// Runs a script: `args` are EVAL's (`args[1]` the body or SHA-1, then numkeys, keys, arguments).
    fn run(&mut self, ctx: &mut Ctx<'_>, args: &[&[u8]], numkeys: usize, by_sha: bool, readonly: bool) -> Reply {
        let sha = if by_sha { String::from_utf8_lossy(args[1]).to_ascii_lowercase() } else { sha1hex(args[1]) };
        let script = match self.script(&sha, (!by_sha).then_some(args[1])) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let keys = &args[3..3 + numkeys];
        let argv = &args[3 + numkeys..];
        if let Err(e) = self.set_args(keys, argv) {
            return lua_err(e);
        }
        self.runs += 1;
        let st = self.state.clone();
        st.started.set(Some(Instant::now()));
        st.threshold_ms.set(ctx.shard.config.busy_reply_threshold);
        st.run.set(self.runs);
        st.busy.set(false);
        st.killed_at.set(None);
        st.shutdown.set(false);
        st.resp3.set(false);
        st.readonly.set(readonly || script.no_writes);
        // Redis's pre_command_oom_state: decided once, when the script starts (after eviction).
        st.oom.set(ctx.shard.ks.over_budget());
        *st.sha.borrow_mut() = sha.clone();
        if let Some(slot) = st.slot() {
            slot.wrote.store(false, Ordering::Release);
            slot.run.store(self.runs, Ordering::Release);
        }
        // A log that refuses writes still lets a read-only script run; its writes then fail one by one.
        let grouped = ctx.shard.ks.begin_group().is_ok();
        let result = {
            let cell = RefCell::new(&mut *ctx);
            let st = &st;
            self.lua.scope(|scope| {
                let call = scope.create_function(|lua, args: MultiValue| {
                    let mut ctx = cell.borrow_mut();
                    match redis_call(lua, &mut ctx, st, args)? {
                        Ok(v) => Ok(v),
                        Err(text) => Err(raise(text)),
                    }
                })?;
                let pcall = scope.create_function(|lua, args: MultiValue| {
                    let mut ctx = cell.borrow_mut();
                    match redis_call(lua, &mut ctx, st, args)? {
                        Ok(v) => Ok(v),
                        Err(text) => error_value(lua, &text),
                    }
                })?;
                self.redis.raw_set("call", call)?;
                self.redis.raw_set("pcall", pcall)?;
                self.runner.call::<(bool, Value)>(script.f.clone())
            })
        };
        let _ = self.redis.raw_set("call", Value::Nil);
        let _ = self.redis.raw_set("pcall", Value::Nil);
        // A script stopped by SHUTDOWN keeps none of its writes: its group is never
        // logged (the shard only syncs and stops after this), as Redis exits without
        // propagating a script it interrupted.
        let ended = if grouped && !st.shutdown.get() { ctx.shard.ks.end_group(ctx.now) } else { Ok(()) };
        st.started.set(None);
        if let Some(slot) = st.slot() {
            slot.busy.store(false, Ordering::Release);
            slot.run.store(0, Ordering::Release);
            slot.wrote.store(false, Ordering::Release);
        }
        let reply = match (st.killed_at.get(), result) {
            (Some(_), _) if st.shutdown.get() => Reply::error(KILLED_BY_SHUTDOWN),
            (Some(line), _) => Reply::error(format!("{KILLED} script: {sha}, on @user_script:{line}.")),
            (None, Ok((true, v))) => to_reply(&v, st.resp3.get(), 0),
            (None, Ok((false, e))) => script_error(&e, &sha),
            (None, Err(e)) => Reply::error(format!("ERR Error running script {sha}: {e}")),
        };
        if st.busy.get() {
            tracing::warn!(script = %sha, ms = ctx.shard.ks.now().saturating_sub(ctx.now), "slow script finished");
        }
        match ended {
            Ok(()) => reply,
            Err(e) => Reply::error(e.to_string()),
        }
    }

    fn set_args(&self, keys: &[&[u8]], argv: &[&[u8]]) -> mlua::Result<()> {
        let seq = |items: &[&[u8]]| -> mlua::Result<Table> {
            let t = self.lua.create_table_with_capacity(items.len(), 0)?;
            for (i, a) in items.iter().enumerate() {
                t.raw_set(i + 1, self.lua.create_string(a)?)?;
            }
            Ok(t)
        };
        self.globals.raw_set("KEYS", seq(keys)?)?;
        self.globals.raw_set("ARGV", seq(argv)?)?;
        Ok(())
    }
}

/// The count hook: marks the shard busy past the threshold, and stops a script SCRIPT KILL asked for.
fn hook(lua: &Lua, st: &RunState) -> mlua::Result<VmState> {
    let Some(started) = st.started.get() else { return Ok(VmState::Continue) };
    let Some(slot) = st.slot() else { return Ok(VmState::Continue) };
    if st.shared.shutdown.load(Ordering::Relaxed) {
        if st.killed_at.get().is_none() {
            st.killed_at.set(Some(user_line(lua).unwrap_or(0)));
            st.shutdown.set(true);
            tracing::warn!(shard = st.shard, script = %st.sha.borrow(), "script stopped by SHUTDOWN; its writes are dropped");
        }
        return Err(raise(KILLED));
    }
    if !st.busy.get() && started.elapsed().as_millis() as u64 >= st.threshold_ms.get() {
        st.busy.set(true);
        slot.busy.store(true, Ordering::Release);
        tracing::warn!(
            shard = st.shard,
            script = %st.sha.borrow(),
            ms = started.elapsed().as_millis() as u64,
            "slow script detected: still running; commands for this shard are answered BUSY; SCRIPT KILL can stop it if it has not written"
        );
    }
    if st.busy.get() && slot.kill.load(Ordering::Acquire) == st.run.get() {
        if st.killed_at.get().is_none() {
            st.killed_at.set(Some(user_line(lua).unwrap_or(0)));
            tracing::warn!(shard = st.shard, script = %st.sha.borrow(), "script killed by SCRIPT KILL");
        }
        return Err(raise(KILLED));
    }
    Ok(VmState::Continue)
}

/// Where the error being handled was raised, as Redis's message handler
/// finds it: the function that raised it (level 2 seen from the handler, a
/// Lua function that calls this), or its caller if that was a C function;
/// frames of the prelude are skipped the same way.
fn raiser(lua: &Lua) -> Option<(String, i32)> {
    (2..256).map_while(|level| lua.inspect_stack(level)).find_map(|d| {
        let src = d.source();
        let internal = src.what == "C" || src.source.as_deref() == Some(PRELUDE);
        (!internal).then(|| (src.source.map(|s| s.into_owned()).unwrap_or_default(), d.curr_line()))
    })
}

/// The current line of the innermost function of the user's script on the Lua stack.
fn user_line(lua: &Lua) -> Option<i32> {
    (0..256).map_while(|level| lua.inspect_stack(level)).find_map(|d| {
        let is_user = d.source().source.as_deref() == Some("@user_script");
        is_user.then(|| d.curr_line())
    })
}

/// `REDIS_VERSION_NUM`: 0x00MMmmpp.
fn version_num(v: &str) -> i64 {
    let mut parts = v.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a << 16) | (b << 8) | c
}

/// Parses a `#!lua [flags=a,b]` first line: the bytes to skip (the line, not
/// its newline, so line numbers stay) and whether it says `no-writes`.
fn shebang(body: &[u8]) -> Result<(usize, bool), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((0, false));
    }
    let end = body.iter().position(|&b| b == b'\n').ok_or_else(|| Reply::error("ERR Invalid script shebang"))?;
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().ok_or_else(|| Reply::error("ERR Invalid engine in script shebang"))?;
    if engine != "#!lua" {
        return Err(Reply::error(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut no_writes = false;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(Reply::error(format!("ERR Unknown lua shebang option: {part}")));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(Reply::error(format!("ERR Unexpected flag in script shebang: {other}"))),
            }
        }
    }
    Ok((end, no_writes))
}

/// The arguments of redis.call as bytes: strings as they are, numbers as C's `%.17g`.
fn lua_args(args: MultiValue) -> Result<Vec<Vec<u8>>, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    args.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            Value::Integer(i) => Ok(format_g17(i as f64).into_bytes()),
            Value::Number(n) => Ok(format_g17(n).into_bytes()),
            _ => Err("ERR Lua redis lib command arguments must be strings or integers".to_string()),
        })
        .collect()
}

/// C's `printf("%.17g", v)`, as Redis 7.0 turns Lua numbers into command arguments.
pub fn format_g17(v: f64) -> String {
    format_g(v, 17)
}

/// C's `printf("%.*g", precision, v)` (precision 1 to 17).
pub fn format_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.clamp(1, 17);
    let sci = format!("{v:.*e}", p - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{v:.*}", (p as i32 - 1 - exp) as usize))
    }
}

/// The error table a failed redis.call gives Lua: `{err = "CODE message"}`.
fn error_value(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(text)?)?;
    Ok(Value::Table(t))
}

/// redis.call / redis.pcall: the reply as Lua sees it, or the error text.
fn redis_call(lua: &Lua, ctx: &mut Ctx<'_>, st: &RunState, args: MultiValue) -> mlua::Result<Result<Value, String>> {
    let reply = lua_args(args).and_then(|argv| {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        run_command(ctx, st, &refs)
    });
    match reply {
        Ok(Reply::Error(e)) => Ok(Err(e.into_owned())),
        Ok(r) => Ok(Ok(to_lua(lua, r, st.resp3.get())?)),
        Err(e) => Ok(Err(e)),
    }
}

/// Checks and runs one command of a script on its shard.
fn run_command(ctx: &mut Ctx<'_>, st: &RunState, args: &[&[u8]]) -> Result<Reply, String> {
    let (id, cmd) = command::table::lookup_id(args).ok_or("ERR Unknown Redis command called from script")?;
    if !cmd.arity_ok(args.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    // The caller's ACL applies to what its script runs (Redis 7.2's wording).
    if let Some(user) = ctx.shard.shared.acl.session_user(ctx.caller) {
        if let Some(denied) = user.check(id as usize, cmd, args) {
            let msg = denied.message(&user.name);
            return Err(format!("ERR ACL failure in script: {}", msg.trim_start_matches("NOPERM ")));
        }
    }
    if cmd.flags & flags::NOSCRIPT != 0 {
        return Err(NOT_ALLOWED.into());
    }
    let writes = cmd.flags & flags::WRITE != 0;
    if writes && st.readonly.get() {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if cmd.flags & flags::DENYOOM != 0 && st.oom.get() {
        return Err(crate::oom::OOM.into());
    }
    let me = ctx.shard.id;
    // On a scratch shard (a script whose keys live on several shards) only the keys it holds are here.
    let non_local = if ctx.shard.held.is_some() { NOT_DECLARED } else { NON_LOCAL_KEY };
    let local = |mut keys: crate::command::KeyPositions| match &ctx.shard.held {
        Some(held) => keys.all(|i| held.contains(&(ctx.db, args[i].to_vec()))),
        None => keys.all(|i| ctx.shard.shared.slots.shard_of(args[i]) == me),
    };
    // Compaction rules name keys of their own shard; in a scratch shard the keys may come from two.
    if ctx.shard.held.is_some() && cmd.name == "ts.createrule" {
        let shards: Vec<usize> = cmd.keys_of(args).map(|i| ctx.shard.shared.slots.shard_of(args[i])).collect();
        if shards.windows(2).any(|w| w[0] != w[1]) {
            return Err(RULE_ACROSS.into());
        }
    }
    let mut merge = None;
    let handler = match cmd.route {
        Route::Key(h) | Route::Split(h, _) if local(cmd.keys_of(args)) => h,
        Route::Key(_) | Route::Split(..) => {
            // On a scratch shard: noted, so that the coordinator can run the script again holding these keys too.
            if let Some(held) = &ctx.shard.held {
                let db = ctx.db;
                let missing: Vec<(usize, Vec<u8>)> =
                    cmd.keys_of(args).map(|i| (db, args[i].to_vec())).filter(|k| !held.contains(k)).collect();
                // Past the cap the run is the last: the error stands.
                for k in missing {
                    if ctx.shard.wanted.len() < crate::gather::MAX_WANTED {
                        ctx.shard.wanted.insert(k);
                    }
                }
            }
            return Err(non_local.into());
        }
        Route::Cursor(_) if ctx.shard.held.is_some() => return Err(NOT_DECLARED.into()),
        Route::Local(h) => h,
        Route::All(h, m) if ctx.shard.nshards == 1 => {
            merge = Some(m);
            h
        }
        Route::All(..) => return Err(ALL_SHARDS.into()),
        Route::Cursor(h) => {
            let cursor = args.get(1).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse::<u64>().ok());
            match cursor {
                Some(c) if (c & 0xff) as usize == me => h,
                Some(c) if ((c & 0xff) as usize) < ctx.shard.nshards => return Err(NON_LOCAL_KEY.into()),
                _ => return Ok(Reply::error("ERR invalid cursor")),
            }
        }
        Route::Conn(_) if cmd.name == "select" => return Ok(select(ctx, args[1])),
        Route::Conn(_) | Route::Async(_) => return Err(NOT_ALLOWED.into()),
    };
    if writes {
        if let Some(slot) = st.slot() {
            slot.wrote.store(true, Ordering::Release);
        }
    }
    if let Some(refused) = crate::tiering::resident(ctx.shard, Some(cmd), ctx.db, args) {
        return Ok(refused);
    }
    ctx.shard.stats.commands += 1;
    // Keyspace notifications name the command the script called, not EVAL.
    let outer = ctx.cmd.as_ref().map(|_| String::from_utf8_lossy(args[0]).to_ascii_lowercase());
    let outer = outer.map(|inner| ctx.cmd.replace(inner));
    let mut reply = handler(ctx, args);
    if let Some(name) = outer {
        ctx.cmd = name;
    }
    if let Some(m) = merge {
        reply = crate::dispatch::merge_parts(m, vec![reply], &[]);
    }
    if reply.is_error() {
        ctx.shard.stats.errors += 1;
    }
    // A call in INFO commandstats, as Redis counts it; its time and errors are the script's.
    ctx.shard.cmdstats.count_call(id);
    Ok(reply)
}

/// SELECT inside a script: changes the database of the rest of the script only.
fn select(ctx: &mut Ctx<'_>, arg: &[u8]) -> Reply {
    match std::str::from_utf8(arg).ok().and_then(|s| s.parse::<i64>().ok()) {
        None => Reply::error(err::NOT_INTEGER),
        Some(db) if !(0..strand_engine::keyspace::DATABASES as i64).contains(&db) => Reply::error(err::DB_INDEX),
        Some(db) => {
            ctx.db = db as usize;
            Reply::Ok
        }
    }
}

/// A reply as Lua sees it (Redis's `redisProtocolToLuaType`): RESP2 forms
/// unless the script asked for RESP3 with redis.setresp(3).
fn to_lua(lua: &Lua, reply: Reply, resp3: bool) -> mlua::Result<Value> {
    let table1 = |key: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(key, v)?;
        Ok(Value::Table(t))
    };
    let seq = |items: Vec<Reply>| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.into_iter().enumerate() {
            t.raw_set(i + 1, to_lua(lua, item, resp3)?)?;
        }
        Ok(Value::Table(t))
    };
    match reply {
        Reply::Ok => table1("ok", Value::String(lua.create_string("OK")?)),
        Reply::Simple(s) => table1("ok", Value::String(lua.create_string(s.as_bytes())?)),
        Reply::Error(e) => error_value(lua, &e),
        Reply::Int(n) => Ok(Value::Number(n as f64)),
        Reply::Bulk(b) => Ok(Value::String(lua.create_string(&b)?)),
        Reply::Nil | Reply::NilArray if resp3 => Ok(Value::Nil),
        Reply::Nil | Reply::NilArray => Ok(Value::Boolean(false)),
        Reply::Array(items) | Reply::Push(items) | Reply::Several(items) => seq(items),
        Reply::Double(v) if resp3 => table1("double", Value::Number(v)),
        Reply::Double(v) => {
            let mut text = Vec::new();
            crate::resp::format_double(v, &mut text);
            Ok(Value::String(lua.create_string(&text)?))
        }
        Reply::Bool(b) if resp3 => Ok(Value::Boolean(b)),
        Reply::Bool(b) => Ok(Value::Number(if b { 1.0 } else { 0.0 })),
        Reply::Keyed(pairs) if resp3 => to_lua(lua, Reply::Map(pairs), resp3),
        Reply::Keyed(pairs) => seq(pairs.into_iter().map(|(k, v)| Reply::Array(vec![k, v])).collect()),
        Reply::Map(pairs) if resp3 => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            table1("map", Value::Table(t))
        }
        Reply::Map(pairs) => seq(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Reply::Pairs(pairs) if resp3 => seq(pairs.into_iter().map(|(k, v)| Reply::Array(vec![k, v])).collect()),
        Reply::Pairs(pairs) => seq(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Reply::Set(items) if resp3 => {
            let t = lua.create_table()?;
            for item in items {
                t.raw_set(to_lua(lua, item, resp3)?, true)?;
            }
            table1("set", Value::Table(t))
        }
        Reply::Set(items) => seq(items),
        Reply::Verbatim(format, data) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("format", format)?;
            t.raw_set("string", lua.create_string(&data)?)?;
            table1("verbatim_string", Value::Table(t))
        }
        Reply::Verbatim(_, data) => Ok(Value::String(lua.create_string(&data)?)),
    }
}

/// C's `(long long)` of a double on x86-64: truncation, and i64::MIN for NaN and out-of-range values.
fn lua_number_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A script's result as a reply (Redis's `luaReplyToRedisReply`).
fn to_reply(v: &Value, resp3: bool, depth: usize) -> Reply {
    match v {
        Value::String(s) => Reply::Bulk(s.as_bytes().to_vec()),
        Value::Boolean(true) if resp3 => Reply::Bool(true),
        Value::Boolean(false) if resp3 => Reply::Bool(false),
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(lua_number_to_i64(*n)),
        Value::Table(t) => table_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn text(s: &mlua::String) -> String {
    String::from_utf8_lossy(&s.as_bytes()).into_owned()
}

fn table_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if depth >= MAX_DEPTH {
        return Reply::error("ERR reached lua stack limit");
    }
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        return Reply::Error(text(&e).into());
    }
    if let Value::String(s) = field("ok") {
        return Reply::Simple(text(&s).into());
    }
    match field("double") {
        Value::Number(n) => return Reply::Double(n),
        Value::Integer(i) => return Reply::Double(i as f64),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        return Reply::Bulk(s.as_bytes().to_vec());
    }
    if let Value::Table(m) = field("map") {
        let pairs = m.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Map(pairs.map(|(k, v)| (to_reply(&k, resp3, depth + 1), to_reply(&v, resp3, depth + 1))).collect());
    }
    if let Value::Table(s) = field("set") {
        let keys = s.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Set(keys.map(|(k, _)| to_reply(&k, resp3, depth + 1)).collect());
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// The reply to a script that raised an error: the handler's `{err, source, line}` table.
fn script_error(e: &Value, sha: &str) -> Reply {
    let Value::Table(t) = e else {
        let msg = match e {
            Value::String(s) => text(s),
            other => format!("{other:?}"),
        };
        return Reply::error(format!("ERR Error running script {sha}, {}", msg.chars().take(100).collect::<String>()));
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => text(&s),
        _ => "ERR unknown error".into(),
    };
    let source = t.raw_get::<Option<mlua::String>>("source").ok().flatten();
    let line = t.raw_get::<Option<i64>>("line").ok().flatten();
    match (source, line) {
        (Some(source), Some(line)) => Reply::error(format!("{msg} script: {sha}, on {}:{line}.", text(&source))),
        _ => Reply::error(msg),
    }
}

/// Redis's checks of EVAL's `numkeys`.
fn numkeys(args: &[&[u8]]) -> Result<usize, Reply> {
    let n = command::strings::parse_i64(args[2]).ok_or_else(|| Reply::error(err::NOT_INTEGER))?;
    if n > (args.len() - 3) as i64 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

/// Takes the shard's engine out of its state (creating it on first use), runs `f`, and puts it back.
fn with_engine(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Engine, &mut Ctx<'_>) -> Reply) -> Reply {
    let mut engine = match ctx.shard.lua.take() {
        Some(e) => e,
        None => match Engine::new(ctx.shard.shared.clone(), ctx.shard.id) {
            Ok(e) => Box::new(e),
            Err(e) => return e,
        },
    };
    let reply = f(&mut engine, ctx);
    ctx.shard.lua = Some(engine);
    reply
}

/// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO on the shard that owns the keys.
pub fn eval(ctx: &mut Ctx<'_>, args: &[&[u8]], by_sha: bool, readonly: bool) -> Reply {
    let n = match numkeys(args) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if by_sha && args[1].len() != 40 {
        return Reply::error(NOSCRIPT);
    }
    with_engine(ctx, |engine, ctx| engine.run(ctx, args, n, by_sha, readonly))
}

/// SCRIPT LOAD on one shard: compiles and caches the body; answers its SHA-1.
pub fn load(ctx: &mut Ctx<'_>, body: &[u8]) -> Reply {
    let sha = sha1hex(body);
    with_engine(ctx, |engine, _| match engine.script(&sha, Some(body)) {
        Ok(_) => Reply::Bulk(sha.clone().into_bytes()),
        Err(e) => e,
    })
}

/// Whether a script is known to any shard (SCRIPT EXISTS).
pub fn exists(shared: &Shared, sha: &[u8]) -> bool {
    let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
    shared.script_bodies.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&sha)
}

/// SCRIPT FLUSH on one shard: drops its Lua state (and with it every compiled script) and the shared bodies.
pub fn flush(ctx: &mut Ctx<'_>) {
    ctx.shard.lua = None;
    ctx.shard.shared.script_bodies.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_g17(3.0), "3");
        assert_eq!(format_g17(3.7), "3.7000000000000002");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(-0.5), "-0.5");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1e16), "10000000000000000");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_g17(-1234.5), "-1234.5");
        assert_eq!(format_g17(f64::INFINITY), "inf");
    }

    #[test]
    fn rand48_matches_redis() {
        // Redis 7.0 on a fresh start: math.random(100), math.random(100), math.random(1000000).
        let st = Cell::new(RAND48_START);
        let r = |u: i64| ((lrand48(&st) % 2147483647) as f64 / 2147483647.0 * u as f64).floor() as i64 + 1;
        assert_eq!([r(100), r(100), r(1_000_000)], [40, 85, 353337]);
    }

    #[test]
    fn shebangs() {
        assert_eq!(shebang(b"return 1").unwrap(), (0, false));
        assert_eq!(shebang(b"#!lua\nreturn 1").unwrap(), (5, false));
        assert_eq!(shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap(), (31, true));
        assert_eq!(shebang(b"#!lua").unwrap_err(), Reply::error("ERR Invalid script shebang"));
        assert_eq!(shebang(b"#!py\n").unwrap_err(), Reply::error("ERR Unexpected engine in script shebang: #!py"));
        assert_eq!(shebang(b"#!lua flags=bad\n").unwrap_err(), Reply::error("ERR Unexpected flag in script shebang: bad"));
        assert_eq!(shebang(b"#!lua name=x\n").unwrap_err(), Reply::error("ERR Unknown lua shebang option: name=x"));
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(lua_number_to_i64(3.99), 3);
        assert_eq!(lua_number_to_i64(-2.7), -2);
        assert_eq!(lua_number_to_i64(1e20), i64::MIN);
        assert_eq!(lua_number_to_i64(f64::NAN), i64::MIN);
    }
}
