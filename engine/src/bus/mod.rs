//! The cross-shard bus: per-pair single-producer queues with a wake-up.
//!
//! Shard `a` sends to shard `b` through ring `b.rings[a]`: only `a`'s thread
//! pushes into it and only `b`'s receiver task pops from it. Each shard has
//! one [`Inbox`] holding a ring per sender and a doorbell: the receiver
//! parks by storing its waker and raising `parked`, then re-checks the rings;
//! a sender pushes, then rings the doorbell if `parked` was raised. With a
//! SeqCst fence between each side's store and load (Dekker's pattern), either
//! the receiver sees the message on its re-check or the sender sees `parked`,
//! so no wake-up is lost. loom checks this in `loom_tests`; it found the
//! missing fences in the first version. Wakers of glommio
//! tasks may be woken from other threads: glommio forwards them to the
//! owning executor over its eventfd.
//!
//! The bus carries any `Send` message; the server decides what a message is.
//! It never blocks: a full ring hands the message back to the caller, who
//! waits with [`Outbox::send`].

pub mod epochs;
mod ring;
mod sync;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

pub use ring::Ring;
use sync::{fence, Arc, AtomicBool, Mutex, Ordering};

/// What one shard receives: a ring per sending shard and a doorbell.
pub struct Inbox<T> {
    rings: Vec<Ring<T>>,
    parked: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Wakers of senders waiting for room, keyed by sending shard.
    room: Vec<Mutex<Option<Waker>>>,
}

impl<T: Send> Inbox<T> {
    fn new(shards: usize, capacity: usize) -> Inbox<T> {
        Inbox {
            rings: (0..shards).map(|_| Ring::new(capacity)).collect(),
            parked: AtomicBool::new(false),
            waker: Mutex::new(None),
            room: (0..shards).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Receiver side: takes one message from any ring, round-robin from `start`.
    fn try_recv(&self, start: usize) -> Option<(usize, T)> {
        let n = self.rings.len();
        for i in 0..n {
            let from = (start + i) % n;
            if let Some(v) = self.rings[from].pop() {
                self.wake_sender(from);
                return Some((from, v));
            }
        }
        None
    }

    fn wake_sender(&self, from: usize) {
        let w = match self.room[from].lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    fn set_waker(&self, w: &Waker) {
        match self.waker.lock() {
            Ok(mut g) => *g = Some(w.clone()),
            Err(p) => *p.into_inner() = Some(w.clone()),
        }
    }

    fn ring_doorbell(&self) {
        // Dekker with the receiver: our push (a Release store of `tail`) must be
        // ordered before reading `parked`, as its `parked` store is before its re-check.
        fence(Ordering::SeqCst);
        if self.parked.swap(false, Ordering::SeqCst) {
            let w = match self.waker.lock() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// Receiver side: a message, or registers the waker and returns Pending.
    pub fn poll_recv(&self, cx: &mut Context<'_>, start: usize) -> Poll<(usize, T)> {
        if let Some(m) = self.try_recv(start) {
            return Poll::Ready(m);
        }
        self.set_waker(cx.waker());
        self.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        match self.try_recv(start) {
            Some(m) => {
                self.parked.store(false, Ordering::SeqCst);
                Poll::Ready(m)
            }
            None => Poll::Pending,
        }
    }
}

/// The whole bus: one inbox per shard. Built once, shared by all shards.
pub struct Bus<T> {
    inboxes: Vec<Arc<Inbox<T>>>,
}

impl<T: Send> Bus<T> {
    /// A bus for `shards` shards whose rings hold `capacity` messages each.
    pub fn new(shards: usize, capacity: usize) -> Bus<T> {
        Bus { inboxes: (0..shards).map(|_| Arc::new(Inbox::new(shards, capacity))).collect() }
    }

    /// The sending half for shard `me`.
    pub fn outbox(&self, me: usize) -> Outbox<T> {
        Outbox { me, inboxes: self.inboxes.clone() }
    }

    /// The receiving half for shard `me`.
    pub fn receiver(&self, me: usize) -> Receiver<T> {
        Receiver { inbox: self.inboxes[me].clone(), next: 0 }
    }
}

/// Shard `me`'s handle for sending to any shard. Use it from `me`'s thread only.
pub struct Outbox<T> {
    me: usize,
    inboxes: Vec<Arc<Inbox<T>>>,
}

impl<T: Send> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox { me: self.me, inboxes: self.inboxes.clone() }
    }
}

impl<T: Send> Outbox<T> {
    /// Number of shards on the bus.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Pushes without waiting; gives the message back if the ring is full.
    pub fn try_send(&self, to: usize, msg: T) -> Result<(), T> {
        let inbox = &self.inboxes[to];
        inbox.rings[self.me].push(msg)?;
        inbox.ring_doorbell();
        Ok(())
    }

    /// Sends, waiting (without blocking the shard) while the ring is full.
    pub fn send(&self, to: usize, msg: T) -> SendFuture<'_, T> {
        SendFuture { outbox: self, to, msg: Some(msg) }
    }
}

/// Future of [`Outbox::send`].
pub struct SendFuture<'a, T> {
    outbox: &'a Outbox<T>,
    to: usize,
    msg: Option<T>,
}

impl<T> Unpin for SendFuture<'_, T> {}

impl<T: Send> Future for SendFuture<'_, T> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(msg) = this.msg.take() else { return Poll::Ready(()) };
        match this.outbox.try_send(this.to, msg) {
            Ok(()) => Poll::Ready(()),
            Err(msg) => {
                let inbox = &this.outbox.inboxes[this.to];
                match inbox.room[this.outbox.me].lock() {
                    Ok(mut g) => *g = Some(cx.waker().clone()),
                    Err(p) => *p.into_inner() = Some(cx.waker().clone()),
                }
                // Re-check after registering, so a pop in between is not missed.
                match this.outbox.try_send(this.to, msg) {
                    Ok(()) => Poll::Ready(()),
                    Err(msg) => {
                        this.msg = Some(msg);
                        Poll::Pending
                    }
                }
            }
        }
    }
}

/// Shard `me`'s receiving half.
pub struct Receiver<T> {
    inbox: Arc<Inbox<T>>,
    next: usize,
}

impl<T: Send> Receiver<T> {
    /// The next message and the shard that sent it.
    pub async fn recv(&mut self) -> (usize, T) {
        futures::future::poll_fn(|cx| {
            let r = self.inbox.poll_recv(cx, self.next);
            if let Poll::Ready((from, _)) = &r {
                self.next = from + 1;
            }
            r
        })
        .await
    }

    /// A message if one is waiting.
    pub fn try_recv(&mut self) -> Option<(usize, T)> {
        let r = self.inbox.try_recv(self.next);
        if let Some((from, _)) = &r {
            self.next = from + 1;
        }
        r
    }
}

#[cfg(all(test, not(feature = "loom")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ring_fifo_and_full() {
        let r = Ring::new(3);
        assert!(r.pop().is_none());
        for i in 0..3 {
            r.push(i).unwrap();
        }
        assert_eq!(r.push(9), Err(9));
        assert_eq!(r.pop(), Some(0));
        r.push(3).unwrap();
        assert_eq!((r.pop(), r.pop(), r.pop(), r.pop()), (Some(1), Some(2), Some(3), None));
    }

    #[test]
    fn threads_deliver_everything_in_order() {
        let bus: Bus<u64> = Bus::new(2, 8);
        let out = bus.outbox(0);
        let mut rx = bus.receiver(1);
        let t = std::thread::spawn(move || {
            for i in 0..100_000u64 {
                let mut m = i;
                loop {
                    match out.try_send(1, m) {
                        Ok(()) => break,
                        Err(back) => {
                            m = back;
                            std::thread::yield_now();
                        }
                    }
                }
            }
        });
        let mut expect = 0;
        while expect < 100_000 {
            if let Some((from, v)) = rx.try_recv() {
                assert_eq!(from, 0);
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        t.join().unwrap();
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use super::*;
    use loom::thread;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::task::Wake;

    struct Flag(StdAtomicUsize);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A message sent while the receiver parks is either seen on the
    /// receiver's re-check or wakes it: never lost.
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let bus: Bus<u32> = Bus::new(2, 2);
            let out = bus.outbox(0);
            let inbox = bus.inboxes[1].clone();
            let sender = thread::spawn(move || {
                out.try_send(1, 7).ok();
            });
            let flag = std::sync::Arc::new(Flag(StdAtomicUsize::new(0)));
            let waker = Waker::from(flag.clone());
            let mut cx = Context::from_waker(&waker);
            let first = inbox.poll_recv(&mut cx, 0);
            sender.join().ok();
            match first {
                Poll::Ready((0, 7)) => {}
                Poll::Ready(other) => panic!("wrong message {other:?}"),
                Poll::Pending => {
                    // The sender finished: it must have woken us, and the message is there.
                    assert_eq!(flag.0.load(std::sync::atomic::Ordering::SeqCst), 1, "lost wake-up");
                    assert!(matches!(inbox.poll_recv(&mut cx, 0), Poll::Ready((0, 7))));
                }
            }
        });
    }

    /// Messages from two senders all arrive, each sender's in order.
    #[test]
    fn two_senders_in_order() {
        loom::model(|| {
            let bus: Bus<(usize, u32)> = Bus::new(3, 2);
            let a = bus.outbox(0);
            let b = bus.outbox(1);
            let mut rx = bus.receiver(2);
            let ta = thread::spawn(move || {
                for i in 0..2 {
                    while a.try_send(2, (0, i)).is_err() {
                        thread::yield_now();
                    }
                }
            });
            let tb = thread::spawn(move || {
                while b.try_send(2, (1, 0)).is_err() {
                    thread::yield_now();
                }
            });
            let mut seen = [0u32; 2];
            let mut got = 0;
            while got < 3 {
                match rx.try_recv() {
                    Some((from, (who, i))) => {
                        assert_eq!(from, who);
                        assert_eq!(seen[who], i, "out of order from {who}");
                        seen[who] += 1;
                        got += 1;
                    }
                    None => thread::yield_now(),
                }
            }
            ta.join().ok();
            tb.join().ok();
        });
    }
}
