//! The exercises beside the chat, on the same JSON socket: `echo`, the `tic` named event,
//! binary frames, random tickers, and the product list. Each takes a token from the
//! connection's frame rate like any other request, and is refused with a typed `error`.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use shared::{
    ErrorCode, NewProduct, ProductId, ServerMsg,
    exercises::{
        MAX_BINARY_BYTES, MAX_TICKER_MS, MAX_TICKERS_PER_CONN, MIN_TICKER_MS, RANDOM_RANGE,
        binary_pattern, checksum,
    },
};

use super::super::connection::{Connection, Flow, Refused, Ticker};
use crate::{
    outbox::{Frame, Outbox},
    products::AddRefused,
};

/// Counts a running ticker in the `tickers` gauge for as long as it lives: owned by the
/// ticker's task, so the count drops however the task ends (aborted or finished).
struct Counted(Gauge);

impl Counted {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The largest binary frame's bytes, made once; smaller frames share a prefix of them.
fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| Bytes::from(binary_pattern(MAX_BINARY_BYTES)))
}

/// A random number in [`RANDOM_RANGE`] (uniform: numbers past the last whole multiple of the
/// range's size are drawn again).
fn random_number() -> u32 {
    let span = RANDOM_RANGE.end() - RANDOM_RANGE.start() + 1;
    let zone = u32::MAX - u32::MAX % span;
    loop {
        let mut buf = [0u8; 4];
        if getrandom::fill(&mut buf).is_err() {
            // No system randomness (it does not happen on Linux): any number is fine here.
            return *RANDOM_RANGE.start();
        }
        let n = u32::from_le_bytes(buf);
        if n < zone {
            return RANDOM_RANGE.start() + n % span;
        }
    }
}

/// Sends a random number to `outbox` every `every`, until aborted or the outbox closes.
async fn run_ticker(outbox: Arc<Outbox>, ticker: u32, every: Duration, counted: Counted) {
    let _counted = counted;
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let n = random_number();
        if !outbox.push(Frame::encode(&ServerMsg::Random(shared::server::Random {
            ticker,
            n,
        }))) {
            return; // The connection is closing (or stopped reading).
        }
    }
}

impl Connection {
    /// `watch_products`: the catalog, then every change to it.
    pub(super) fn watch_products(&mut self, now: Instant) -> Flow {
        self.answer_with(now, |conn| conn.catalog.watch(conn.key, &conn.outbox))
    }

    /// `unwatch_products`: no more changes.
    pub(super) fn unwatch_products(&mut self, now: Instant) -> Flow {
        self.answer_with(now, |conn| conn.catalog.unwatch(conn.key))
    }

    /// `load_products`: the next page of the catalog, within the reply budget.
    pub(super) fn load_products(&mut self, after: ProductId, now: Instant) -> Flow {
        self.answer(now, |conn| {
            conn.catalog.page(Some(after), conn.outbox.reply_budget())
        })
    }

    /// `echo`: the same text back, within the text limit.
    pub(super) fn echo(&mut self, text: String, now: Instant) -> Flow {
        if let Err(refused) = self.check_length(&text) {
            return self.refuse(now, refused);
        }
        self.answer(now, |_| {
            Frame::encode(&ServerMsg::Echo(shared::server::Echo { text }))
        })
    }

    /// `tic`: logged with the sender's id; never answered.
    pub(super) fn tic(&mut self, n: u64, now: Instant) -> Flow {
        self.answer_with(now, |conn| {
            tracing::info!(
                conn = conn.key.0,
                id = %conn.who.id,
                tic = %format_args!("TIC-{n}"),
                "tic event"
            );
        })
    }

    /// `binary`: announces the frame (`binary` with its size and checksum), then sends it.
    pub(super) fn binary(&mut self, size: u32, now: Instant) -> Flow {
        if size == 0 || size > MAX_BINARY_BYTES {
            return self.refuse(
                now,
                Refused::new(
                    ErrorCode::BadField,
                    format!("size must be 1 to {MAX_BINARY_BYTES} bytes"),
                ),
            );
        }
        self.answer_with(now, |conn| {
            let bytes = pattern().slice(..usize::try_from(size).unwrap_or(0));
            let checksum = checksum(&bytes);
            // Announce and frame back to back: the frame is the next one after its
            // announcement, whatever else is being sent to this client.
            conn.outbox.push_all([
                Frame::encode(&ServerMsg::Binary(shared::server::Binary {
                    size,
                    checksum,
                })),
                Frame::binary(bytes),
            ]);
        })
    }

    /// `start_ticker`: starts (or re-times) a ticker, at most [`MAX_TICKERS_PER_CONN`].
    pub(super) fn start_ticker(&mut self, ticker: u32, every_ms: u32, now: Instant) -> Flow {
        if !(MIN_TICKER_MS..=MAX_TICKER_MS).contains(&every_ms) {
            return self.refuse(
                now,
                Refused::new(
                    ErrorCode::BadField,
                    format!("every_ms must be {MIN_TICKER_MS} to {MAX_TICKER_MS}"),
                ),
            );
        }
        if !self.tickers.contains_key(&ticker) && self.tickers.len() >= MAX_TICKERS_PER_CONN {
            return self.refuse(
                now,
                Refused::new(
                    ErrorCode::TooManyTickers,
                    format!(
                        "a connection may run at most {MAX_TICKERS_PER_CONN} tickers; stop one first"
                    ),
                ),
            );
        }
        self.answer(now, |conn| {
            let counted = Counted::new(&conn.metrics.tickers);
            let every = Duration::from_millis(u64::from(every_ms));
            let task = tokio::spawn(run_ticker(conn.outbox.clone(), ticker, every, counted));
            // Replacing a ticker drops (and so stops) the old one.
            conn.tickers.insert(
                ticker,
                Ticker {
                    task: task.abort_handle(),
                },
            );
            Frame::encode(&ServerMsg::Ticker(shared::server::Ticker {
                ticker,
                every_ms,
            }))
        })
    }

    /// `stop_ticker`: stops a ticker; an unknown one is `not_found`.
    pub(super) fn stop_ticker(&mut self, ticker: u32, now: Instant) -> Flow {
        if !self.tickers.contains_key(&ticker) {
            return self.refuse(
                now,
                Refused::new(
                    ErrorCode::NotFound,
                    format!("no ticker {ticker} is running"),
                ),
            );
        }
        self.answer(now, |conn| {
            conn.tickers.remove(&ticker);
            Frame::encode(&ServerMsg::TickerStopped(shared::server::TickerStopped {
                ticker,
            }))
        })
    }

    /// A product change's tokens: one of the connection's frames and one of its address's
    /// product writes (shared with the HTTP API). `Err` carries what the refusal returns.
    fn take_product_write(&mut self, now: Instant) -> Result<(), Flow> {
        if !self.frames.try_take(now) {
            return Err(self.rate_limited(now, "frame"));
        }
        if !self
            .shared_sends
            .product_writes
            .try_take(&self.address, now)
        {
            return Err(self.rate_limited(now, "product"));
        }
        Ok(())
    }

    /// `add_product`: created off the async threads (the disk write blocks); every watcher
    /// gets `product_added`, the sender too; a refusal comes back as `product_refused`.
    pub(super) fn add_product(&mut self, product: NewProduct, now: Instant) -> Flow {
        if let Err(close) = self.take_product_write(now) {
            return close;
        }
        let catalog = self.catalog.clone();
        let outbox = self.outbox.clone();
        let key = self.key;
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || match catalog.add(&product) {
            Ok(added) => {
                // A watcher already got it with everyone else.
                if !catalog.is_watching(key) {
                    outbox.push(Frame::encode(&ServerMsg::ProductAdded(
                        shared::server::ProductAdded { product: added },
                    )));
                }
            }
            Err(AddRefused::Store(err)) => {
                tracing::error!(%err, "could not store a product");
                metrics.error(ErrorCode::Unavailable.as_str());
                outbox.push(Frame::encode(&ServerMsg::error(
                    ErrorCode::Unavailable,
                    "the server could not store the product; try again later",
                )));
            }
            Err(AddRefused::Full(max)) => {
                metrics.error(ErrorCode::Unavailable.as_str());
                outbox.push(Frame::encode(&ServerMsg::error(
                    ErrorCode::Unavailable,
                    format!("the catalog holds its maximum of {max} products; delete one first"),
                )));
            }
            Err(refused) => {
                outbox.push(Frame::encode(&ServerMsg::ProductRefused(
                    shared::server::ProductRefused {
                        code: product.code,
                        errors: refused.errors(),
                    },
                )));
            }
        });
        Flow::Continue
    }

    /// `delete_product`: deleted off the async threads; every watcher gets
    /// `product_removed`; an unknown id is `not_found`.
    pub(super) fn delete_product(&mut self, id: ProductId, now: Instant) -> Flow {
        if let Err(close) = self.take_product_write(now) {
            return close;
        }
        let catalog = self.catalog.clone();
        let outbox = self.outbox.clone();
        let key = self.key;
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let (code, message) = match catalog.remove(id) {
                Ok(true) => {
                    if !catalog.is_watching(key) {
                        outbox.push(Frame::encode(&ServerMsg::ProductRemoved(
                            shared::server::ProductRemoved { id },
                        )));
                    }
                    return;
                }
                Ok(false) => (ErrorCode::NotFound, format!("no product has id {id}")),
                Err(err) => {
                    tracing::error!(%err, "could not delete a product");
                    (
                        ErrorCode::Unavailable,
                        "the server could not delete the product; try again later".to_owned(),
                    )
                }
            };
            metrics.error(code.as_str());
            outbox.push(Frame::encode(&ServerMsg::error(code, message)));
        });
        Flow::Continue
    }
}
