//! One client connection: read, parse, route, reply.
//!
//! A connection lives on the shard that accepted it. Each read may carry
//! many pipelined commands; they are parsed in place from the read buffer
//! (no copy), routed as one [`Batch`], and their replies written with one
//! write. Protocol errors and an overfull query buffer answer with an error
//! and close this connection only. Each command is checked against the
//! connection's ACL user ([`crate::acl`]) before it is queued or routed; the
//! user is refreshed once per read when the ACL changed.
//!
//! The loop is generic over [`ClientStream`]: a plain socket, or TLS over
//! one ([`crate::tls`]). Only plain sockets move to another shard.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use strand_engine::runtime::TcpStream;

use crate::acl::User;
use crate::command::{self, arity_error, flags, AsyncCmd, Command, Route};
use crate::dispatch::{Batch, Shard};
use crate::limits::ObufLimits;
use crate::reply::Reply;
use crate::resp::{parse_command, Limits, Parsed, Protocol};
use crate::shard::ClientInfo;
use crate::stats::Call;

/// A handler that needs the connection's own state.
pub type ConnFn = fn(&mut ConnCtx<'_>, &[&[u8]]) -> Reply;

/// What connection-level handlers see.
pub struct ConnCtx<'a> {
    /// The connection.
    pub conn: &'a mut ConnState,
    /// Its shard.
    pub shard: &'a Shard,
}

/// Per-connection state.
pub struct ConnState {
    /// Client id.
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// RESP2 or RESP3.
    pub proto: Protocol,
    /// Whether AUTH succeeded (or the default user needs no password).
    pub authed: bool,
    /// The ACL user the connection runs as (the default user until AUTH).
    pub user: Arc<User>,
    /// The ACL epoch `user` was read at.
    pub acl_epoch: u64,
    /// Close after replying.
    pub quit: bool,
    /// Close at once without replying (SHUTDOWN).
    pub close_now: bool,
    /// What CLIENT LIST shows.
    pub info: Rc<RefCell<ClientInfo>>,
    /// Unix ms when the current read arrived (one clock read per read, not per command).
    pub now_ms: u64,
    /// Commands queued since MULTI.
    pub multi: Option<crate::transaction::Multi>,
    /// WATCHed keys.
    pub watched: Vec<crate::transaction::Watched>,
    /// DISCARD or RESET asked to drop the WATCHes (done after the batch).
    pub unwatch_later: bool,
    /// The next command was deferred for its cold keys once already: run it now.
    pub cold_retry: bool,
    /// Time spent waiting in the blocking command being run across shards,
    /// which its accounted time leaves out (as Redis counts a blocked
    /// command's execution, not its wait).
    pub waited: std::time::Duration,
    /// Pub/sub subscriptions.
    pub subs: crate::command::pubsub::Subscriptions,
    /// The previous request's command when it was not a container: see [`lookup`].
    last_command: Option<(command::table::CmdId, &'static Command)>,
}

impl ConnState {
    fn new(id: u64, db: usize, proto: Protocol, auth: Auth, info: Rc<RefCell<ClientInfo>>) -> ConnState {
        info.borrow_mut().user.clone_from(&auth.user.name);
        ConnState {
            id,
            db,
            proto,
            authed: auth.authed,
            user: auth.user,
            acl_epoch: auth.epoch,
            quit: false,
            close_now: false,
            info,
            now_ms: 0,
            multi: None,
            watched: Vec::new(),
            unwatch_later: false,
            cold_retry: false,
            waited: std::time::Duration::ZERO,
            subs: Default::default(),
            last_command: None,
        }
    }
}

/// A command the connection runs on its own, after the batch before it is answered.
enum Deferred {
    /// A command that may block (BLPOP ...).
    Blocking(&'static Command, Vec<Vec<u8>>),
    /// EXEC, WATCH, UNWATCH.
    Async(AsyncCmd, Vec<Vec<u8>>),
    /// MSET or MSETNX with keys on several shards, for the coordinator.
    Cross(&'static Command, command::table::CmdId, Vec<Vec<u8>>),
    /// A command naming a key that a cross-shard transaction has locked: it
    /// is left in the buffer, and read again once the lock goes.
    Locked(&'static Command, Vec<Vec<u8>>),
    /// A command naming keys of this shard whose values are in the cold
    /// tier: it is left in the buffer, and read again once they are back in memory.
    Cold(Vec<(Vec<u8>, strand_engine::tier::ColdRef)>),
}

const READ_CHUNK: usize = 16 * 1024;
const MAX_BATCH: usize = 4096;

/// After this many batches in a row whose keys all belong to one other
/// shard, the connection moves there, so its commands stop paying a hop.
pub const MIGRATE_AFTER: u32 = 32;

/// Who a connection is: its user, whether it authenticated, and the ACL epoch it saw.
#[derive(Clone)]
pub struct Auth {
    /// Whether AUTH succeeded (or the user needs no password).
    pub authed: bool,
    /// The user.
    pub user: Arc<User>,
    /// The ACL epoch `user` was read at.
    pub epoch: u64,
}

impl Auth {
    /// What a new connection is: the default user, authenticated if it needs no password.
    pub fn fresh(acl: &crate::acl::AclState) -> Auth {
        let epoch = acl.epoch();
        let user = acl.users().default_user();
        Auth { authed: user.open(), user, epoch }
    }
}

/// A connection on its way to another shard: the socket and its state.
pub struct Migrating {
    fd: std::os::fd::RawFd,
    db: usize,
    proto: Protocol,
    auth: Auth,
    info: ClientInfo,
}

/// What a connection reads and writes: a plain socket, or TLS over one.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin {
    /// Whether the connection may move to another shard by its descriptor
    /// (a TLS session's state is in this process, so it cannot).
    const MOVABLE: bool;

    /// The socket underneath: addresses, and the descriptor CLIENT KILL shuts down.
    fn socket(&self) -> &TcpStream;
}

impl ClientStream for TcpStream {
    const MOVABLE: bool = true;

    fn socket(&self) -> &TcpStream {
        self
    }
}

/// How a connection's loop ended.
enum Exit {
    Closed,
    MoveTo(usize),
}

/// Serves a new connection until it closes (or moves to another shard).
pub async fn serve<S: ClientStream>(shard: Rc<Shard>, stream: S) {
    let _ = stream.socket().set_nodelay(true);
    let (id, info) = register(&shard, stream.socket());
    let st = ConnState::new(id, 0, Protocol::Resp2, Auth::fresh(&shard.shared.acl), info);
    serve_state(shard, stream, st).await;
}

/// Takes over a connection that another shard handed over.
pub async fn adopt(shard: Rc<Shard>, m: Migrating) {
    // SAFETY: `fd` is a duplicate made for this handover; nothing else owns it.
    let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(m.fd) };
    let id = m.info.id;
    let st = ConnState::new(id, m.db, m.proto, m.auth, Rc::new(RefCell::new(m.info)));
    shard.state.borrow_mut().stats.adopted += 1;
    serve_state(shard, stream, st).await;
}

async fn serve_state<S: ClientStream>(shard: Rc<Shard>, mut stream: S, mut st: ConnState) {
    let id = st.id;
    st.info.borrow_mut().fd = std::os::fd::AsRawFd::as_raw_fd(stream.socket());
    shard.state.borrow_mut().clients.insert(id, st.info.clone());
    shard.shared.acl.note_session(id, Some(&st.user));
    let exit = run(&shard, &mut st, &mut stream).await;
    if !matches!(exit, Ok(Exit::MoveTo(_))) {
        shard.shared.acl.note_session(id, None);
    }
    if !st.watched.is_empty() {
        crate::transaction::unwatch_all(&shard, &mut st).await;
    }
    crate::command::pubsub::unsubscribe_all(&shard, &mut st);
    {
        let mut state = shard.state.borrow_mut();
        state.clients.remove(&id);
        state.stats.obuf_disconnections += st.info.borrow().obuf_closed as u64;
    }
    match exit {
        Ok(Exit::MoveTo(to)) => match handover(&shard, &st, stream.socket()) {
            Some(m) => {
                // Dropping the stream closes only this descriptor; the socket lives on in the duplicate.
                drop(stream);
                shard.state.borrow_mut().stats.migrated += 1;
                shard.outbox.send(to, crate::dispatch::Msg::Adopt(Box::new(m))).await;
                return;
            }
            None => {
                shard.shared.acl.note_session(id, None);
                tracing::debug!(client = id, "could not hand the connection over; closing it");
            }
        },
        Ok(Exit::Closed) => {}
        Err(e) => tracing::debug!(client = id, error = %e, "connection closed"),
    }
    shard.state.borrow().shared.clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    let _ = stream.close().await;
}

fn handover(shard: &Shard, st: &ConnState, stream: &TcpStream) -> Option<Migrating> {
    // SAFETY: dup(2) of a socket this task owns.
    let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(stream)) };
    if fd < 0 {
        return None;
    }
    tracing::trace!(client = st.id, from = shard.id, "moving connection");
    let auth = Auth { authed: st.authed, user: st.user.clone(), epoch: st.acl_epoch };
    Some(Migrating { fd, db: st.db, proto: st.proto, auth, info: st.info.borrow().clone() })
}

fn register(shard: &Shard, stream: &TcpStream) -> (u64, Rc<RefCell<ClientInfo>>) {
    let st = shard.state.borrow();
    let id = st.shared.client_id();
    let now = strand_engine::clock::unix_ms();
    let info = ClientInfo {
        id,
        addr: stream.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
        laddr: stream.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        resp: 2,
        created_ms: now,
        last_cmd_ms: now,
        // A new connection is not idle: without this, the client sweep could
        // close it between accept and its first read (Redis sets lastinteraction here too).
        last_io_ms: now,
        last_cmd: "NULL".into(),
        ..ClientInfo::default()
    };
    (id, Rc::new(RefCell::new(info)))
}

/// Takes the new version of the connection's user after an ACL change;
/// false when the user was deleted (the connection then closes, as in Redis).
fn refresh_user(shard: &Shard, st: &mut ConnState) -> bool {
    let epoch = shard.shared.acl.epoch();
    if epoch == st.acl_epoch {
        return true;
    }
    st.acl_epoch = epoch;
    match shard.shared.acl.users().get(&st.user.name) {
        Some(u) => {
            st.user = u.clone();
            shard.shared.acl.note_session(st.id, Some(u));
            true
        }
        None => false,
    }
}

async fn run<S: ClientStream>(shard: &Rc<Shard>, st: &mut ConnState, stream: &mut S) -> std::io::Result<Exit> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut affinity = Affinity::default();
    let (mut start, mut end, mut need) = (0usize, 0usize, 0usize);
    let mut ranges = Vec::new();
    let mut out = Vec::with_capacity(READ_CHUNK);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                // Grow by doubling, never by what a length prefix claims: the bytes must arrive first.
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = match st.subs.mailbox.is_some() {
            true => read_or_deliver(st, stream, &mut buf[end..]).await?,
            false => stream.read(&mut buf[end..]).await?,
        };
        st.now_ms = strand_engine::clock::unix_ms();
        if n == 0 || note_read(st) || !refresh_user(shard, st) {
            return Ok(Exit::Closed);
        }
        end += n;
        shard.state.borrow_mut().stats.net_in += n as u64;
        if end - start < need {
            // A frame still arriving counts against the query buffer limit too.
            if end - start > qlimit(shard) {
                return query_buffer_full(shard, st, stream).await;
            }
            continue;
        }
        let (limits, obuf) = {
            let s = shard.state.borrow();
            let limits = Limits { max_bulk_len: s.config.proto_max_bulk_len, ..Limits::default() };
            (limits, s.config.client_output_buffer_limit)
        };
        loop {
            let mut batch = Batch::new(shard);
            let mut fatal = false;
            let mut deferred = None;
            // One vector of argument slices for the whole batch, not one per command.
            let mut args: Vec<&[u8]> = Vec::with_capacity(8);
            shard.run_of_commands(true);
            while batch.len() < MAX_BATCH && !st.quit && !st.close_now {
                match parse_command(&buf[start..end], &limits, &mut ranges) {
                    Ok(Parsed::Command { consumed }) => {
                        let base = start;
                        args.clear();
                        args.extend(ranges.iter().map(|&(s, l)| &buf[base + s..base + s + l]));
                        deferred = handle(shard, st, &mut batch, &args);
                        if !matches!(deferred, Some(Deferred::Locked(..) | Deferred::Cold(_))) {
                            start += consumed;
                        }
                    }
                    Ok(Parsed::Inline { consumed, args: owned }) => {
                        let inline: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                        deferred = handle(shard, st, &mut batch, &inline);
                        if !matches!(deferred, Some(Deferred::Locked(..) | Deferred::Cold(_))) {
                            start += consumed;
                        }
                    }
                    Ok(Parsed::Skip { consumed }) => start += consumed,
                    Ok(Parsed::Incomplete { need: k }) => {
                        need = k;
                        break;
                    }
                    Err(e) => {
                        batch.push_reply(Reply::error(e.0), st.proto);
                        fatal = true;
                        break;
                    }
                }
                if deferred.is_some() {
                    break;
                }
            }
            shard.run_of_commands(false);
            let more = batch.len() == MAX_BATCH || deferred.is_some();
            if st.close_now {
                return Ok(Exit::Closed);
            }
            affinity.note(batch.target(), shard.id);
            if !batch.is_empty() {
                batch.finish(shard, &mut out).await;
                shard.state.borrow_mut().stats.net_out += out.len() as u64;
                // Let the shard's other ready connections run first, so replies
                // leave in a cluster, as Redis writes them all before it sleeps:
                // a client reading many connections is then woken once for
                // several replies instead of once for each (an IPI per wake-up).
                YieldOnce(false).await;
                write_out(st, &obuf, stream, &out).await?;
                out.clear();
            }
            if st.unwatch_later {
                crate::transaction::unwatch_all(shard, st).await;
            }
            if let Some(Deferred::Locked(cmd, owned)) = &deferred {
                let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                shard.wait_unlocked(cmd, st.db, &args).await;
            } else if let Some(Deferred::Cold(keys)) = deferred {
                crate::tiering::warm(shard, st.db, keys).await;
                // Read again, it runs even if a read failed (and answers the error).
                st.cold_retry = true;
            } else if let Some(d) = deferred {
                let Some(reply) = run_deferred(shard, st, stream, d, &mut buf, &mut end).await? else {
                    return Ok(Exit::Closed);
                };
                crate::resp::encode(&reply, st.proto, &mut out);
                shard.state.borrow_mut().stats.net_out += out.len() as u64;
                write_out(st, &obuf, stream, &out).await?;
                out.clear();
            }
            if fatal || st.quit {
                return Ok(Exit::Closed);
            }
            if !more {
                break;
            }
        }
        if start == end {
            start = 0;
            end = 0;
            need = 0;
            if buf.len() > 4 * READ_CHUNK {
                buf.truncate(READ_CHUNK);
                buf.shrink_to_fit();
            }
        }
        st.info.borrow_mut().qbuf = end - start;
        if end - start > qlimit(shard) {
            return query_buffer_full(shard, st, stream).await;
        }
        // Move only between requests, with nothing buffered and no transaction state.
        if let Some(to) = affinity.destination() {
            let settled = st.multi.is_none() && st.watched.is_empty() && st.subs.mailbox.is_none();
            if S::MOVABLE && start == end && settled && shard.state.borrow().config.migrate_connections {
                return Ok(Exit::MoveTo(to));
            }
        }
    }
}

/// `client-query-buffer-limit` as configured now.
fn qlimit(shard: &Shard) -> usize {
    shard.state.borrow().config.client_query_buffer_limit
}

/// Answers a client over the query buffer limit with an error, and closes it.
async fn query_buffer_full<S: ClientStream>(shard: &Shard, st: &ConnState, stream: &mut S) -> std::io::Result<Exit> {
    shard.state.borrow_mut().stats.qbuf_disconnections += 1;
    let mut out = Vec::new();
    crate::resp::encode(&Reply::error("ERR client query buffer limit reached; closing the connection"), st.proto, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(Exit::Closed)
}

/// Notes a read for the idle timeout; true when the connection was killed (CLIENT KILL, a limit).
fn note_read(st: &ConnState) -> bool {
    let mut info = st.info.borrow_mut();
    info.last_io_ms = st.now_ms;
    info.killed
}

/// Bytes written to the socket at a time, so that pending output shrinks as it goes.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes replies; until written they count as the client's pending output.
/// Replies that break the client's output buffer limit close it instead.
async fn write_out<S: ClientStream>(st: &ConnState, limits: &ObufLimits, stream: &mut S, out: &[u8]) -> std::io::Result<()> {
    if crate::limits::add_output(&mut st.info.borrow_mut(), out.len(), limits) {
        return Err(std::io::Error::other("closed for overcoming its output buffer limit"));
    }
    for chunk in out.chunks(WRITE_CHUNK) {
        stream.write_all(chunk).await?;
        // TLS holds the last records until flushed; for a plain socket this is a no-op.
        stream.flush().await?;
        crate::limits::written(&mut st.info.borrow_mut(), chunk.len(), strand_engine::clock::unix_ms());
    }
    Ok(())
}

/// Counts batches in a row whose keys all belong to the same other shard.
#[derive(Default)]
struct Affinity {
    shard: usize,
    streak: u32,
}

impl Affinity {
    fn note(&mut self, target: crate::dispatch::Target, me: usize) {
        match target {
            crate::dispatch::Target::One(s) if s != me => {
                self.streak = if s == self.shard { self.streak + 1 } else { 1 };
                self.shard = s;
            }
            crate::dispatch::Target::None => {}
            _ => self.streak = 0,
        }
    }

    fn destination(&self) -> Option<usize> {
        (self.streak >= MIGRATE_AFTER).then_some(self.shard)
    }
}

/// Answers a command refused before it ran (arity, NOAUTH, NOPERM): it
/// counts as rejected and dooms an open transaction. As Redis's
/// `rejectCommand`, a refused EXEC also discards the transaction and answers
/// EXECABORT with the reason.
fn refuse(shard: &Shard, st: &mut ConnState, batch: &mut Batch, id: command::table::CmdId, cmd: &Command, reply: Reply) {
    st.multi.iter_mut().for_each(|m| m.dirty = true);
    shard.reject(id, &reply);
    let reply = match &reply {
        Reply::Error(e) if cmd.name == "exec" => {
            st.multi = None;
            st.unwatch_later |= !st.watched.is_empty();
            Reply::error(format!("EXECABORT Transaction discarded because of: {}", e.strip_prefix("ERR ").unwrap_or(e)))
        }
        _ => reply,
    };
    batch.push_reply(reply, st.proto);
}

/// Looks up, checks and routes one command; returns it instead if the
/// connection must run it on its own (blocking commands, EXEC, WATCH ...).
/// The table entry for a request, trying the connection's previous command
/// first: a pipeline mostly repeats one command, and comparing a name is
/// cheaper than lower-casing and hashing it. Containers (CLIENT, CONFIG ...)
/// are looked up every time, since their entry depends on the subcommand.
fn lookup(st: &mut ConnState, args: &[&[u8]]) -> Option<(command::table::CmdId, &'static Command)> {
    if let (Some((id, cmd)), Some(name)) = (st.last_command, args.first()) {
        if name.eq_ignore_ascii_case(cmd.name.as_bytes()) {
            return Some((id, cmd));
        }
    }
    let found = command::table::lookup_id(args)?;
    if found.1.flags & flags::CONTAINER == 0 && !found.1.name.contains('|') {
        st.last_command = Some(found);
    }
    Some(found)
}

fn handle(shard: &Shard, st: &mut ConnState, batch: &mut Batch, args: &[&[u8]]) -> Option<Deferred> {
    let Some((id, cmd)) = lookup(st, args) else {
        st.multi.iter_mut().for_each(|m| m.dirty = true);
        let reply = unknown_command(args);
        shard.note_error(&reply);
        batch.push_reply(reply, st.proto);
        return None;
    };
    {
        let mut info = st.info.borrow_mut();
        info.last_cmd_ms = st.now_ms;
        info.last_cmd.clear();
        info.last_cmd.push_str(cmd.name);
        if cmd.flags & flags::CONTAINER != 0 && args.len() > 1 {
            info.last_cmd.push('|');
            info.last_cmd.push_str(&String::from_utf8_lossy(args[1]).to_ascii_lowercase());
        }
    }
    if !cmd.arity_ok(args.len()) {
        refuse(shard, st, batch, id, cmd, arity_error(&display_name(cmd, args)));
        return None;
    }
    if !st.authed && cmd.flags & flags::NO_AUTH == 0 {
        refuse(shard, st, batch, id, cmd, Reply::error("NOAUTH Authentication required."));
        return None;
    }
    if !st.user.unrestricted() {
        if let Some(denied) = st.user.check(id as usize, cmd, args) {
            let line = crate::command::connection::client_line(&st.info.borrow(), st.now_ms);
            shard.shared.acl.log(Some(&denied), st.multi.is_some(), &st.user.name, line.trim_end().to_string());
            refuse(shard, st, batch, id, cmd, Reply::error(denied.message(&st.user.name)));
            return None;
        }
    }
    if st.subs.count() > 0 && st.proto == Protocol::Resp2 {
        match cmd.name {
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "quit" | "reset" => {}
            "ping" => {
                let arg = args.get(1).copied().unwrap_or_default();
                batch.push_reply(Reply::Array(vec![Reply::bulk("pong"), Reply::bulk(arg)]), st.proto);
                return None;
            }
            name => {
                let msg = format!(
                    "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                );
                let reply = Reply::error(msg);
                shard.reject(id, &reply);
                batch.push_reply(reply, st.proto);
                return None;
            }
        }
    }
    let owned = || args.iter().map(|a| a.to_vec()).collect();
    if let Some(m) = st.multi.as_mut() {
        if !matches!(cmd.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            let refused = crate::oom::admit_queued(&mut shard.state.borrow_mut());
            if let Some(refused) = refused {
                m.dirty = true;
                shard.reject(id, &refused);
                batch.push_reply(refused, st.proto);
                return None;
            }
            m.push(args);
            batch.push_reply(Reply::simple("QUEUED"), st.proto);
            return None;
        }
    }
    match cmd.route {
        Route::Conn(f) => {
            let proto = st.proto;
            let started = shard.begin();
            let reply = f(&mut ConnCtx { conn: st, shard }, args);
            shard.account(Call::Command(id), started, st.id, args, &reply);
            // A slow connection command (CLIENT LIST on many clients ...): the
            // next command reads the clock afresh (see `Clock::run`).
            if crate::dispatch::may_be_slow(Some(cmd), args) {
                shard.state.borrow().ks.clock_fresh();
            }
            // HELLO answers in the protocol it switches to.
            let proto = if cmd.name == "hello" && !reply.is_error() { st.proto } else { proto };
            batch.push_reply(reply, proto);
            None
        }
        Route::Async(a) => Some(Deferred::Async(a, owned())),
        _ if cmd.flags & flags::BLOCKING != 0 => match blocking_now(shard, st, batch, cmd, id, args) {
            Some(reply) => {
                batch.push_reply(reply, st.proto);
                None
            }
            None => Some(Deferred::Blocking(cmd, owned())),
        },
        _ if crate::coordinator::spans_shards(shard, cmd, args) => Some(Deferred::Cross(cmd, id, owned())),
        _ if shard.has_locks() && shard.names_locked(cmd, st.db, args) => Some(Deferred::Locked(cmd, owned())),
        _ => {
            if !std::mem::take(&mut st.cold_retry) {
                let cold = crate::tiering::cold_keys(&shard.state.borrow(), cmd, st.db, args);
                if !cold.is_empty() {
                    return Some(Deferred::Cold(cold));
                }
            }
            batch.route(shard, cmd, id, args, st.db, st.id, st.proto);
            None
        }
    }
}

/// A blocking command (BLPOP, XREAD, QPOP ...) whose keys this shard owns,
/// free of locks and resident, answered in the pipeline when it would not
/// wait (it found something, or has no BLOCK), as any command; None when it
/// must run as a deferred command (it would wait, or its keys are
/// elsewhere). A run that would wait took nothing, and the deferred run
/// tries again. Either way the batch is aimed at the keys' shard, so a
/// connection that keeps blocking on another shard's keys moves there.
fn blocking_now(
    shard: &Shard,
    st: &ConnState,
    batch: &mut Batch,
    cmd: &Command,
    id: command::table::CmdId,
    args: &[&[u8]],
) -> Option<Reply> {
    let Route::Key(handler) = cmd.route else { return None };
    let mut owners = cmd.keys_of(args).map(|i| shard.shared.slots.shard_of(args[i]));
    let owner = owners.next()?;
    if owners.any(|o| o != owner) {
        return None;
    }
    batch.aim(owner);
    if owner != shard.id || (shard.has_locks() && shard.names_locked(cmd, st.db, args)) {
        return None;
    }
    if !crate::tiering::cold_keys(&shard.state.borrow(), cmd, st.db, args).is_empty() {
        return None;
    }
    if let Some(refused) = crate::oom::admit(&mut shard.state.borrow_mut(), args) {
        shard.reject(id, &refused);
        return Some(refused);
    }
    let started = shard.begin();
    // Run as it would block, so that one which would wait says so (and is
    // run again as a deferred command), while one without BLOCK that finds
    // nothing (XREAD, QPOP) is answered here.
    let (reply, blocked) = shard.exec_with(handler, Call::Untracked, st.db, st.id, args, true);
    if blocked.is_some() {
        return None;
    }
    shard.serve_ready();
    shard.account(Call::Command(id), started, st.id, args, &reply);
    Some(reply)
}

/// Whether the keys of a command held as owned arguments live on more than one shard.
fn owned_apart(shard: &Shard, cmd: &Command, owned: &[Vec<u8>]) -> bool {
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    shard.outbox.shards() > 1 && crate::coordinator::keys_apart(shard, cmd, &args)
}

/// A blocking command whose keys live on several shards: BLMOVE and
/// BRPOPLPUSH ([`blocking_move`]), XREAD and XREADGROUP ([`stream_read`]),
/// the pops over several keys ([`pop_across`], which also runs LMPOP and
/// ZMPOP). None if the client went away while it waited.
async fn blocking_across<S: ClientStream>(
    shard: &Rc<Shard>,
    st: &mut ConnState,
    stream: &mut S,
    cmd: &'static Command,
    owned: Vec<Vec<u8>>,
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let started = shard.begin();
    st.waited = std::time::Duration::ZERO;
    let call = command::table::id_of(cmd.name).map_or(Call::Untracked, Call::Command);
    let reply = match cmd.name {
        "xread" | "xreadgroup" => stream_read(shard, st, stream, cmd, &args, buf, end).await?,
        name if crate::pops::pops(name) => pop_across(shard, st, stream, cmd, &args, buf, end).await?,
        _ => blocking_move(shard, st, stream, cmd, &args, buf, end).await?,
    };
    let Some(reply) = reply else { return Ok(None) };
    st.info.borrow_mut().last_io_ms = strand_engine::clock::unix_ms();
    shard.account(call, started + std::mem::take(&mut st.waited), st.id, &args, &reply);
    Ok(Some(reply))
}

/// [`wait_blocked`], with the client shown as blocked meanwhile.
async fn wait_shown<S: ClientStream>(
    st: &mut ConnState,
    stream: &mut S,
    pending: impl std::future::Future<Output = Reply> + Unpin,
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    st.info.borrow_mut().blocked = true;
    let began = std::time::Instant::now();
    let waited = wait_blocked(stream, pending, buf, end).await;
    st.waited += began.elapsed();
    st.info.borrow_mut().blocked = false;
    waited
}

/// BLMOVE or BRPOPLPUSH between lists on different shards: tries the move
/// (a cross-shard transaction, which a client going away does not cut
/// short), and while the source is empty waits on its shard for an element
/// (a wait the client's going away ends), until the timeout.
async fn blocking_move<S: ClientStream>(
    shard: &Rc<Shard>,
    st: &mut ConnState,
    stream: &mut S,
    cmd: &'static Command,
    args: &[&[u8]],
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    let (lmove, timeout) = match crate::moves::blocking_parts(cmd, args) {
        Ok(parts) => parts,
        Err(e) => return Ok(Some(e)),
    };
    let lmove: Vec<&[u8]> = lmove.iter().map(Vec::as_slice).collect();
    let Some((id, lmove_cmd)) = command::table::lookup_id(&lmove) else {
        return Ok(Some(Reply::error("ERR LMOVE is missing from the command table")));
    };
    let deadline = timeout.map(|t| strand_engine::clock::unix_ms().saturating_add(t));
    let (db, caller) = (st.db, st.id);
    let attempt = || async {
        let reply = crate::moves::run(shard, lmove_cmd, id, db, caller, &lmove).await;
        (!matches!(reply, Reply::Nil)).then_some(reply)
    };
    if let Some(reply) = attempt().await {
        return Ok(Some(reply));
    }
    let wait = |ms| crate::moves::wait_for_element(shard, db, caller, args[1], ms);
    wait_and_retry(st, stream, buf, end, deadline, attempt, wait).await
}

/// A pop over keys on several shards ([`crate::pops`]): tries them in
/// order, and for a blocking form waits while none had anything, until the
/// timeout.
async fn pop_across<S: ClientStream>(
    shard: &Rc<Shard>,
    st: &mut ConnState,
    stream: &mut S,
    cmd: &'static Command,
    args: &[&[u8]],
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    let started = strand_engine::clock::unix_ms();
    let plan = match crate::pops::plan(shard, cmd, args) {
        Ok(plan) => plan,
        Err(e) => return Ok(Some(e)),
    };
    let (db, caller) = (st.db, st.id);
    let attempt = || crate::pops::try_once(shard, &plan, db, caller);
    if let Some(reply) = attempt().await {
        return Ok(Some(reply));
    }
    // The first try answered any syntax error, so the timeout parses.
    let deadline = match crate::pops::timeout(cmd, args) {
        Ok(Some(t)) => t.map(|t| started.saturating_add(t)),
        Ok(None) => return Ok(Some(Reply::NilArray)),
        Err(e) => return Ok(Some(e)),
    };
    let wait = |ms| crate::pops::wait(shard, &plan, db, caller, ms);
    wait_and_retry(st, stream, buf, end, deadline, attempt, wait).await
}

/// After a try of a blocking command across shards took nothing: waits
/// (`wait` with the time left) and tries again, until a try answers or the
/// deadline passes (a nil array then, as a blocked command's timeout on one
/// shard). None if the client went away while it waited.
async fn wait_and_retry<S, T, W>(
    st: &mut ConnState,
    stream: &mut S,
    buf: &mut [u8],
    end: &mut usize,
    deadline: Option<u64>,
    attempt: impl Fn() -> T,
    wait: impl Fn(Option<u64>) -> W,
) -> std::io::Result<Option<Reply>>
where
    S: ClientStream,
    T: std::future::Future<Output = Option<Reply>>,
    W: std::future::Future<Output = Reply> + Unpin,
{
    loop {
        let now = strand_engine::clock::unix_ms();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(Some(Reply::NilArray));
        }
        // Woken or timed out, the next try decides (a shard's timer may fire a millisecond early).
        if wait_shown(st, stream, wait(deadline.map(|d| d - now)), buf, end).await?.is_none() {
            return Ok(None);
        }
        if let Some(reply) = attempt().await {
            return Ok(Some(reply));
        }
    }
}

/// XREAD or XREADGROUP over streams on several shards
/// ([`crate::stream_reads`]): the answer now, or with BLOCK and nothing yet,
/// the wait (XREAD), or waits that deliver nothing and reads again
/// (XREADGROUP), until the timeout.
async fn stream_read<S: ClientStream>(
    shard: &Rc<Shard>,
    st: &mut ConnState,
    stream: &mut S,
    cmd: &'static Command,
    args: &[&[u8]],
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    let started = strand_engine::clock::unix_ms();
    let split = match crate::stream_reads::split(shard, cmd, args) {
        Ok(split) => split,
        Err(e) => return Ok(Some(e)),
    };
    let (db, caller) = (st.db, st.id);
    if let Some(reply) = crate::stream_reads::try_now(shard, cmd, &split, db, caller).await {
        return Ok(Some(reply));
    }
    if cmd.name == "xreadgroup" {
        let deadline = split.timeout().map(|t| started.saturating_add(t));
        let attempt = || crate::stream_reads::try_now(shard, cmd, &split, db, caller);
        let wait = |ms| crate::stream_reads::wait_group(shard, &split, db, caller, ms);
        return wait_and_retry(st, stream, buf, end, deadline, attempt, wait).await;
    }
    let wait = crate::stream_reads::wait(shard, cmd, split, db, caller);
    wait_shown(st, stream, wait, buf, end).await
}

/// Waits for bytes from the client while writing out pub/sub messages as they arrive.
async fn read_or_deliver<S: ClientStream>(st: &mut ConnState, stream: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    use futures::StreamExt;
    let mut out = Vec::new();
    loop {
        let Some((_, rx)) = st.subs.mailbox.as_mut() else { return stream.read(buf).await };
        let next = {
            let read = stream.read(buf);
            futures::pin_mut!(read);
            match futures::future::select(read, rx.next()).await {
                futures::future::Either::Left((n, _)) => return n,
                futures::future::Either::Right((msg, _)) => msg,
            }
        };
        let Some(msg) = next else { return stream.read(buf).await };
        crate::resp::encode(&msg, st.proto, &mut out);
        while let Ok(more) = rx.try_recv() {
            crate::resp::encode(&more, st.proto, &mut out);
        }
        stream.write_all(&out).await?;
        stream.flush().await?;
        crate::limits::written(&mut st.info.borrow_mut(), out.len(), strand_engine::clock::unix_ms());
        out.clear();
    }
}

/// Runs a deferred command; None if the client went away while it waited.
async fn run_deferred<S: ClientStream>(
    shard: &Rc<Shard>,
    st: &mut ConnState,
    stream: &mut S,
    d: Deferred,
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    let (cmd, owned) = match d {
        Deferred::Locked(..) | Deferred::Cold(_) => unreachable!("a locked or cold command is read again, not run"),
        Deferred::Cross(cmd, id, owned) => {
            let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            let started = shard.begin();
            if crate::pops::pops(cmd.name) {
                return blocking_across(shard, st, stream, cmd, owned, buf, end).await;
            }
            let reply = match cmd.name {
                "mset" | "msetnx" => crate::coordinator::mset(shard, cmd, id, st.db, st.id, &args).await,
                name if crate::gather::gathers(name) => crate::gather::run(shard, cmd, id, st.db, st.id, &args).await,
                _ => crate::moves::run(shard, cmd, id, st.db, st.id, &args).await,
            };
            shard.account(Call::Command(id), started, st.id, &args, &reply);
            return Ok(Some(reply));
        }
        Deferred::Async(a, owned) => {
            let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            let started = shard.begin();
            let reply = match a {
                AsyncCmd::Exec => crate::transaction::exec(shard, st).await,
                AsyncCmd::Watch => crate::transaction::watch(shard, st, &args).await,
                AsyncCmd::Unwatch => {
                    crate::transaction::unwatch_all(shard, st).await;
                    Reply::Ok
                }
                AsyncCmd::Save => crate::checkpoint::everywhere(shard, crate::checkpoint::Ask::Save).await,
                AsyncCmd::BgSave => crate::checkpoint::bgsave(shard, &args).await,
                AsyncCmd::Search => crate::command::search_query::search(shard, st.db, st.id, st.proto, &args).await,
                AsyncCmd::Aggregate => crate::command::search_aggregate::aggregate(shard, st.db, st.id, st.proto, &args).await,
            };
            // Its time includes the waits for other shards.
            let call = command::table::lookup_id(&args).map_or(Call::Untracked, |(id, _)| Call::Command(id));
            shard.account(call, started, st.id, &args, &reply);
            return Ok(Some(reply));
        }
        Deferred::Blocking(cmd, owned)
            if (crate::moves::blocking_moves(cmd.name) || crate::stream_reads::reads(cmd.name) || crate::pops::pops(cmd.name))
                && owned_apart(shard, cmd, &owned) =>
        {
            return blocking_across(shard, st, stream, cmd, owned, buf, end).await;
        }
        Deferred::Blocking(cmd, owned) => (cmd, owned),
    };
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    shard.wait_unlocked(cmd, st.db, &args).await;
    let pending = crate::dispatch::blocking(shard, cmd, &args, st.db, st.id);
    st.info.borrow_mut().blocked = true;
    let reply = wait_blocked(stream, pending, buf, end).await;
    let mut info = st.info.borrow_mut();
    info.blocked = false;
    info.last_io_ms = strand_engine::clock::unix_ms();
    reply
}

/// Waits for a blocking command's reply; None if the client went away meanwhile.
async fn wait_blocked<S: ClientStream>(
    stream: &mut S,
    mut pending: impl std::future::Future<Output = Reply> + Unpin,
    buf: &mut [u8],
    end: &mut usize,
) -> std::io::Result<Option<Reply>> {
    // While it waits, keep reading: bytes are kept for later, and a closed socket cancels the wait.
    loop {
        if *end == buf.len() {
            return Ok(Some(pending.await));
        }
        let read = stream.read(&mut buf[*end..]);
        futures::pin_mut!(read);
        match futures::future::select(pending, read).await {
            futures::future::Either::Left((reply, _)) => return Ok(Some(reply)),
            futures::future::Either::Right((n, rest)) => {
                let n = n?;
                if n == 0 {
                    return Ok(None);
                }
                *end += n;
                pending = rest;
            }
        }
    }
}

fn display_name(cmd: &Command, args: &[&[u8]]) -> String {
    match cmd.name.split_once('|') {
        Some(_) => cmd.name.to_string(),
        None => String::from_utf8_lossy(args[0]).to_lowercase(),
    }
}

/// Redis's error for a command it does not know.
pub fn unknown_command(args: &[&[u8]]) -> Reply {
    let clip = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
    let mut msg = format!("ERR unknown command '{}', with args beginning with: ", clip(args[0]));
    for a in &args[1..] {
        msg.push_str(&format!("'{}' ", clip(a)));
    }
    Reply::error(msg)
}

/// Lets the other ready tasks of this shard run once before the caller goes on.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
