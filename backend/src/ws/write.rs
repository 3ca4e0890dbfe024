//! A connection's writes: each batch of its [`Outbox`] goes out in one write (a small
//! batch, copied into a buffer that lives for that write) or in as few `writev` calls as the
//! kernel allows (a big one, every data frame's header beside its payload taken from the
//! shared bytes); no write buffer is kept once written; the heartbeat says when to ping
//! and when a client went silent; a write that makes no progress hangs up on a client that
//! stopped reading.
//!
//! Data frames bypass tungstenite, which would copy each one into a buffer of its own and
//! keep that buffer's capacity (the largest batch ever written) for the connection's life:
//! 110 KB per idle connection once it had been sent a 500-line history. tungstenite still
//! writes pings, pongs and close frames; its own buffer is flushed before data frames are
//! written, and a data frame is always written whole before anything else, so frames never
//! interleave. A server's frames are not masked (RFC 6455, section 5.1), so a frame is its
//! header and its payload as they are.

use std::{
    io::IoSlice,
    time::{Duration, Instant},
};

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{FutureExt as _, SinkExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;

use super::{CLOSE_GRACE, wire::Wire};
use crate::{
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, Frame, Outbox},
};

/// The server's side of the heartbeat: how often to ping, and how long a client may stay
/// silent (two intervals).
pub(crate) struct Heartbeat {
    every: Duration,
}

/// Counts frames out per message type once per batch, not once per frame: this is the
/// fan-out's hottest loop, and a label lookup takes a lock.
pub(super) fn count_frames(metrics: &Metrics, frames: &[Frame]) {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    let mut bytes = 0;
    for frame in frames {
        bytes += frame.len() as u64;
        match counts.iter_mut().find(|(kind, _)| *kind == frame.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((frame.kind, 1)),
        }
    }
    metrics.deliveries.inc_by(frames.len() as u64);
    metrics.bytes_out.inc_by(bytes);
    for (kind, n) in counts {
        metrics
            .frames_out
            .get_or_create(&TypeLabel { r#type: kind })
            .inc_by(n);
    }
}

/// Writes every frame of the batch, then its close if it has one. A client that stops
/// reading blocks this write; meanwhile the outbox stays bounded (it closes itself past its
/// limit, and then the write gets a last grace period), and a write that makes no progress
/// (not one byte taken by the kernel) for two heartbeats ends it even if the client keeps
/// sending.
///
/// Silence is not judged here: nothing is read while a batch is written, so a client that
/// is talking would look silent. A client that neither reads nor talks stalls the write.
/// And "no progress" is measured on the write itself, polled once more before judging: a
/// server that was too busy to poll it (a loaded machine) never blames the client for it.
pub(super) async fn write_batch<W: Wire>(
    socket: &mut W,
    outbox: &Outbox,
    metrics: &Metrics,
    heartbeat: &Heartbeat,
    ping: &mut tokio::time::Interval,
    batch: crate::outbox::Batch,
) -> Written {
    let close = batch.close;
    // Bytes of data frames the kernel has taken so far.
    let progress = AtomicUsize::new(0);
    // After the client's Close, tungstenite owes it the answering Close, and nothing may
    // follow that (RFC 6455 §5.5.1): what was still queued for the client is dropped.
    let frames = match close {
        Some(CloseReason::ClientClosed) => &[][..],
        _ => &batch.frames[..],
    };
    let write = write_all(socket, frames, close, &progress);
    tokio::pin!(write);
    // Nearly every write completes at once (the kernel has room): then no watch on the
    // outbox's close and no look at the heartbeat are set up for it. A write that waits is
    // kept, not dropped, and goes on below.
    if let Some(result) = (&mut write).now_or_never() {
        return Written::Done(result.is_ok());
    }
    let mut seen = 0;
    let mut stuck_since = Instant::now();
    // Only a slow consumer is cut short: any other close (shutdown, a broken rule) lets this
    // batch finish and comes with the next one, after the frames before it.
    let mut watch_closing = close.is_none();
    loop {
        tokio::select! {
            result = &mut write => return Written::Done(result.is_ok()),
            reason = outbox.closed(), if watch_closing => {
                if reason != CloseReason::SlowConsumer {
                    watch_closing = false;
                    continue;
                }
                // Counted now, when it is decided. A close frame can follow only whole
                // frames: if the batch is still stuck after the grace period, the
                // connection just ends.
                metrics.close(reason.label());
                let whole = tokio::time::timeout(CLOSE_GRACE, &mut write).await.is_ok();
                return Written::Closed(reason, whole);
            }
            _ = ping.tick() => {
                // Give the write its chance first: if the socket took bytes, it is moving.
                if let Some(result) = (&mut write).now_or_never() {
                    return Written::Done(result.is_ok());
                }
                let now = progress.load(Ordering::Relaxed);
                if now != seen {
                    seen = now;
                    stuck_since = Instant::now();
                } else if stuck_since.elapsed() > 2 * heartbeat.every {
                    return Written::Stalled;
                }
            }
        }
    }
}

/// What is owed first (a pong, a close tungstenite owes), then the frames, then the close
/// if there is one.
async fn write_all<W: Wire>(
    socket: &mut W,
    frames: &[Frame],
    close: Option<CloseReason>,
    progress: &AtomicUsize,
) -> Result<(), tungstenite::Error> {
    socket.flush().await?;
    socket.write_frames(frames, progress).await?;
    match close {
        // tungstenite queued the answer to the client's close when it read it: flushing
        // sends it (a second close would be refused).
        Some(CloseReason::ClientClosed) | None => socket.flush().await,
        Some(reason) => socket.send(Message::Close(Some(reason.ws_frame()))).await,
    }
}

/// A WebSocket over any byte stream writes its data frames with [`write_frames`].
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Wire for WebSocketStream<S> {
    fn write_frames<'a>(
        &'a mut self,
        frames: &'a [Frame],
        progress: &'a AtomicUsize,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        write_frames(self.get_mut(), frames, progress)
    }
}

/// Writes whole data frames to the socket: for each frame its header, then its payload's
/// pieces, gathered into `writev` calls until every byte is written. `progress` counts the
/// bytes written so far.
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[Frame],
    progress: &AtomicUsize,
) -> std::io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    // A small batch (a line, an ack, a presence: nearly every batch) is copied into one
    // buffer and written in one piece: for a few hundred bytes, the kernel's per-segment work
    // on a gather list costs more than the copy (perf: `_copy_from_iter` was 8 % of the
    // fan-out with a header and a payload per frame). The buffer lives only for this write.
    let total: usize = frames.iter().map(|frame| frame.len() + MAX_HEADER).sum();
    if total <= COPY_UP_TO {
        let mut buf = Vec::with_capacity(total);
        for frame in frames {
            push_header(&mut buf, frame.is_binary(), frame.len());
            frame.for_each_piece(|piece| buf.extend_from_slice(piece));
        }
        // (No flush here: the caller's flush of the socket follows every batch.)
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let written = io.write(rest).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            progress.fetch_add(written, Ordering::Relaxed);
            rest = &rest[written..];
        }
        return Ok(());
    }
    let mut headers = Vec::with_capacity(frames.len() * 4);
    let mut header_ends = Vec::with_capacity(frames.len());
    for frame in frames {
        push_header(&mut headers, frame.is_binary(), frame.len());
        header_ends.push(headers.len());
    }
    let mut slices = Vec::with_capacity(frames.len() * 2);
    let mut start = 0;
    for (frame, &end) in frames.iter().zip(&header_ends) {
        slices.push(IoSlice::new(&headers[start..end]));
        start = end;
        frame.for_each_piece(|piece| {
            if !piece.is_empty() {
                slices.push(IoSlice::new(piece));
            }
        });
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let written = io.write_vectored(rest).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        progress.fetch_add(written, Ordering::Relaxed);
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

/// The longest frame header: 2 bytes and a 64-bit length.
const MAX_HEADER: usize = 10;

/// Batches up to this size are copied into one buffer; bigger ones (a page of history, a
/// binary frame) are written from their shared bytes.
const COPY_UP_TO: usize = 16 * 1024;

/// A final, unmasked frame's header (RFC 6455, section 5.2): text or binary, and the
/// payload's length in 7, 16 or 64 bits.
fn push_header(out: &mut Vec<u8>, binary: bool, len: usize) {
    out.push(if binary { 0x82 } else { 0x81 });
    if let Ok(short) = u8::try_from(len)
        && short < 126
    {
        out.push(short);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// How a batch's write ended.
pub(super) enum Written {
    /// Written (or failed: `false`).
    Done(bool),
    /// The outbox closed while the write was stuck (counted); whether the batch was then
    /// written whole (so a close frame may follow).
    Closed(CloseReason, bool),
    /// The write made no progress for two heartbeats.
    Stalled,
}

impl Heartbeat {
    /// A heartbeat that pings every `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Heartbeat { every }
    }

    /// How often the server pings.
    pub(super) fn every(&self) -> Duration {
        self.every
    }

    /// Whether a client last heard at `last_heard` has said nothing for two intervals.
    pub(super) fn silent(&self, last_heard: Instant) -> bool {
        last_heard.elapsed() > 2 * self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What tungstenite reads from the bytes `write_frames` wrote, as a client would.
    async fn read_back(frames: &[Frame]) -> Vec<Message> {
        let (mut server, client) = tokio::io::duplex(1 << 20);
        let progress = AtomicUsize::new(0);
        write_frames(&mut server, frames, &progress)
            .await
            .expect("written");
        drop(server);
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            client,
            tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let mut read = Vec::new();
        while let Some(Ok(message)) = futures_util::StreamExt::next(&mut ws).await {
            read.push(message);
        }
        read
    }

    #[tokio::test]
    async fn frames_of_every_length_class_read_back_whole_and_in_order() {
        let short = "a".repeat(125);
        let medium = "b".repeat(126);
        let long = "c".repeat(65_536);
        let mut frames: Vec<Frame> = [&short, &medium, &long, &String::new()]
            .into_iter()
            .map(|text| {
                Frame::encode(&shared::ServerMsg::Echo(shared::server::Echo {
                    text: text.clone(),
                }))
            })
            .collect();
        frames.push(Frame::binary(vec![7u8; 70_000]));
        frames.push(Frame::spliced(
            "older",
            r#"{"x":["#.into(),
            vec![axum::extract::ws::Utf8Bytes::from_static(
                r#"{"t":"m","a":1}"#,
            )],
            9,
            "]}".into(),
        ));
        let read = read_back(&frames).await;
        assert_eq!(read.len(), frames.len());
        for (message, frame) in read.iter().zip(frames) {
            match message {
                Message::Text(text) => {
                    assert_eq!(text.as_str(), frame.into_bytes().as_str());
                }
                Message::Binary(bytes) => assert_eq!(bytes.as_ref(), &[7u8; 70_000][..]),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_small_batch_reads_back_whole_and_in_order() {
        let frames: Vec<Frame> = ["a", "", "ü ok"]
            .into_iter()
            .map(|text| {
                Frame::encode(&shared::ServerMsg::Echo(shared::server::Echo {
                    text: text.into(),
                }))
            })
            .chain([Frame::binary(vec![1u8, 2, 3])])
            .collect();
        let read = read_back(&frames).await;
        assert_eq!(read.len(), frames.len());
        for (message, frame) in read.iter().zip(frames) {
            match message {
                Message::Text(text) => assert_eq!(text.as_str(), frame.into_bytes().as_str()),
                Message::Binary(bytes) => assert_eq!(bytes.as_ref(), &[1u8, 2, 3][..]),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        let header = |binary, len| {
            let mut out = Vec::new();
            push_header(&mut out, binary, len);
            out
        };
        assert_eq!(header(false, 0), [0x81, 0]);
        assert_eq!(header(false, 125), [0x81, 125]);
        assert_eq!(header(true, 126), [0x82, 126, 0, 126]);
        assert_eq!(header(false, 65_535), [0x81, 126, 0xff, 0xff]);
        assert_eq!(header(false, 65_536), [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
