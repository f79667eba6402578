//! Replies as values: what a command answers, before it is encoded.
//!
//! A handler builds a [`Reply`]; the connection encodes it for the
//! protocol the client chose with `HELLO` (RESP2 or RESP3), see
//! [`crate::resp::encode`]. Replies are `Send`, so a command executed on
//! another shard can send its reply back across threads.

use std::borrow::Cow;

/// One reply of a command, independent of the wire protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+...`): status replies such as `PONG`.
    Simple(Cow<'static, str>),
    /// An error (`-...`). The text carries its own prefix: `ERR ...`, `WRONGTYPE ...`.
    Error(Cow<'static, str>),
    /// An integer (`:`).
    Int(i64),
    /// A bulk string (`$`).
    Bulk(Vec<u8>),
    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// The null array: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    /// An array (`*`).
    Array(Vec<Reply>),
    /// A double: `,` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    Bool(bool),
    /// A map: `%` in RESP3, a flat array of key, value, ... in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set: `~` in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A verbatim string with its 3-letter format (`txt`, `mkd`): `=` in RESP3, a bulk string in RESP2.
    Verbatim(&'static str, Vec<u8>),
    /// An out-of-band push (`>`) in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, one after the other (SUBSCRIBE answers one per channel).
    Several(Vec<Reply>),
    /// Pairs that are not a map: in RESP3 an array of 2-element arrays, in
    /// RESP2 a flat array of 2n items (HRANDFIELD WITHVALUES, ZRANGE WITHSCORES).
    Pairs(Vec<(Reply, Reply)>),
    /// A map in RESP3, an array of 2-element arrays in RESP2 (XREAD's
    /// stream → entries, where RESP2 clients expect one pair per stream).
    Keyed(Vec<(Reply, Reply)>),
}

impl Reply {
    /// An error reply from any string; the text must start with its error code (`ERR`, `WRONGTYPE`, ...).
    pub fn error(msg: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(msg.into())
    }

    /// A simple string reply.
    pub fn simple(msg: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(msg.into())
    }

    /// A bulk string reply copied from a byte slice.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(bytes.as_ref().to_vec())
    }

    /// A bulk string, or the null bulk string for `None`.
    pub fn opt_bulk(bytes: Option<impl AsRef<[u8]>>) -> Reply {
        match bytes {
            Some(b) => Reply::bulk(b),
            None => Reply::Nil,
        }
    }

    /// Whether this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}
