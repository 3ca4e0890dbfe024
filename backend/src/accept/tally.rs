//! Bytes on the wire, counted at the socket: what the transports lesson (`/transports`)
//! shows per transport, HTTP headers, chunk framing and WebSocket frame headers included.
//!
//! Every TCP connection has a [`Tally`] its socket reports to (one relaxed add per read).
//! When hyper has read a request's head, the accept loop hands the request a [`Wire`]: the
//! bytes read since the previous request (that head, as it came) and the tally. A handler
//! that wants its traffic counted gives it a [`Meter`]: the head is added to it, and every
//! byte written from then on (the response: status line, headers, body) until the next
//! request on the connection; after an upgrade, the bytes read too (the client's frames).
//! A connection no one meters costs one relaxed load per write.

use std::{
    io,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

/// Where one kind of traffic is counted: requests, and bytes each way.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// HTTP requests (a WebSocket's handshake is one).
    pub requests: AtomicU64,
    /// Bytes from the client: request heads and bodies, and frames after an upgrade.
    pub bytes_in: AtomicU64,
    /// Bytes to the client: responses whole, and frames after an upgrade.
    pub bytes_out: AtomicU64,
}

/// One TCP connection's count, and the meter its traffic goes to now (if any).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    read: AtomicU64,
    /// `read` when the last request's head had been read.
    mark: AtomicU64,
    metered: AtomicBool,
    /// Whether reads go to the meter too (a WebSocket's frames, after its upgrade).
    reads_metered: AtomicBool,
    meter: Mutex<Option<Arc<Meter>>>,
}

impl Tally {
    fn with_meter(&self, add: impl FnOnce(&Meter)) {
        if self.metered.load(Ordering::Relaxed)
            && let Some(meter) = &*self.meter.lock().unwrap_or_else(PoisonError::into_inner)
        {
            add(meter);
        }
    }

    /// `n` bytes were read; after an upgrade they are the client's frames, metered.
    pub(super) fn read(&self, n: usize) {
        let n = n as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        if self.reads_metered.load(Ordering::Relaxed) {
            self.with_meter(|meter| {
                meter.bytes_in.fetch_add(n, Ordering::Relaxed);
            });
        }
    }

    /// A write's result: the bytes it wrote are metered.
    pub(super) fn wrote(&self, result: &io::Result<usize>) {
        if let Ok(n) = result {
            self.with_meter(|meter| {
                meter.bytes_out.fetch_add(*n as u64, Ordering::Relaxed);
            });
        }
    }

    /// A request's head has been read: the bytes read since the last one, and the meter of
    /// the last one's response is let go.
    pub(super) fn next_request(self: &Arc<Self>) -> Wire {
        let now = self.read.load(Ordering::Relaxed);
        let before = self.mark.swap(now, Ordering::Relaxed);
        self.metered.store(false, Ordering::Relaxed);
        self.reads_metered.store(false, Ordering::Relaxed);
        *self.meter.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Wire {
            tally: self.clone(),
            head_bytes: now.saturating_sub(before),
        }
    }
}

/// A request's place on its connection: its head's size as read, and where to meter the
/// rest (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    tally: Arc<Tally>,
    head_bytes: u64,
}

impl Wire {
    /// Counts this request in `meter`: its head now, its response as it is written; with
    /// `frames` (a WebSocket handshake), what the client sends after the upgrade too.
    pub(crate) fn meter(&self, meter: Arc<Meter>, frames: bool) {
        meter.requests.fetch_add(1, Ordering::Relaxed);
        meter.bytes_in.fetch_add(self.head_bytes, Ordering::Relaxed);
        *self
            .tally
            .meter
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(meter);
        self.tally.metered.store(true, Ordering::Relaxed);
        self.tally.reads_metered.store(frames, Ordering::Relaxed);
    }
}
