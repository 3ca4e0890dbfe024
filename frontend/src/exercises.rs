//! What the exercise pages beside the chat show, as signals: [`Exercises`]. The chat's
//! [`Connection`](crate::Connection) feeds it from its one `match` on `ServerMsg` (and from
//! the binary frames its socket receives); the pages in `components::exercises` read it.
//!
//! What a page asked the server for (a running ticker, watching the products) is kept here
//! too, so that after a reconnect the connection asks again ([`Exercises::resubscribe`]).

use leptos::prelude::*;
use shared::{
    ClientMsg, FieldError, Product, ProductId,
    exercises::{binary_pattern, checksum},
};

/// The most random numbers a page keeps (newest first).
pub const RANDOMS_KEPT: usize = 50;
/// The most echoes a page keeps.
pub const ECHOES_KEPT: usize = 100;

/// The ticker this page runs (one per page; the server allows five per connection).
pub const PAGE_TICKER: u32 = 1;

/// A binary frame the page received and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryCheck {
    /// Its size, in bytes.
    pub size: u32,
    /// The FNV-1a checksum of the bytes received.
    pub checksum: u32,
    /// Whether the bytes are the size and checksum the server announced and the known
    /// pattern.
    pub verified: bool,
}

/// The outcome of the page's last `add_product`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductForm {
    /// Nothing sent, or the form was edited since.
    Idle,
    /// Sent; waiting for the server.
    Sending {
        /// The code sent (the reply names it).
        code: String,
    },
    /// Created.
    Saved {
        /// Its id.
        id: ProductId,
    },
    /// Refused, with every field's problem.
    Refused(Vec<FieldError>),
}

/// The exercises' state. `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct Exercises {
    /// The server's greeting, from the `welcome`.
    pub greeting: RwSignal<Option<String>>,
    /// What came back from `echo` messages on the JSON socket, oldest first.
    pub echoes: RwSignal<Vec<String>>,
    /// The last tic sent (`TIC-n`); 0 before the first.
    pub tics: RwSignal<u64>,
    /// The binary frame announced and not yet received: (size, checksum).
    pub binary_expected: RwSignal<Option<(u32, u32)>>,
    /// The last binary frame received, checked.
    pub binary: RwSignal<Option<BinaryCheck>>,
    /// The interval the page's ticker should run at (`None`: stopped).
    pub ticker_wanted: RwSignal<Option<u32>>,
    /// The interval the server confirmed (`None`: not running).
    pub ticker_running: RwSignal<Option<u32>>,
    /// Random numbers received, newest first.
    pub randoms: RwSignal<Vec<u32>>,
    /// Whether the live product page is open (and so watching).
    pub watching: RwSignal<bool>,
    /// The product list, oldest first (`None`: not received yet).
    pub products: RwSignal<Option<Vec<Product>>>,
    /// The product form's state.
    pub form: RwSignal<ProductForm>,
}

impl Default for Exercises {
    fn default() -> Self {
        Self::new()
    }
}

impl Exercises {
    /// Nothing received yet.
    pub fn new() -> Self {
        Exercises {
            greeting: RwSignal::new(None),
            echoes: RwSignal::new(Vec::new()),
            tics: RwSignal::new(0),
            binary_expected: RwSignal::new(None),
            binary: RwSignal::new(None),
            ticker_wanted: RwSignal::new(None),
            ticker_running: RwSignal::new(None),
            randoms: RwSignal::new(Vec::new()),
            watching: RwSignal::new(false),
            products: RwSignal::new(None),
            form: RwSignal::new(ProductForm::Idle),
        }
    }

    /// What to ask the server again on a new connection: the running ticker, the product
    /// list.
    pub fn resubscribe(&self) -> Vec<ClientMsg> {
        let mut frames = Vec::new();
        self.ticker_running.set(None);
        if let Some(every_ms) = self.ticker_wanted.get_untracked() {
            frames.push(ClientMsg::StartTicker {
                ticker: PAGE_TICKER,
                every_ms,
            });
        }
        if self.watching.get_untracked() {
            frames.push(ClientMsg::WatchProducts);
        }
        frames
    }

    /// An `echo` came back.
    pub fn echoed(&self, text: String) {
        self.echoes.update(|e| {
            e.push(text);
            if e.len() > ECHOES_KEPT {
                e.remove(0);
            }
        });
    }

    /// A random number arrived.
    pub fn random(&self, ticker: u32, n: u32) {
        if ticker == PAGE_TICKER && self.ticker_wanted.get_untracked().is_some() {
            self.randoms.update(|r| {
                r.insert(0, n);
                r.truncate(RANDOMS_KEPT);
            });
        }
    }

    /// A binary frame arrived: checked against what the server announced and the pattern.
    pub fn binary_frame(&self, bytes: &[u8]) {
        let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let sum = checksum(bytes);
        let verified = self
            .binary_expected
            .get_untracked()
            .is_some_and(|(want_size, want_sum)| {
                want_size == size && want_sum == sum && bytes == binary_pattern(size).as_slice()
            });
        self.binary_expected.set(None);
        self.binary.set(Some(BinaryCheck {
            size,
            checksum: sum,
            verified,
        }));
    }

    /// A page of the product list: the first replaces the list, later ones merge into it
    /// (a product already there from a `product_added` is not shown twice). Returns the
    /// request for the next page, if more follow.
    pub fn products_page(
        &self,
        products: Vec<Product>,
        after: Option<ProductId>,
        has_more: bool,
    ) -> Option<ClientMsg> {
        let last = products.last().map(|p| p.id);
        match after {
            None => self.products.set(Some(products)),
            Some(_) => self.products.update(|list| {
                let list = list.get_or_insert_with(Vec::new);
                for product in products {
                    if let Err(at) = list.binary_search_by_key(&product.id, |p| p.id) {
                        list.insert(at, product);
                    }
                }
            }),
        }
        let after = last.filter(|_| has_more)?;
        Some(ClientMsg::LoadProducts { after })
    }

    /// A product was created.
    pub fn added(&self, product: Product) {
        if let ProductForm::Sending { code } = self.form.get_untracked()
            && code == product.code
        {
            self.form.set(ProductForm::Saved { id: product.id });
        }
        self.products.update(|list| {
            if let Some(list) = list
                && !list.iter().any(|p| p.id == product.id)
            {
                let at = list.partition_point(|p| p.id < product.id);
                list.insert(at, product);
            }
        });
    }

    /// A product was deleted.
    pub fn removed(&self, id: ProductId) {
        self.products.update(|list| {
            if let Some(list) = list {
                list.retain(|p| p.id != id);
            }
        });
    }

    /// The page's product was refused.
    pub fn refused(&self, code: &str, errors: Vec<FieldError>) {
        if matches!(self.form.get_untracked(), ProductForm::Sending { code: sent } if sent == code)
        {
            self.form.set(ProductForm::Refused(errors));
        }
    }
}
