//! Idempotent production for streams, as Redis 8.6: XADD's `IDMP pid iid`
//! and `IDMPAUTO pid` options (parsed here, applied by
//! [`super::streams::xadd`]), [XCFGSET](https://redis.io/docs/latest/commands/xcfgset/)
//! and the IDMP fields of XINFO STREAM.
//!
//! The state lives in the stream ([`strand_engine::keyspace::idmp`]) and is
//! written by the stream's own records, so a retried XADD is recognised
//! after a restart exactly as before it, within the producer's window.

use strand_engine::keyspace::idmp;
use strand_engine::keyspace::stream::{Stream, StreamChange};
use strand_engine::keyspace::{Change, Op};

use super::streams::{peek, reply};
use super::strings::{db8, int_arg, write};
use super::{err, Ctx};
use crate::reply::Reply;

/// XADD with both options, or one twice.
pub const TWICE: &str = "ERR IDMP/IDMPAUTO specified multiple times";
/// XADD with an explicit entry ID.
pub const AUTO_IDS_ONLY: &str = "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs";

/// Checks XADD's `IDMP pid iid` (`iid` given) or `IDMPAUTO pid`.
pub fn parse<'a>(auto: bool, pid: &'a [u8], iid: Option<&'a [u8]>) -> Result<(&'a [u8], Option<&'a [u8]>), Reply> {
    let name = if auto { "IDMPAUTO" } else { "IDMP" };
    if pid.is_empty() {
        return Err(Reply::error(format!("ERR {name} requires a non-empty producer ID")));
    }
    if iid.is_some_and(<[u8]>::is_empty) {
        return Err(Reply::error("ERR IDMP requires a non-empty idempotent ID"));
    }
    Ok((pid, iid))
}

/// XCFGSET key [IDMP-DURATION seconds] [IDMP-MAXSIZE count]: sets the
/// stream's IDMP limits; a change of either forgets every remembered iid.
pub fn xcfgset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xcfgset_inner(ctx, args))
}

fn xcfgset_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    if args.len() == 2 {
        return Err(Reply::error("ERR At least one parameter must be specified: IDMP-DURATION or IDMP-MAXSIZE"));
    }
    let (mut duration, mut maxsize) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let duration_opt = args[i].eq_ignore_ascii_case(b"idmp-duration");
        if !duration_opt && !args[i].eq_ignore_ascii_case(b"idmp-maxsize") {
            return Err(Reply::error(err::SYNTAX));
        }
        let value = args.get(i + 1).ok_or_else(|| Reply::error(err::SYNTAX))?;
        let n = int_arg(value)?;
        let (name, range) = if duration_opt { ("IDMP-DURATION", idmp::DURATION_RANGE) } else { ("IDMP-MAXSIZE", idmp::MAXSIZE_RANGE) };
        let n = u32::try_from(n)
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| Reply::error(format!("ERR {name} must be between {} and {}", range.start(), range.end())))?;
        *(if duration_opt { &mut duration } else { &mut maxsize }) = Some(n);
        i += 2;
    }
    let key = args[1];
    let s = peek(ctx, key)?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
    let (d, m) = s.idmp.as_deref().map_or((idmp::DEFAULT_DURATION_S, idmp::DEFAULT_MAXSIZE), |m| (m.duration_s, m.maxsize));
    let change = StreamChange::IdmpConfig { duration_s: duration.unwrap_or(d), maxsize: maxsize.unwrap_or(m) };
    write(ctx, Op::Coll { db: db8(ctx), key, change: Change::Stream(change) })?;
    Ok(Reply::Ok)
}

/// The IDMP fields of XINFO STREAM (Redis 8.6), for a stream that used IDMP or XCFGSET.
pub fn info_fields(s: &Stream, now: u64) -> Vec<(Reply, Reply)> {
    let Some(m) = s.idmp.as_deref() else { return Vec::new() };
    let field = |name: &str, n: u64| (Reply::bulk(name), Reply::Int(n as i64));
    vec![
        field("idmp-duration", u64::from(m.duration_s)),
        field("idmp-maxsize", u64::from(m.maxsize)),
        field("pids-tracked", m.pids_tracked(now) as u64),
        field("iids-tracked", m.iids_tracked(now) as u64),
        field("iids-added", m.iids_added),
        field("iids-duplicates", m.iids_duplicates),
    ]
}
