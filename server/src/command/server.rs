//! Server commands: INFO, CONFIG, COMMAND, TIME, LASTSAVE, SAVE, BGSAVE, SHUTDOWN, FUNCTION.
//!
//! INFO runs on every shard and the parts are summed into Redis's
//! `field:value` text, with a strand section that shows each shard. CONFIG
//! SET changes every shard's copy of the configuration.
//! See <https://redis.io/commands/?group=server>.

use std::sync::atomic::Ordering;

use crate::command::{connection::REDIS_VERSION, err, flags::*, keyless, AsyncCmd, Command, Ctx, Merge, Route};
use crate::conn::ConnCtx;
use crate::reply::Reply;

/// [TIME](https://redis.io/commands/time/).
fn time(_: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    let us = strand_engine::clock::unix_us();
    Reply::Array(vec![Reply::bulk((us / 1_000_000).to_string()), Reply::bulk((us % 1_000_000).to_string())])
}

/// [LASTSAVE](https://redis.io/commands/lastsave/): when the data last reached disk, in Unix seconds.
fn lastsave(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Int(ctx.shard.lastsave as i64)
}

/// [SHUTDOWN](https://redis.io/commands/shutdown/): every shard takes a
/// checkpoint (unless NOSAVE) and syncs its log, then the process exits.
fn shutdown(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let (mut save, mut force) = (true, false);
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "nosave" => save = false,
            "force" => force = true,
            "save" | "now" => {}
            "abort" => return Reply::error("ERR No shutdown in progress."),
            _ => return Reply::error(err::SYNTAX),
        }
    }
    let shared = c.shard.state.borrow().shared.clone();
    if save && !force && shared.logs_failed.load(Ordering::SeqCst) != 0 {
        // Records waiting for a retry of a failed log write would be lost with the process.
        tracing::warn!(client = c.conn.id, "SHUTDOWN refused: a shard's log cannot be written (use NOSAVE or FORCE to stop anyway)");
        return Reply::error("ERR Errors trying to SHUTDOWN. Check logs.");
    }
    tracing::info!(client = c.conn.id, "SHUTDOWN requested");
    shared.shutdown_save.store(save, Ordering::SeqCst);
    shared.shutdown.store(true, Ordering::SeqCst);
    c.conn.close_now = true;
    Reply::Ok
}

/// CONFIG GET on this shard (every shard has the same values).
fn config_get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let params = ctx.shard.config.params();
    let mut out = Vec::new();
    for (name, value) in params {
        let hit = args[2..].iter().any(|pat| crate::command::glob::glob_match(pat, name.as_bytes(), true));
        if hit {
            out.push((Reply::bulk(name), Reply::bulk(value)));
        }
    }
    Reply::Map(out)
}

/// CONFIG SET on one shard: all pairs or none.
fn config_set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if !args.len().is_multiple_of(2) {
        return Reply::error(err::SYNTAX);
    }
    let mut next = ctx.shard.config.clone();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        if let Err(e) = next.set(&name, &value) {
            return Reply::error(e);
        }
    }
    if next.requirepass != ctx.shard.config.requirepass {
        // The default user's password is requirepass (every shard sets the same one).
        let pass = next.requirepass.clone();
        let _ = ctx.shard.shared.acl.update(|users| {
            let mut d = (*users.default_user()).clone();
            d.set_requirepass(pass.as_deref());
            users.insert(d);
            Ok(())
        });
    }
    ctx.shard.ks.set_capture(crate::notify::capture(next.notify));
    ctx.shard.ks.set_limits(next.memory_limits(ctx.shard.nshards));
    ctx.shard.config = next;
    Reply::Ok
}

/// CONFIG RESETSTAT on one shard.
fn config_resetstat(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    ctx.shard.stats = Default::default();
    ctx.shard.cmdstats = Default::default();
    ctx.shard.ks.reset_stats();
    Reply::Ok
}

fn config_container(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "rewrite" => Reply::error("ERR CONFIG REWRITE is not supported: edit the TOML file given with --config"),
        "help" => help(&["CONFIG GET <pattern>", "CONFIG SET <parameter> <value> [<parameter> <value> ...]", "CONFIG RESETSTAT"]),
        _ => unknown_sub(args[1], "CONFIG"),
    }
}

pub(crate) fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::simple(l.to_string())).collect())
}

pub(crate) fn unknown_sub(sub: &[u8], container: &str) -> Reply {
    Reply::error(format!("ERR unknown subcommand '{}'. Try {container} HELP.", String::from_utf8_lossy(&sub[..sub.len().min(128)])))
}

/// One command's COMMAND INFO entry.
fn command_info_entry(c: &Command) -> Reply {
    let flags = NAMES.iter().filter(|(f, _)| c.flags & f != 0).map(|(_, n)| Reply::simple(*n)).collect();
    let subs: Vec<Reply> = if c.flags & CONTAINER != 0 {
        crate::command::table::all()
            .into_iter()
            .filter(|s| s.name.strip_prefix(c.name).is_some_and(|rest| rest.starts_with('|')))
            .map(command_info_entry)
            .collect()
    } else {
        Vec::new()
    };
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(flags),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.step as i64),
        Reply::Set(c.categories.iter().map(|s| Reply::simple(*s)).collect()),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(subs),
    ])
}

fn top_level() -> Vec<&'static Command> {
    crate::command::table::all().into_iter().filter(|c| !c.name.contains('|')).collect()
}

/// [COMMAND](https://redis.io/commands/command/) and its subcommands COUNT, INFO, DOCS, LIST.
fn command(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(top_level().into_iter().map(command_info_entry).collect());
    }
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    let find = |name: &[u8]| crate::command::table::by_name(&String::from_utf8_lossy(name).to_ascii_lowercase());
    match sub.as_str() {
        "count" | "getkeys" | "help" if !command_sub_arity_ok(&sub, args.len()) => crate::command::arity_error(&format!("command|{sub}")),
        "count" => Reply::Int(top_level().len() as i64),
        "list" => Reply::Array(top_level().into_iter().map(|c| Reply::bulk(c.name)).collect()),
        "info" if args.len() == 2 => Reply::Array(top_level().into_iter().map(command_info_entry).collect()),
        "info" => Reply::Array(args[2..].iter().map(|n| find(n).map_or(Reply::NilArray, command_info_entry)).collect()),
        "docs" => {
            let wanted: Vec<&Command> = if args.len() == 2 { top_level() } else { args[2..].iter().filter_map(|n| find(n)).collect() };
            Reply::Map(
                wanted
                    .into_iter()
                    .map(|c| {
                        let doc = Reply::Map(vec![
                            (Reply::bulk("summary"), Reply::bulk(c.summary)),
                            (Reply::bulk("since"), Reply::bulk("1.0.0")),
                            (Reply::bulk("group"), Reply::bulk(group_of(c))),
                        ]);
                        (Reply::bulk(c.name), doc)
                    })
                    .collect(),
            )
        }
        "getkeys" if args.len() >= 3 => match find(args[2]) {
            None => Reply::error("ERR Invalid command specified"),
            Some(c) if !c.arity_ok(args.len() - 2) => Reply::error("ERR Invalid number of arguments specified for command"),
            Some(c) => {
                let keys: Vec<Reply> = c.keys_of(&args[2..]).map(|i| Reply::bulk(args[2 + i])).collect();
                if keys.is_empty() {
                    Reply::error("ERR The command has no key arguments")
                } else {
                    Reply::Array(keys)
                }
            }
        },
        "help" => {
            help(&["COMMAND", "COMMAND COUNT", "COMMAND INFO [<command-name> ...]", "COMMAND DOCS [<command-name> ...]", "COMMAND LIST"])
        }
        _ => unknown_sub(args[1], "COMMAND"),
    }
}

fn command_sub_arity_ok(sub: &str, n: usize) -> bool {
    match sub {
        "count" | "help" => n == 2,
        "getkeys" => n >= 3,
        _ => true,
    }
}

fn group_of(c: &Command) -> &'static str {
    const GROUPS: &[(&str, &str)] = &[
        ("@string", "string"),
        ("@hash", "hash"),
        ("@list", "list"),
        ("@set", "set"),
        ("@sortedset", "sorted-set"),
        ("@pubsub", "pubsub"),
        ("@transaction", "transactions"),
        ("@scripting", "scripting"),
        ("@keyspace", "generic"),
        ("@connection", "connection"),
    ];
    GROUPS.iter().find(|(cat, _)| c.categories.contains(cat)).map_or("server", |(_, group)| group)
}

/// [FUNCTION](https://redis.io/commands/function-list/) LIST and FLUSH over the function library, which is empty.
fn function(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "list" => Reply::Array(Vec::new()),
        "flush" if args.len() <= 3 => Reply::Ok,
        "help" => help(&["FUNCTION LIST", "FUNCTION FLUSH [ASYNC|SYNC]"]),
        _ => unknown_sub(args[1], "FUNCTION"),
    }
}

/// The server commands.
pub const COMMANDS: &[Command] = &[
    keyless(
        "info",
        -1,
        LOADING | STALE,
        Route::All(crate::info::shard_info, Merge::Custom(crate::info::render)),
        &["@slow", "@dangerous"],
        "Returns information and statistics about the server.",
    ),
    keyless("time", 1, FAST | LOADING | STALE, Route::Local(time), &["@fast"], "Returns the server time."),
    keyless(
        "lastsave",
        1,
        FAST | LOADING | STALE,
        Route::All(lastsave, Merge::Custom(min_int)),
        &["@fast", "@admin", "@dangerous"],
        "Returns the Unix timestamp of the last successful save to disk.",
    ),
    keyless(
        "save",
        1,
        ADMIN | NOSCRIPT,
        Route::Async(AsyncCmd::Save),
        &["@admin", "@slow", "@dangerous"],
        "Synchronously saves the database(s) to disk: a checkpoint of every shard.",
    ),
    keyless(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        Route::Async(AsyncCmd::BgSave),
        &["@admin", "@slow", "@dangerous"],
        "Asynchronously saves the database(s) to disk: starts a checkpoint of every shard.",
    ),
    keyless(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_AUTH,
        Route::Conn(shutdown),
        &["@admin", "@slow", "@dangerous"],
        "Synchronously saves the database(s) to disk and shuts down the server.",
    ),
    keyless("config", -2, CONTAINER, Route::Local(config_container), &["@slow"], "A container for server configuration commands."),
    keyless(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::Local(config_get),
        &["@admin", "@slow", "@dangerous"],
        "Returns the effective values of configuration parameters.",
    ),
    keyless(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(config_set, Merge::FirstError),
        &["@admin", "@slow", "@dangerous"],
        "Sets configuration parameters in-flight.",
    ),
    keyless(
        "config|resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(config_resetstat, Merge::FirstError),
        &["@admin", "@slow", "@dangerous"],
        "Resets the server's statistics.",
    ),
    keyless(
        "command",
        -1,
        LOADING | STALE,
        Route::Local(command),
        &["@slow", "@connection"],
        "Returns detailed information about all commands.",
    ),
    keyless(
        "function",
        -2,
        NOSCRIPT,
        Route::Local(function),
        &["@slow", "@scripting"],
        "FUNCTION LIST and FUNCTION FLUSH over the (empty) function library.",
    ),
];

fn min_int(parts: Vec<Reply>) -> Reply {
    Reply::Int(parts.iter().filter_map(|p| if let Reply::Int(n) = p { Some(*n) } else { None }).min().unwrap_or(0))
}

/// The version string INFO reports for strand itself.
pub fn strand_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The Redis version INFO reports.
pub fn redis_version() -> &'static str {
    REDIS_VERSION
}
