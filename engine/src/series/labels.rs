//! Series labels and the table of label strings they share.
//!
//! Monitoring labels repeat: every series of a job carries the same `job`
//! and `instance`, every series of a metric the same `__name__`, and the
//! label names are a handful. So each thread (a shard runs on one) keeps a
//! table of the distinct label names and values with a count of the
//! [`Labels`] holding each, and a series' labels are ids into it: a few
//! bytes where the strings took about a hundred.
//!
//! [`Labels`] are not `Send`: their ids mean something only to the table of
//! the thread that made them. Values cross shards as bytes (encode, then
//! decode on the other side), which interns the strings there.
//!
//! Memory: [`Labels::heap_bytes`] is the ids alone, a figure that does not
//! change while the value lives (the keyspace's accounting adds and
//! subtracts it); the strings are counted once, by [`table_bytes`], and
//! [`Labels::shared_bytes`] gives a series its share of them (TS.INFO).

use std::cell::RefCell;
use std::marker::PhantomData;

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::thin::ThinBytes;

/// Bytes an entry costs besides its string's allocation: its pointer, its
/// count and its index bucket (the id and the bucket's control byte).
const ENTRY_COST: usize = std::mem::size_of::<ThinBytes>() + 2 * std::mem::size_of::<u32>() + 1;

/// The strings of one thread, by id.
#[derive(Default)]
struct Table {
    /// The strings by id, and how many label lists hold each (0: a free slot);
    /// two vectors, so an entry takes 12 bytes rather than 16.
    strings: Vec<ThinBytes>,
    refs: Vec<u32>,
    /// Ids whose entry has no holder left, for reuse.
    free: Vec<u32>,
    /// Ids by the hash of their string.
    index: HashTable<u32>,
    /// Bytes allocated for the strings held (length prefixes included).
    string_bytes: usize,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

impl Table {
    /// The id of `s`, with one more holder.
    fn acquire(&mut self, s: &[u8]) -> u32 {
        let hash = xxh3_64(s);
        let Table { strings, refs, free, index, string_bytes } = self;
        if let Some(&id) = index.find(hash, |&id| *strings[id as usize] == *s) {
            let r = &mut refs[id as usize];
            *r = r.checked_add(1).unwrap_or_else(|| panic!("label string held by over {} series", u32::MAX));
            return id;
        }
        let id = match free.pop() {
            Some(id) => {
                (strings[id as usize], refs[id as usize]) = (s.into(), 1);
                id
            }
            None => {
                strings.push(s.into());
                refs.push(1);
                u32::try_from(strings.len() - 1).unwrap_or_else(|_| panic!("over {} distinct label strings", u32::MAX))
            }
        };
        *string_bytes += strings[id as usize].heap_bytes();
        index.insert_unique(hash, id, |&id| xxh3_64(&strings[id as usize]));
        id
    }

    /// One holder of `id` fewer; the string goes when none is left.
    fn release(&mut self, id: u32) {
        let Some(r) = self.refs.get_mut(id as usize) else {
            debug_assert!(false, "label string {id} released but never made");
            return;
        };
        debug_assert!(*r > 0, "label string {id} released more often than held");
        *r = r.saturating_sub(1);
        if *r > 0 {
            return;
        }
        let bytes = std::mem::take(&mut self.strings[id as usize]);
        if let Ok(slot) = self.index.find_entry(xxh3_64(&bytes), |&x| x == id) {
            slot.remove();
        }
        self.string_bytes -= bytes.heap_bytes();
        self.free.push(id);
        if self.index.is_empty() {
            // The last string went: give the slots back too, so an emptied
            // keyspace holds no memory for labels (ids restart at 0).
            *self = Table::default();
        }
    }

    fn retain(&mut self, id: u32) {
        if let Some(r) = self.refs.get_mut(id as usize) {
            // Counting on past the top would let the last drops free the string while it is held.
            *r = r.checked_add(1).unwrap_or_else(|| panic!("label string held by over {} series", u32::MAX));
        }
    }
}

/// Bytes this thread's label table holds: strings, slots and index.
pub fn table_bytes() -> usize {
    TABLE.with(|t| {
        let t = t.borrow();
        t.string_bytes
            + t.strings.capacity() * std::mem::size_of::<ThinBytes>()
            + t.refs.capacity() * std::mem::size_of::<u32>()
            + t.free.capacity() * std::mem::size_of::<u32>()
            // The index holds at most 7 ids per 8 buckets.
            + (t.index.capacity() * 8 / 7) * (std::mem::size_of::<u32>() + 1)
    })
}

/// Distinct label strings this thread holds.
pub fn table_strings() -> usize {
    TABLE.with(|t| t.borrow().index.len())
}

fn put_id(out: &mut Vec<u8>, mut id: u32) {
    while id >= 0x80 {
        out.push((id as u8) | 0x80);
        id >>= 7;
    }
    out.push(id as u8);
}

/// The ids in `bytes`, in order (written by [`put_id`], so well formed).
fn ids(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let mut id = 0u32;
        let mut shift = 0;
        loop {
            let b = *bytes.get(at)?;
            at += 1;
            id |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Some(id);
            }
            shift += 7;
        }
    })
}

/// A series' labels: name and value ids into the thread's table, as
/// varints, in the order given (any bytes; names unique).
pub struct Labels {
    ids: ThinBytes,
    /// Not `Send` or `Sync`: the ids are this thread's.
    _thread: PhantomData<*const ()>,
}

impl Labels {
    /// Labels from name/value pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Labels {
        let mut out = Vec::new();
        // One borrow of the table per string: `pairs` may itself read labels.
        let acquire = |s: &[u8]| TABLE.with(|t| t.borrow_mut().acquire(s));
        for (n, v) in pairs {
            put_id(&mut out, acquire(n));
            put_id(&mut out, acquire(v));
        }
        Labels { ids: out.into(), _thread: PhantomData }
    }

    /// The string of `id`, which this value holds.
    fn string(&self, id: u32) -> &[u8] {
        let (ptr, len) = TABLE.with(|t| {
            let t = t.borrow();
            let s: &[u8] = t.strings.get(id as usize).map_or(&[], ThinBytes::as_slice);
            (s.as_ptr(), s.len())
        });
        // SAFETY: `self` holds a reference on entry `id` (taken in `new` or
        // `clone`, given back only in `drop`), and an entry's bytes are
        // neither changed nor freed while it has holders; growing the
        // table moves the pointer, not the allocation it points to. `Labels` is
        // neither Send nor Sync, so `id` is of this thread's table, and the
        // slice cannot outlive the borrow of `self`.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// The (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut it = ids(&self.ids);
        std::iter::from_fn(move || Some((self.string(it.next()?), self.string(it.next()?))))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        ids(&self.ids).count() / 2
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Heap bytes of this value alone (its ids and their length); the strings are the table's.
    pub fn heap_bytes(&self) -> usize {
        self.ids.heap_bytes()
    }

    /// This value's share of the table: each string's bytes and entry
    /// divided among the label lists holding it.
    pub fn shared_bytes(&self) -> usize {
        TABLE.with(|t| {
            let t = t.borrow();
            ids(&self.ids)
                .filter_map(|id| Some((t.strings.get(id as usize)?, *t.refs.get(id as usize)?)))
                .map(|(s, refs)| (s.heap_bytes() + ENTRY_COST).div_ceil(refs.max(1) as usize))
                .sum()
        })
    }
}

impl Clone for Labels {
    fn clone(&self) -> Labels {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            ids(&self.ids).for_each(|id| t.retain(id));
        });
        Labels { ids: self.ids.clone(), _thread: PhantomData }
    }
}

impl Drop for Labels {
    fn drop(&mut self) {
        // After the thread's table is gone (thread exit) there is nothing to give back.
        let _ = TABLE.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                ids(&self.ids).for_each(|id| t.release(id));
            }
        });
    }
}

impl Default for Labels {
    fn default() -> Labels {
        Labels { ids: ThinBytes::EMPTY, _thread: PhantomData }
    }
}

/// Equal strings have equal ids within a thread, so comparing ids compares labels.
impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.ids == other.ids
    }
}

impl Eq for Labels {}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn keeps_any_bytes_in_order() {
        let long = vec![b'x'; 300];
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"="), (b"\x00\xff", &long), (b"e", b"(1, 2)")];
        let l = Labels::new(pairs.clone());
        assert_eq!(l.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(l.len(), 3);
        assert_eq!(l.get(b"e"), Some(&b"(1, 2)"[..]));
        assert_eq!(l.get(b"z"), None);
        assert_eq!(l.heap_bytes(), 7, "six ids of one byte each and their length");
    }

    /// Strings are shared while held and go when the last holder does;
    /// their slots are reused; clones hold their own references.
    #[test]
    fn strings_are_shared_and_given_back() {
        let strings = table_strings();
        let a = labels(&[("job", "node"), ("__name__", "shared_test_metric_a")]);
        let b = labels(&[("job", "node"), ("__name__", "shared_test_metric_b")]);
        assert_eq!(table_strings(), strings + 5, "job, node and __name__ once");
        let whole = a.shared_bytes();
        let c = a.clone();
        assert_eq!(c, a);
        assert_ne!(a, b);
        assert!(a.shared_bytes() < whole, "a clone takes half of every string");
        drop(a);
        assert_eq!(c.get(b"__name__"), Some(&b"shared_test_metric_a"[..]));
        drop(c);
        assert_eq!(table_strings(), strings + 4, "metric_a went with its last holder");
        let d = labels(&[("__name__", "shared_test_metric_d")]);
        assert_eq!(d.iter().next(), Some((&b"__name__"[..], &b"shared_test_metric_d"[..])));
        drop((b, d));
        assert_eq!(table_strings(), strings);
        if strings == 0 {
            assert_eq!(table_bytes(), 0, "an empty table holds nothing");
        }
    }

    #[test]
    fn labels_can_be_made_from_the_strings_of_others() {
        let a = labels(&[("copy_name", "copy_value")]);
        let b = Labels::new(a.iter());
        assert_eq!(a, b);
    }

    #[test]
    fn a_string_reads_back_after_the_table_grows() {
        let first = labels(&[("grow_name", "grow_value")]);
        let many: Vec<Labels> = (0..5000).map(|i| labels(&[("grow_name", &format!("value-{i}"))])).collect();
        assert_eq!(first.get(b"grow_name"), Some(&b"grow_value"[..]));
        assert_eq!(many[4999].get(b"grow_name"), Some(&b"value-4999"[..]));
    }
}
