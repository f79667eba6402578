//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET and CLIENT.
//!
//! These read or change the state of the connection itself, so most run on
//! the connection's shard through [`Route::Conn`]. CLIENT LIST and CLIENT
//! KILL look at the connections of every shard ([`Route::All`]).
//! See <https://redis.io/commands/?group=connection>.

use crate::command::{err, flags::*, keyless, Command, Ctx, Merge, Route};
use crate::conn::ConnCtx;
use crate::reply::Reply;
use crate::resp::Protocol;
use crate::shard::ClientInfo;

/// The Redis version whose behaviour strand matches; client libraries check it.
pub const REDIS_VERSION: &str = "7.4.0";

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// [PING](https://redis.io/commands/ping/): PONG, or the argument back.
fn ping(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    match args.len() {
        1 => Reply::simple("PONG"),
        2 => Reply::bulk(args[1]),
        _ => crate::command::arity_error("ping"),
    }
}

/// [ECHO](https://redis.io/commands/echo/).
fn echo(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    Reply::bulk(args[1])
}

/// [QUIT](https://redis.io/commands/quit/): OK, then the connection closes.
fn quit(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    c.conn.quit = true;
    Reply::Ok
}

/// [SELECT](https://redis.io/commands/select/).
fn select(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    match std::str::from_utf8(args[1]).ok().and_then(|s| s.parse::<i64>().ok()) {
        None => Reply::error(err::NOT_INTEGER),
        Some(db) if !(0..16).contains(&db) => Reply::error(err::DB_INDEX),
        Some(db) => {
            c.conn.db = db as usize;
            c.conn.info.borrow_mut().db = db as usize;
            Reply::Ok
        }
    }
}

/// Authenticates the connection as `user` if `pass` is its password (and the user is on).
fn login(c: &mut ConnCtx<'_>, user: &[u8], pass: &[u8]) -> Result<(), Reply> {
    let acl = &c.shard.shared.acl;
    let epoch = acl.epoch();
    match acl.users().authenticate(user, pass) {
        Some(u) => {
            c.conn.info.borrow_mut().user.clone_from(&u.name);
            acl.note_session(c.conn.id, Some(&u));
            c.conn.user = u;
            c.conn.acl_epoch = epoch;
            c.conn.authed = true;
            Ok(())
        }
        None => {
            let line = client_line(&c.conn.info.borrow(), strand_engine::clock::unix_ms());
            acl.log(None, c.conn.multi.is_some(), &String::from_utf8_lossy(user), line.trim_end().to_string());
            Err(Reply::error("WRONGPASS invalid username-password pair or user is disabled."))
        }
    }
}

/// [AUTH](https://redis.io/commands/auth/): `AUTH password` (the default user) or `AUTH username password`.
fn auth(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let (user, pass) = match args.len() {
        2 => (&b"default"[..], args[1]),
        3 => (args[1], args[2]),
        _ => return Reply::error(err::SYNTAX),
    };
    if args.len() == 2 && c.shard.shared.acl.users().default_user().open() {
        return Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    match login(c, user, pass) {
        Ok(()) => Reply::Ok,
        Err(e) => e,
    }
}

/// [HELLO](https://redis.io/commands/hello/): switch protocol, authenticate, name the client.
fn hello(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let mut proto = c.conn.proto;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        proto = match std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        };
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        if eq(args[i], "auth") && i + 2 < args.len() {
            if let Err(e) = login(c, args[i + 1], args[i + 2]) {
                return e;
            }
            i += 3;
        } else if eq(args[i], "setname") && i + 1 < args.len() {
            if let Err(e) = valid_name(args[i + 1]) {
                return e;
            }
            name = Some(args[i + 1]);
            i += 2;
        } else {
            return Reply::error(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(args[i])));
        }
    }
    if !c.conn.authed {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = name {
        c.conn.info.borrow_mut().name = n.to_vec();
    }
    c.conn.proto = proto;
    c.conn.info.borrow_mut().resp = if proto == Protocol::Resp3 { 3 } else { 2 };
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 })),
        (Reply::bulk("id"), Reply::Int(c.conn.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ])
}

/// [RESET](https://redis.io/commands/reset/): back to a fresh connection's state.
fn reset(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    c.conn.db = 0;
    c.conn.multi = None;
    c.conn.unwatch_later = !c.conn.watched.is_empty();
    crate::command::pubsub::unsubscribe_all(c.shard, c.conn);
    c.conn.proto = Protocol::Resp2;
    let fresh = crate::conn::Auth::fresh(&c.shard.shared.acl);
    c.conn.authed = fresh.authed;
    c.shard.shared.acl.note_session(c.conn.id, Some(&fresh.user));
    c.conn.user = fresh.user;
    c.conn.acl_epoch = fresh.epoch;
    let mut info = c.conn.info.borrow_mut();
    info.user.clone_from(&c.conn.user.name);
    info.db = 0;
    info.resp = 2;
    info.name.clear();
    Reply::simple("RESET")
}

fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// CLIENT SETNAME / GETNAME / ID / INFO / SETINFO / NO-EVICT / NO-TOUCH / REPLY.
fn client_conn(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("setname", 3) => match valid_name(args[2]) {
            Ok(()) => {
                c.conn.info.borrow_mut().name = args[2].to_vec();
                Reply::Ok
            }
            Err(e) => e,
        },
        ("getname", 2) => {
            let info = c.conn.info.borrow();
            if info.name.is_empty() {
                Reply::Nil
            } else {
                Reply::bulk(&info.name)
            }
        }
        ("id", 2) => Reply::Int(c.conn.id as i64),
        ("info", 2) => {
            let now = strand_engine::clock::unix_ms();
            Reply::Verbatim("txt", client_line(&c.conn.info.borrow(), now).into_bytes())
        }
        ("setinfo", 4) => {
            let what = String::from_utf8_lossy(args[2]).to_ascii_lowercase();
            let value = String::from_utf8_lossy(args[3]).into_owned();
            if value.contains(' ') || value.contains('\n') {
                return Reply::error(format!("ERR {what} cannot contain spaces, newlines or special characters."));
            }
            let mut info = c.conn.info.borrow_mut();
            match what.as_str() {
                "lib-name" => info.lib_name = value,
                "lib-ver" => info.lib_ver = value,
                _ => return Reply::error(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(args[2]))),
            }
            Reply::Ok
        }
        ("no-evict" | "no-touch", 3) if eq(args[2], "on") || eq(args[2], "off") => Reply::Ok,
        ("no-evict" | "no-touch", 3) => Reply::error(err::SYNTAX),
        ("reply", 3) if eq(args[2], "on") => Reply::Ok,
        ("reply", 3) => Reply::error(err::SYNTAX),
        ("setname" | "getname" | "id" | "info" | "setinfo" | "no-evict" | "no-touch" | "reply", _) => {
            crate::command::arity_error(&format!("client|{sub}"))
        }
        ("help", _) => Reply::Array(
            [
                "CLIENT ID",
                "CLIENT INFO",
                "CLIENT KILL <ip:port> | <filter> <value> ...",
                "CLIENT LIST [TYPE normal] [ID id ...]",
                "CLIENT GETNAME",
                "CLIENT SETNAME <name>",
                "CLIENT SETINFO <LIB-NAME|LIB-VER> <value>",
            ]
            .iter()
            .map(|l| Reply::simple(*l))
            .collect(),
        ),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )),
    }
}

/// One line of CLIENT LIST, in Redis's format.
pub fn client_line(c: &ClientInfo, now_ms: u64) -> String {
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}\n",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name),
        now_ms.saturating_sub(c.created_ms) / 1000,
        now_ms.saturating_sub(c.last_cmd_ms) / 1000,
        c.db,
        c.qbuf,
        c.omem,
        c.last_cmd.to_lowercase(),
        c.user,
        c.resp,
        c.lib_name,
        c.lib_ver,
    )
}

/// [CLIENT LIST](https://redis.io/commands/client-list/) on one shard: its clients' lines.
fn client_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if eq(args[i], "type") && i + 1 < args.len() {
            let t = String::from_utf8_lossy(args[i + 1]).to_ascii_lowercase();
            if !matches!(t.as_str(), "normal" | "master" | "replica" | "pubsub") {
                return Reply::error(format!("ERR Unknown client type '{t}'"));
            }
            if t != "normal" {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if eq(args[i], "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                match std::str::from_utf8(a).ok().and_then(|s| s.parse::<u64>().ok()) {
                    Some(id) if id > 0 => v.push(id),
                    _ => return Reply::error("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            return Reply::error(err::SYNTAX);
        }
    }
    let now = ctx.now;
    let mut text = String::new();
    for (id, c) in &ctx.shard.clients {
        if ids.as_ref().is_none_or(|v| v.contains(id)) {
            text.push_str(&client_line(&c.borrow(), now));
        }
    }
    Reply::Bulk(text.into_bytes())
}

fn join_client_list(parts: Vec<Reply>) -> Reply {
    let mut lines: Vec<(u64, Vec<u8>)> = Vec::new();
    for p in parts {
        if let Reply::Bulk(text) = p {
            for line in text.split_inclusive(|&b| b == b'\n') {
                let id = line
                    .strip_prefix(b"id=")
                    .and_then(|rest| rest.split(|&b| b == b' ').next())
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                    .unwrap_or(0);
                lines.push((id, line.to_vec()));
            }
        }
    }
    lines.sort_by_key(|(id, _)| *id);
    Reply::Verbatim("txt", lines.into_iter().flat_map(|(_, l)| l).collect())
}

/// [CLIENT KILL](https://redis.io/commands/client-kill/) on one shard.
fn client_kill(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let old_form = args.len() == 3;
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut skipme = true;
    if old_form {
        filters.push(("addr".into(), String::from_utf8_lossy(args[2]).into_owned()));
        skipme = false;
    } else {
        if !(args.len() - 2).is_multiple_of(2) {
            return Reply::error(err::SYNTAX);
        }
        for pair in args[2..].chunks(2) {
            let k = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
            let v = String::from_utf8_lossy(pair[1]).into_owned();
            match k.as_str() {
                "id" if v.parse::<u64>().is_err() => return Reply::error("ERR client-id should be greater than 0"),
                "skipme" => match v.as_str() {
                    "yes" => skipme = true,
                    "no" => skipme = false,
                    _ => return Reply::error(err::SYNTAX),
                },
                "id" | "addr" | "laddr" | "user" | "type" | "maxage" => filters.push((k, v)),
                _ => return Reply::error(err::SYNTAX),
            }
        }
    }
    let mut killed = 0;
    for c in ctx.shard.clients.values() {
        let mut c = c.borrow_mut();
        if skipme && c.id == ctx.caller {
            continue;
        }
        let hit = filters.iter().all(|(k, v)| match k.as_str() {
            "id" => c.id.to_string() == *v,
            "addr" => c.addr == *v,
            "laddr" => c.laddr == *v,
            "user" => c.user == *v,
            "type" => v == "normal",
            "maxage" => v.parse::<u64>().is_ok_and(|age| ctx.now.saturating_sub(c.created_ms) / 1000 >= age),
            _ => false,
        });
        if hit {
            c.killed = true;
            // SAFETY: shutdown(2) on a socket this shard owns; the connection task closes it after its read returns.
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
            killed += 1;
        }
    }
    if old_form {
        // The old form answers OK or an error; Nil marks "not on this shard" for the merge.
        return if killed > 0 { Reply::Ok } else { Reply::Nil };
    }
    Reply::Int(killed)
}

fn client_kill_merge(parts: Vec<Reply>) -> Reply {
    if parts.iter().any(|p| matches!(p, Reply::Ok)) {
        return Reply::Ok;
    }
    if parts.iter().all(|p| matches!(p, Reply::Nil)) {
        return Reply::error("ERR No such client");
    }
    Reply::Int(parts.iter().map(|p| if let Reply::Int(n) = p { *n } else { 0 }).sum())
}

/// The connection commands.
pub const COMMANDS: &[Command] = &[
    keyless("ping", -1, FAST | STALE, Route::Local(ping), &["@fast", "@connection"], "Returns the server's liveliness response."),
    keyless("echo", 2, FAST, Route::Local(echo), &["@fast", "@connection"], "Returns the given string."),
    keyless("quit", -1, NO_AUTH | FAST | LOADING | STALE, Route::Conn(quit), &["@fast", "@connection"], "Closes the connection."),
    keyless("select", 2, FAST | LOADING | STALE, Route::Conn(select), &["@fast", "@connection"], "Changes the selected database."),
    keyless(
        "auth",
        -2,
        NO_AUTH | FAST | LOADING | STALE | NOSCRIPT,
        Route::Conn(auth),
        &["@fast", "@connection"],
        "Authenticates the connection.",
    ),
    keyless(
        "hello",
        -1,
        NO_AUTH | FAST | LOADING | STALE | NOSCRIPT,
        Route::Conn(hello),
        &["@fast", "@connection"],
        "Handshakes with the server.",
    ),
    keyless(
        "reset",
        1,
        NO_AUTH | FAST | LOADING | STALE | NOSCRIPT,
        Route::Conn(reset),
        &["@fast", "@connection"],
        "Resets the connection.",
    ),
    keyless("client", -2, CONTAINER, Route::Conn(client_conn), &["@slow", "@connection"], "A container for client connection commands."),
    keyless(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(client_list, Merge::Custom(join_client_list)),
        &["@admin", "@slow", "@dangerous", "@connection"],
        "Lists open connections.",
    ),
    keyless(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(client_kill, Merge::Custom(client_kill_merge)),
        &["@admin", "@slow", "@dangerous", "@connection"],
        "Terminates open connections.",
    ),
];
