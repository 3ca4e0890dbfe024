//! The live product list (the course's `realTimeProducts`): [`Catalog`] keeps the products
//! (in the same SQLite file as the chat, table `products`; in memory with `--memory`) and the
//! connections watching them, and tells every watcher of every change, whoever made it: the
//! HTTP API (`api`) or a page over the WebSocket (`ws::dispatch`).
//!
//! One lock orders everything: a change is written, then broadcast, under it, and a new
//! watcher gets the list under it; so every watcher sees the changes in the same order, none
//! twice, none missed, and every list is ordered by id (creation order).

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use rusqlite::{Connection, params};
use shared::{FieldError, NewProduct, Price, Problem, Product, ProductField, ProductId, ServerMsg};

use crate::{
    metrics::Metrics,
    outbox::{ConnKey, Frame, Outbox},
    store::StoreError,
};

/// Why a product was not created.
#[derive(Debug)]
pub(crate) enum AddRefused {
    /// Fields break the rules (HTTP 400).
    Invalid(Vec<FieldError>),
    /// Another product has this code (HTTP 409).
    Taken(FieldError),
    /// The catalog holds as many products as it may (HTTP 507).
    Full(usize),
    /// The store failed (HTTP 500).
    Store(StoreError),
}

impl AddRefused {
    /// The field errors to show (a full catalog or a failed store has none).
    pub(crate) fn errors(&self) -> Vec<FieldError> {
        match self {
            AddRefused::Invalid(errors) => errors.clone(),
            AddRefused::Taken(error) => vec![error.clone()],
            AddRefused::Full(_) | AddRefused::Store(_) => Vec::new(),
        }
    }
}

/// Where the products are kept durably (none with `--memory`).
enum Disk {
    Sqlite(Connection),
    None,
}

struct Inner {
    /// Every product, by id: the list is served from here, never from the disk.
    products: BTreeMap<ProductId, Product>,
    next_id: ProductId,
    disk: Disk,
    watchers: HashMap<ConnKey, Arc<Outbox>>,
}

/// The products and who watches them.
pub(crate) struct Catalog {
    inner: Mutex<Inner>,
    max_products: usize,
    metrics: Arc<Metrics>,
}

/// A product id as SQLite's `INTEGER`.
fn int_id(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::OutOfRange("a product id"))
}

impl Catalog {
    /// The catalog in `<dir>/charla.sqlite3` (its schema made by the history store, which
    /// opens the file first), or in memory when `dir` is `None`.
    pub(crate) fn open(
        dir: Option<&Path>,
        max_products: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let (disk, products, last_id) = match dir {
            None => (Disk::None, Vec::new(), 0),
            Some(dir) => {
                let db = Connection::open(dir.join("charla.sqlite3"))?;
                db.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")?;
                let products = load(&db)?;
                // AUTOINCREMENT remembers the highest id ever given, deleted or not.
                let last: i64 = db.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'products'",
                    [],
                    |row| row.get(0),
                )?;
                (Disk::Sqlite(db), products, u64::try_from(last).unwrap_or(0))
            }
        };
        // Ids are never reused: a page holding an old id never deletes a newer product.
        let next_id = products.last().map_or(0, |p| p.id).max(last_id) + 1;
        metrics
            .products
            .set(i64::try_from(products.len()).unwrap_or(i64::MAX));
        Ok(Catalog {
            inner: Mutex::new(Inner {
                products: products.into_iter().map(|p| (p.id, p)).collect(),
                next_id,
                disk,
                watchers: HashMap::new(),
            }),
            max_products,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change is applied to the map only after the disk took it: a panic cannot
        // leave the two apart.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The products whose id is above `after` (all: `None`), by id, as many as fit
    /// `max_bytes` (one at least, so that paging always moves); and whether more follow.
    pub(crate) fn list_after(
        &self,
        after: Option<ProductId>,
        max_bytes: usize,
    ) -> (Vec<Product>, bool) {
        let inner = self.lock();
        page_after(&inner.products, after, max_bytes)
    }

    /// A `products` frame: the page after `after` (the first page: `None`).
    pub(crate) fn page(&self, after: Option<ProductId>, max_bytes: usize) -> Frame {
        let (products, has_more) = self.list_after(after, max_bytes);
        Frame::encode(&ServerMsg::Products(shared::server::Products {
            products,
            after,
            has_more,
        }))
    }

    /// Checks and creates a product, durably, and tells every watcher. Blocks on the disk:
    /// call it off the async threads.
    pub(crate) fn add(&self, product: &NewProduct) -> Result<Product, AddRefused> {
        let product = product.check().map_err(AddRefused::Invalid)?;
        let mut inner = self.lock();
        if inner.products.values().any(|p| p.code == product.code) {
            return Err(AddRefused::Taken(FieldError::new(
                ProductField::Code,
                Problem::Taken,
            )));
        }
        if inner.products.len() >= self.max_products {
            return Err(AddRefused::Full(self.max_products));
        }
        let product = product.with_id(inner.next_id);
        if let Disk::Sqlite(db) = &inner.disk {
            db.execute(
                "INSERT INTO products (id, title, description, code, price, stock)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    int_id(product.id).map_err(AddRefused::Store)?,
                    product.title,
                    product.description,
                    product.code,
                    product.price.0,
                    product.stock
                ],
            )
            .map_err(|e| AddRefused::Store(e.into()))?;
        }
        inner.next_id = product.id + 1;
        inner.products.insert(product.id, product.clone());
        self.metrics.products.inc();
        broadcast(
            &inner,
            &ServerMsg::ProductAdded(shared::server::ProductAdded {
                product: product.clone(),
            }),
        );
        tracing::info!(id = product.id, code = %product.code, "product added");
        Ok(product)
    }

    /// Deletes a product, durably, and tells every watcher; `false` if there is none with
    /// this id. Blocks on the disk: call it off the async threads.
    pub(crate) fn remove(&self, id: ProductId) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.products.contains_key(&id) {
            return Ok(false);
        }
        if let Disk::Sqlite(db) = &inner.disk {
            let id = int_id(id)?;
            db.execute("DELETE FROM products WHERE id = ?1", params![id])?;
        }
        inner.products.remove(&id);
        self.metrics.products.dec();
        broadcast(
            &inner,
            &ServerMsg::ProductRemoved(shared::server::ProductRemoved { id }),
        );
        tracing::info!(id, "product removed");
        Ok(true)
    }

    /// Starts telling `outbox` of every change, after the whole list (as a `products`).
    pub(crate) fn watch(&self, key: ConnKey, outbox: &Arc<Outbox>) {
        let mut inner = self.lock();
        // The first page under the lock: no change can fall between it and the changes
        // that follow. Later pages are asked for (`load_products`); a change to a product
        // on one of them reaches this watcher as a change, and the page then shows it too.
        let (products, has_more) = page_after(&inner.products, None, outbox.reply_budget());
        outbox.push(Frame::encode(&ServerMsg::Products(
            shared::server::Products {
                products,
                after: None,
                has_more,
            },
        )));
        if inner.watchers.insert(key, outbox.clone()).is_none() {
            self.metrics.product_watchers.inc();
        }
    }

    /// Stops telling this connection of changes.
    pub(crate) fn unwatch(&self, key: ConnKey) {
        if self.lock().watchers.remove(&key).is_some() {
            self.metrics.product_watchers.dec();
        }
    }

    /// Whether this connection watches the products.
    pub(crate) fn is_watching(&self, key: ConnKey) -> bool {
        self.lock().watchers.contains_key(&key)
    }
}

/// Encodes a change once and queues it for every watcher.
/// The products above `after`, by id, while their JSON fits `max_bytes` (one at least);
/// and whether more follow.
fn page_after(
    products: &BTreeMap<ProductId, Product>,
    after: Option<ProductId>,
    max_bytes: usize,
) -> (Vec<Product>, bool) {
    let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    let mut page = Vec::new();
    let mut bytes = 0;
    for product in products
        .range((start, std::ops::Bound::Unbounded))
        .map(|(_, p)| p)
    {
        let size = serde_json::to_vec(product).map_or(0, |v| v.len()) + 1;
        if bytes + size > max_bytes && !page.is_empty() {
            return (page, true);
        }
        bytes += size;
        page.push(product.clone());
    }
    (page, false)
}

fn broadcast(inner: &Inner, msg: &ServerMsg) {
    let frame = Frame::encode(msg);
    for outbox in inner.watchers.values() {
        outbox.push(frame.clone());
    }
}

fn load(db: &Connection) -> Result<Vec<Product>, StoreError> {
    let mut stmt =
        db.prepare("SELECT id, title, description, code, price, stock FROM products ORDER BY id")?;
    let rows = stmt.query_map([], |row| {
        Ok(Product {
            id: row.get::<_, i64>(0)?.try_into().unwrap_or_default(),
            title: row.get(1)?,
            description: row.get(2)?,
            code: row.get(3)?,
            price: Price(row.get(4)?),
            stock: row.get(5)?,
        })
    })?;
    rows.collect::<Result<_, _>>().map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(code: &str) -> NewProduct {
        NewProduct {
            title: "Mate".into(),
            description: "Calabaza".into(),
            code: code.into(),
            price: Price(12.5),
            stock: 3,
        }
    }

    #[test]
    fn products_survive_a_reopen_in_order_and_ids_are_never_reused() {
        let dir = std::env::temp_dir().join(format!(
            "charla-products-{}-{}",
            std::process::id(),
            crate::committer::now_ms()
        ));
        // The history store makes the schema.
        let store = crate::store::SqliteStore::open(&dir).expect("store");
        drop(store);
        let metrics = Arc::new(Metrics::new());
        let catalog = Catalog::open(Some(&dir), 10, metrics.clone()).expect("open");
        let a = catalog.add(&new("a")).expect("a");
        let b = catalog.add(&new("b")).expect("b");
        let c = catalog.add(&new("c")).expect("c");
        assert!(catalog.remove(c.id).expect("remove"));
        assert!(matches!(catalog.add(&new("a")), Err(AddRefused::Taken(_))));
        drop(catalog);
        let catalog = Catalog::open(Some(&dir), 10, metrics).expect("reopen");
        assert_eq!(catalog.list_after(None, usize::MAX), (vec![a, b], false));
        let d = catalog.add(&new("d")).expect("d");
        assert_eq!(d.id, c.id + 1, "ids rise past the deleted one's");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_full_catalog_refuses_and_a_bad_product_names_its_fields() {
        let catalog = Catalog::open(None, 1, Arc::new(Metrics::new())).expect("open");
        catalog.add(&new("a")).expect("a");
        assert!(matches!(catalog.add(&new("b")), Err(AddRefused::Full(1))));
        let mut bad = new("c");
        bad.price = Price(-1.0);
        match catalog.add(&bad) {
            Err(AddRefused::Invalid(errors)) => {
                assert_eq!(errors[0].field, ProductField::Price);
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }
}
