//! The RESP codec: requests in, replies out.
//!
//! [`parse`] splits client requests (RESP arrays of bulk strings, and inline
//! commands as `redis-cli`/telnet send them) out of a read buffer without
//! copying, with the limits and exact error texts of Redis 7.
//! [`encode`] writes a [`crate::reply::Reply`] as RESP2 or RESP3 bytes.

pub mod encode;
pub mod parse;

pub use encode::{encode, format_double, Protocol};
pub use parse::{parse_command, parse_inline_owned, Limits, Parsed, ProtocolError};
