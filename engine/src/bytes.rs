//! Compact byte strings for keys and values.
//!
//! Most keys and many values are short. [`SmallBytes`] keeps up to
//! [`INLINE`] bytes inside itself (24 bytes in all, the size of a boxed
//! slice plus a tag), and only longer strings on the heap, which saves one
//! allocation, about 32 bytes with malloc's overhead, per short key or value.

use std::fmt;
use std::ops::Deref;

/// Longest string kept inline.
pub const INLINE: usize = 22;

/// A byte string stored inline when short, boxed when long.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SmallBytes {
    /// Up to [`INLINE`] bytes.
    Inline {
        /// Bytes used.
        len: u8,
        /// The bytes; only `..len` are meaningful.
        data: [u8; INLINE],
    },
    /// Longer strings.
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<SmallBytes>() == 24);

impl SmallBytes {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> SmallBytes {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            SmallBytes::Inline { len: b.len() as u8, data }
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    /// Takes ownership of a boxed slice (kept boxed only if it is long).
    pub fn from_box(b: Box<[u8]>) -> SmallBytes {
        if b.len() <= INLINE {
            SmallBytes::new(&b)
        } else {
            SmallBytes::Heap(b)
        }
    }

    /// Takes ownership of a vector.
    pub fn from_vec(v: Vec<u8>) -> SmallBytes {
        if v.len() <= INLINE {
            SmallBytes::new(&v)
        } else {
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }

    /// The bytes as a boxed slice.
    pub fn into_boxed(self) -> Box<[u8]> {
        match self {
            SmallBytes::Inline { len, data } => data[..len as usize].into(),
            SmallBytes::Heap(b) => b,
        }
    }

    /// Heap bytes owned (0 when inline).
    pub fn heap_bytes(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(b) => b.len(),
        }
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, data } => &data[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }
}

/// Ordered by the bytes (lexicographically), whatever the representation.
impl Ord for SmallBytes {
    fn cmp(&self, other: &SmallBytes) -> std::cmp::Ordering {
        self[..].cmp(&other[..])
    }
}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &SmallBytes) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> SmallBytes {
        SmallBytes::new(b)
    }
}

impl From<Vec<u8>> for SmallBytes {
    fn from(v: Vec<u8>) -> SmallBytes {
        SmallBytes::from_vec(v)
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        for n in [0, 1, INLINE, INLINE + 1, 1000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let s = SmallBytes::new(&v);
            assert_eq!(&*s, &v[..]);
            assert_eq!(s.heap_bytes(), if n <= INLINE { 0 } else { n });
            assert_eq!(&*SmallBytes::from_vec(v.clone()), &v[..]);
            assert_eq!(&*SmallBytes::from_box(v.clone().into()).into_boxed(), &v[..]);
        }
    }
}
