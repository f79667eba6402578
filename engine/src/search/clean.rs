//! Cleaning an index in the background: dropping dead postings and giving
//! the live documents dense ids again, a slice at a time between requests.
//!
//! A removed (or rewritten) document leaves its postings behind; reads skip
//! them because the document table says the id is gone. The write path only
//! counts: a term (or tag value) whose list is at least half dead is queued,
//! and [`Index::clean_step`] rewrites queued lists within a budget of
//! postings. A long list is copied a slice at a time ([`Partial`]): reads
//! use the old list until the copy is done and takes its place; postings
//! appended meanwhile are copied when the copy reaches them, and a document
//! removed meanwhile that the copy already holds is counted dead in it.
//! Nothing here runs inside a write.
//!
//! Ids only grow, so under updates the document table fills with dead
//! slots. When dead ids outnumber live ones, a *renumbering* starts: every
//! live id gets its rank among the live ids (the order is kept, so lists
//! stay sorted). Term lists are rebuilt into new-id *shadow* lists, a slice
//! at a time, while reads keep using the old lists, which stay whole and
//! consistent. A document added meanwhile gets an old id and the next new
//! id, and goes into the old list of each of its terms and the shadow of
//! those already rebuilt; a document removed meanwhile is counted dead in
//! the shadows that hold it. When the last term is rebuilt, the shadows
//! replace the lists (the old ones are freed in later slices) and the
//! document table, key map, tag lists and numeric trees are mapped to the
//! new ids: that last step costs O(terms + documents + tag postings +
//! numeric entries · log), never O(all postings), and is the one slice the
//! budget does not bound (14 ms on the 63,675-document Debian corpus).
//! Starting a renumbering (ranking the ids) and rewriting one tag list are
//! single steps too. Dead postings need no rewrite while a renumbering
//! runs: the shadows leave them out.
//!
//! May touch: the [`Index`]'s lists, document table and maps (it is part of
//! the index; the caller drives it with a budget).

use super::index::{tag_list_bytes, Index};
use super::postings::Postings;

/// A list is rewritten once this many of its postings are dead and they are at least half of it.
pub(super) const DEAD_FLOOR: u32 = 8;
/// Renumbering starts once this many ids are dead and they outnumber the live ones.
pub(super) const RENUMBER_FLOOR: usize = 1024;

/// Whether a list of `len` postings with `dead` of them dead should be rewritten.
pub(super) fn half_dead(dead: u32, len: u32) -> bool {
    dead >= DEAD_FLOOR && dead.saturating_mul(2) >= len
}

/// What is left to clean.
#[derive(Debug, Default)]
pub(super) struct Cleaner {
    /// Terms whose lists are half dead (each queued once: `Term::queued`).
    pub(super) terms: Vec<u32>,
    /// The queued term whose list is being copied without its dead postings.
    pub(super) rewriting: Option<Partial>,
    /// Tag lists likewise: (field, value id).
    pub(super) tags: Vec<(u16, u32)>,
    /// A renumbering in progress.
    pub(super) renumber: Option<Renumber>,
    /// Lists a renumbering replaced, freed a slice at a time (freeing them
    /// all at the swap would hold the shard as long as rebuilding them).
    pub(super) graveyard: Vec<Postings>,
}

/// A list being copied, a slice at a time.
#[derive(Debug, Default)]
pub(super) struct Partial {
    /// The term.
    pub(super) term: u32,
    /// The copy so far.
    pub(super) out: Postings,
    /// The (old) document to go on from: documents below it are copied.
    pub(super) next: u32,
    /// Documents in the copy removed since they were copied.
    pub(super) dead: u32,
}

impl Partial {
    /// Counts the removal of document `id` of term `t` if the copy holds it.
    pub(super) fn removed(&mut self, t: u32, id: u32) {
        if self.term == t && id < self.next {
            self.dead += 1;
        }
    }
}

/// A renumbering in progress.
#[derive(Debug)]
pub(super) struct Renumber {
    /// Old id → new id (`u32::MAX`: dead when it began); ids added since get the next new ids.
    pub(super) to_new: Vec<u32>,
    /// The new id the next added document gets.
    pub(super) next_new: u32,
    /// The rebuilt lists of the terms below `shadows.len()`, with how many of their postings are dead.
    pub(super) shadows: Vec<(Postings, u32)>,
    /// The shadow being built (of term `shadows.len()`).
    pub(super) building: Option<Partial>,
}

impl Cleaner {
    /// Heap bytes of the copies in progress, the shadows and the graveyard.
    pub(super) fn heap_bytes(&self) -> usize {
        let r = self.renumber.as_ref();
        let shadows = r.map_or(0, |r| {
            r.shadows.iter().map(|(p, _)| p.heap_bytes()).sum::<usize>() + r.building.as_ref().map_or(0, |p| p.out.heap_bytes())
        });
        shadows + self.rewriting.as_ref().map_or(0, |p| p.out.heap_bytes()) + self.graveyard.iter().map(Postings::heap_bytes).sum::<usize>()
    }
}

impl Renumber {
    /// The shadow of term `t`, if it is rebuilt already.
    pub(super) fn shadow(&mut self, t: u32) -> Option<&mut (Postings, u32)> {
        self.shadows.get_mut(t as usize)
    }
}

impl Index {
    /// Whether cleaning work is waiting (FT.INFO `cleaning`).
    pub fn cleaning(&self) -> bool {
        let c = &self.clean;
        !c.terms.is_empty()
            || c.rewriting.is_some()
            || !c.tags.is_empty()
            || c.renumber.is_some()
            || !c.graveyard.is_empty()
            || self.renumber_due()
    }

    fn renumber_due(&self) -> bool {
        let dead = self.docs.len() - self.live as usize;
        dead >= RENUMBER_FLOOR && dead > self.live as usize
    }

    /// Goes on cleaning for about `budget` postings (and document slots)
    /// read; returns whether work is left.
    pub fn clean_step(&mut self, budget: usize) -> bool {
        let mut spent = 0usize;
        while spent < budget {
            let Some(old) = self.clean.graveyard.pop() else { break };
            spent += (old.len() as usize).max(1);
            self.account(old.heap_bytes(), 0);
        }
        if spent < budget && self.clean.renumber.is_none() && self.renumber_due() {
            spent += self.start_renumber();
        }
        while spent < budget && self.clean.renumber.is_some() {
            spent += self.renumber_slice(budget - spent);
        }
        while spent < budget && (self.clean.rewriting.is_some() || !self.clean.terms.is_empty()) {
            spent += self.rewrite_slice(budget - spent);
        }
        while spent < budget {
            let Some((n, v)) = self.clean.tags.pop() else { break };
            spent += self.rewrite_tags(n, v);
        }
        self.cleaning()
    }

    /// Copies up to `budget` postings of the queued term being rewritten
    /// (starting the next one if none is), leaving its dead postings out;
    /// returns the postings read.
    fn rewrite_slice(&mut self, budget: usize) -> usize {
        let mut p = match self.clean.rewriting.take() {
            Some(p) => p,
            None => {
                let Some(term) = self.clean.terms.pop() else { return 0 };
                Partial { term, ..Partial::default() }
            }
        };
        let docs = &self.docs;
        let Some(term) = self.terms.get_mut(p.term as usize) else { return 1 };
        let mut grown = (p.out.heap_bytes(), 0);
        let (read, more) = term.postings.copy_from(p.next, budget, &mut p.out, |d| docs.get(d as usize)?.as_ref().map(|_| d));
        match more {
            Some(next) => {
                p.next = next;
                grown.1 = p.out.heap_bytes();
                self.clean.rewriting = Some(p);
            }
            None => {
                p.out.shrink();
                grown.1 = p.out.heap_bytes();
                let old = std::mem::replace(&mut term.postings, p.out);
                grown.0 += old.heap_bytes();
                term.dead = p.dead;
                term.queued = half_dead(term.dead, term.postings.len());
                if term.queued {
                    self.clean.terms.push(p.term);
                }
            }
        }
        self.account(grown.0, grown.1);
        read.max(1)
    }

    /// Drops the dead documents of a queued tag list; returns the entries read.
    fn rewrite_tags(&mut self, n: u16, v: u32) -> usize {
        let docs = &self.docs;
        let Some(list) = self.tags.get_mut(n as usize).and_then(|f| f.lists.get_mut(v as usize)) else { return 0 };
        list.queued = false;
        let (len, before) = (list.docs.len(), tag_list_bytes(list));
        list.docs.retain(|&d| docs.get(d as usize).is_some_and(Option::is_some));
        list.docs.shrink_to_fit();
        list.dead = 0;
        let after = tag_list_bytes(list);
        self.account(before, after);
        len.max(1)
    }

    /// Ranks the live ids; returns the slots read. Rewrites of single
    /// lists stop: the shadows leave dead postings out anyway.
    fn start_renumber(&mut self) -> usize {
        let rewriting = self.clean.rewriting.take().map(|p| {
            self.account(p.out.heap_bytes(), 0);
            p.term
        });
        for t in std::mem::take(&mut self.clean.terms).into_iter().chain(rewriting) {
            if let Some(term) = self.terms.get_mut(t as usize) {
                term.queued = false;
            }
        }
        let mut next = 0u32;
        let to_new = self
            .docs
            .iter()
            .map(|d| match d {
                Some(_) => {
                    next += 1;
                    next - 1
                }
                None => u32::MAX,
            })
            .collect();
        self.clean.renumber = Some(Renumber { to_new, next_new: next, shadows: Vec::new(), building: None });
        self.docs.len().max(1)
    }

    /// Goes on building shadows for up to `budget` postings, or finishes;
    /// returns the postings read.
    fn renumber_slice(&mut self, budget: usize) -> usize {
        let Some(r) = self.clean.renumber.as_mut() else { return 0 };
        let t = r.shadows.len();
        let Some(term) = self.terms.get(t) else {
            return self.finish_renumber();
        };
        let mut p = r.building.take().unwrap_or(Partial { term: t as u32, ..Partial::default() });
        let (docs, to_new) = (&self.docs, &r.to_new);
        let map = |d: u32| docs.get(d as usize)?.as_ref().and(to_new.get(d as usize).copied());
        let before = p.out.heap_bytes();
        let (read, more) = term.postings.copy_from(p.next, budget, &mut p.out, map);
        match more {
            Some(next) => p.next = next,
            None => p.out.shrink(),
        }
        let after = p.out.heap_bytes();
        match more {
            Some(_) => r.building = Some(p),
            None => r.shadows.push((p.out, p.dead)),
        }
        self.account(before, after);
        read.max(1)
    }

    /// Puts the shadows in place and maps everything else to the new ids; returns the slots read.
    fn finish_renumber(&mut self) -> usize {
        let Some(r) = self.clean.renumber.take() else { return 0 };
        debug_assert_eq!(r.shadows.len(), self.terms.len(), "every term rebuilt before the swap");
        debug_assert_eq!(r.to_new.len(), self.docs.len(), "every document has a new id");
        // Lists queued meanwhile were old lists; the shadows' counts decide afresh.
        self.clean.terms.clear();
        self.clean.graveyard.reserve_exact(self.terms.len());
        for (t, (term, (postings, dead))) in self.terms.iter_mut().zip(r.shadows).enumerate() {
            self.clean.graveyard.push(std::mem::replace(&mut term.postings, postings));
            term.dead = dead;
            term.queued = half_dead(dead, term.postings.len());
            if term.queued {
                self.clean.terms.push(t as u32);
            }
        }
        let map = |d: u32| r.to_new.get(d as usize).copied().filter(|&m| m != u32::MAX);
        let old = std::mem::take(&mut self.docs);
        let slots = old.len();
        let slot = std::mem::size_of::<Option<Box<super::index::Doc>>>();
        self.account(slots * slot, r.next_new as usize * slot);
        self.docs = (0..r.next_new).map(|_| None).collect();
        for (id, doc) in old.into_iter().enumerate() {
            if let (Some(doc), Some(m)) = (doc, map(id as u32)) {
                self.docs[m as usize] = Some(doc);
            }
        }
        // Ids given to documents removed meanwhile keep their (empty) slots:
        // shadows may still hold them, and ids are never given twice.
        for id in self.by_key.values_mut() {
            *id = map(*id).unwrap_or(u32::MAX);
        }
        self.clean.tags.clear();
        let tags_before = self.tag_bytes();
        let docs = &self.docs;
        let live = |d: &u32| docs.get(*d as usize).is_some_and(Option::is_some);
        for tf in &mut self.tags {
            for list in &mut tf.lists {
                list.docs = list.docs.iter().filter_map(|&d| map(d)).filter(live).collect();
                list.dead = 0;
                list.queued = false;
            }
        }
        let tags_after = self.tag_bytes();
        self.account(tags_before, tags_after);
        for set in &mut self.numbers {
            *set = set.iter().filter_map(|&(k, d)| map(d).map(|m| (k, m))).collect();
        }
        slots.max(1)
    }
}
