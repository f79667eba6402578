//! Time series: the view behind the TS.* commands.
//!
//! - [`bits`]: bit-level writer and reader.
//! - [`codec`]: chunk codecs (Gorilla for the open chunk; constant, scaled
//!   decimal and XOR for sealed chunks, the smallest chosen per chunk).
pub mod bits;
pub mod codec;
