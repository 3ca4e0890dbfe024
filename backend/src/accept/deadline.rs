//! An HTTP connection's socket with deadlines: a read or a write that makes no progress for
//! `--http-timeout` fails, so a request body sent a byte now and then, a response its client
//! never reads, and a keep-alive connection left idle each end instead of holding a place.
//! Once the connection is upgraded to a WebSocket the deadlines are switched off: the
//! WebSocket has its own (heartbeat, stall rule), and a quiet chat is not a slow request.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::metrics::Metrics;

use super::tally::Tally;

/// `T` with a deadline on each read and each write, until `upgraded` is set.
pub(crate) struct DeadlineIo<T> {
    inner: T,
    limit: Duration,
    upgraded: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    tally: Arc<Tally>,
    reading: Option<Pin<Box<Sleep>>>,
    writing: Option<Pin<Box<Sleep>>>,
}

impl<T> DeadlineIo<T> {
    /// Wraps `inner`; setting `upgraded` switches the deadlines off for good.
    pub(crate) fn new(
        inner: T,
        limit: Duration,
        upgraded: Arc<AtomicBool>,
        metrics: Arc<Metrics>,
        tally: Arc<Tally>,
    ) -> Self {
        DeadlineIo {
            inner,
            limit,
            upgraded,
            metrics,
            tally,
            reading: None,
            writing: None,
        }
    }
}

/// What a pending read or write does: nothing once upgraded; else it fails if it has been
/// pending for the whole limit (the timer starts at the first `Pending` and ends at the next
/// progress).
fn pending<T, R>(
    io: &mut DeadlineIo<T>,
    writing: bool,
    cx: &mut Context<'_>,
) -> Poll<io::Result<R>> {
    let timer = if writing {
        &mut io.writing
    } else {
        &mut io.reading
    };
    if io.upgraded.load(Ordering::Relaxed) {
        *timer = None;
        return Poll::Pending;
    }
    let limit = io.limit;
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
    ready!(sleep.as_mut().poll(cx));
    io.metrics.http_timeouts.inc();
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no progress within --http-timeout",
    )))
}

/// Progress: the next pending call starts a fresh timer.
fn progressed<R>(timer: &mut Option<Pin<Box<Sleep>>>, result: R) -> Poll<R> {
    *timer = None;
    Poll::Ready(result)
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let read = buf.filled().len() - before;
                this.tally.read(read);
                progressed(&mut this.reading, result)
            }
            Poll::Pending => pending(this, false, cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.tally.wrote(&result);
                progressed(&mut this.writing, result)
            }
            Poll::Pending => pending(this, true, cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.tally.wrote(&result);
                progressed(&mut this.writing, result)
            }
            Poll::Pending => pending(this, true, cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => progressed(&mut this.writing, result),
            Poll::Pending => pending(this, true, cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(result) => progressed(&mut this.writing, result),
            Poll::Pending => pending(this, true, cx),
        }
    }
}
