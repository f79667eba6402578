//! One client connection: read, parse, route, reply.
//!
//! A connection lives on the shard that accepted it. Each read may carry
//! many pipelined commands; they are parsed in place from the read buffer
//! (no copy), routed as one [`Batch`], and their replies written with one
//! write. Protocol errors and an overfull query buffer answer with an error
//! and close this connection only.

use std::cell::RefCell;
use std::rc::Rc;

use futures::{AsyncReadExt, AsyncWriteExt};
use strand_engine::runtime::TcpStream;

use crate::command::{self, arity_error, flags, Command, Route};
use crate::dispatch::{Batch, Shard};
use crate::reply::Reply;
use crate::resp::{parse_command, Limits, Parsed, Protocol};
use crate::shard::ClientInfo;

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
    /// Whether AUTH succeeded (or no password is set).
    pub authed: bool,
    /// Close after replying.
    pub quit: bool,
    /// Close at once without replying (SHUTDOWN).
    pub close_now: bool,
    /// What CLIENT LIST shows.
    pub info: Rc<RefCell<ClientInfo>>,
    /// Unix ms when the current read arrived (one clock read per read, not per command).
    pub now_ms: u64,
}

const READ_CHUNK: usize = 16 * 1024;
const MAX_BATCH: usize = 4096;

/// After this many batches in a row whose keys all belong to one other
/// shard, the connection moves there, so its commands stop paying a hop.
pub const MIGRATE_AFTER: u32 = 32;

/// A connection on its way to another shard: the socket and its state.
pub struct Migrating {
    fd: std::os::fd::RawFd,
    db: usize,
    proto: Protocol,
    authed: bool,
    info: ClientInfo,
}

/// How a connection's loop ended.
enum Exit {
    Closed,
    MoveTo(usize),
}

/// Serves a new connection until it closes (or moves to another shard).
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (id, info, authed) = register(&shard, &stream);
    let st = ConnState { id, db: 0, proto: Protocol::Resp2, authed, quit: false, close_now: false, info, now_ms: 0 };
    serve_state(shard, stream, st).await;
}

/// Takes over a connection that another shard handed over.
pub async fn adopt(shard: Rc<Shard>, m: Migrating) {
    // SAFETY: `fd` is a duplicate made for this handover; nothing else owns it.
    let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(m.fd) };
    let id = m.info.id;
    let st = ConnState {
        id,
        db: m.db,
        proto: m.proto,
        authed: m.authed,
        quit: false,
        close_now: false,
        info: Rc::new(RefCell::new(m.info)),
        now_ms: 0,
    };
    shard.state.borrow_mut().stats.adopted += 1;
    serve_state(shard, stream, st).await;
}

async fn serve_state(shard: Rc<Shard>, mut stream: TcpStream, mut st: ConnState) {
    let id = st.id;
    st.info.borrow_mut().fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    shard.state.borrow_mut().clients.insert(id, st.info.clone());
    let exit = run(&shard, &mut st, &mut stream).await;
    shard.state.borrow_mut().clients.remove(&id);
    match exit {
        Ok(Exit::MoveTo(to)) => match handover(&shard, &st, &stream) {
            Some(m) => {
                // Dropping the stream closes only this descriptor; the socket lives on in the duplicate.
                drop(stream);
                shard.state.borrow_mut().stats.migrated += 1;
                shard.outbox.send(to, crate::dispatch::Msg::Adopt(m)).await;
                return;
            }
            None => tracing::debug!(client = id, "could not hand the connection over; closing it"),
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
    Some(Migrating { fd, db: st.db, proto: st.proto, authed: st.authed, info: st.info.borrow().clone() })
}

fn register(shard: &Shard, stream: &TcpStream) -> (u64, Rc<RefCell<ClientInfo>>, bool) {
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
        last_cmd: "NULL".into(),
        ..ClientInfo::default()
    };
    (id, Rc::new(RefCell::new(info)), st.config.requirepass.is_none())
}

async fn run(shard: &Rc<Shard>, st: &mut ConnState, stream: &mut TcpStream) -> std::io::Result<Exit> {
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
        let n = stream.read(&mut buf[end..]).await?;
        if n == 0 || st.info.borrow().killed {
            return Ok(Exit::Closed);
        }
        end += n;
        st.now_ms = strand_engine::clock::unix_ms();
        shard.state.borrow_mut().stats.net_in += n as u64;
        if end - start < need {
            continue;
        }
        let (limits, qlimit) = {
            let s = shard.state.borrow();
            let limits = Limits { max_bulk_len: s.config.proto_max_bulk_len, ..Limits::default() };
            (limits, s.config.client_query_buffer_limit)
        };
        loop {
            let mut batch = Batch::new(shard);
            let mut fatal = false;
            // One vector of argument slices for the whole batch, not one per command.
            let mut args: Vec<&[u8]> = Vec::with_capacity(8);
            while batch.len() < MAX_BATCH && !st.quit && !st.close_now {
                match parse_command(&buf[start..end], &limits, &mut ranges) {
                    Ok(Parsed::Command { consumed }) => {
                        let base = start;
                        args.clear();
                        args.extend(ranges.iter().map(|&(s, l)| &buf[base + s..base + s + l]));
                        handle(shard, st, &mut batch, &args);
                        start += consumed;
                    }
                    Ok(Parsed::Inline { consumed, args: owned }) => {
                        let inline: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                        handle(shard, st, &mut batch, &inline);
                        start += consumed;
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
            }
            let more = batch.len() == MAX_BATCH;
            if st.close_now {
                return Ok(Exit::Closed);
            }
            affinity.note(batch.target(), shard.id);
            if !batch.is_empty() {
                batch.finish(shard, &mut out).await;
                shard.state.borrow_mut().stats.net_out += out.len() as u64;
                stream.write_all(&out).await?;
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
        if end - start > qlimit {
            let mut out = Vec::new();
            crate::resp::encode(&Reply::error("ERR client query buffer limit reached; closing the connection"), st.proto, &mut out);
            stream.write_all(&out).await?;
            return Ok(Exit::Closed);
        }
        // Move only between requests, with nothing buffered.
        if let Some(to) = affinity.destination() {
            if start == end && shard.state.borrow().config.migrate_connections {
                return Ok(Exit::MoveTo(to));
            }
        }
    }
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

/// Looks up, checks and routes one command.
fn handle(shard: &Shard, st: &mut ConnState, batch: &mut Batch, args: &[&[u8]]) {
    let Some(cmd) = command::lookup(args) else {
        batch.push_reply(unknown_command(args), st.proto);
        return;
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
        batch.push_reply(arity_error(&display_name(cmd, args)), st.proto);
        return;
    }
    if !st.authed && cmd.flags & flags::NO_AUTH == 0 {
        batch.push_reply(Reply::error("NOAUTH Authentication required."), st.proto);
        return;
    }
    match cmd.route {
        Route::Conn(f) => {
            let proto = st.proto;
            let reply = f(&mut ConnCtx { conn: st, shard }, args);
            // HELLO answers in the protocol it switches to.
            let proto = if cmd.name == "hello" && !reply.is_error() { st.proto } else { proto };
            batch.push_reply(reply, proto);
        }
        _ => batch.route(shard, cmd, args, st.db, st.id, st.proto),
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
