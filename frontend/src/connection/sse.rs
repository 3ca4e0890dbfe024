//! The fallback transport, for where a WebSocket cannot open (a proxy that strips `Upgrade`):
//! the same session over Server-Sent Events and POSTs (see docs/PROTOCOL.md, "The SSE
//! transport").
//!
//! `POST /sse` with the `hello` opens it; an `EventSource` on the stream it names reads the
//! server's messages (and, should the stream be cut, reopens it with `Last-Event-ID`, so
//! nothing is lost or repeated); each frame the page sends goes in a POST. POSTs go one at
//! a time, in order: frames written while one is in flight wait and go together in the
//! next, one per line.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

use futures_channel::mpsc;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{EventSource, MessageEvent};

/// What the stream brought, for the connection's reader.
pub(super) enum Event {
    /// A server message's text.
    Text(String),
    /// A binary frame (sent base64-encoded, as `event: binary`).
    Binary(Vec<u8>),
    /// The server's heartbeat: answered with an empty POST (a WebSocket's pong).
    Ping,
    /// The server closed the connection, with this code.
    Close(u16),
    /// The transport is gone (the server no longer knows it, or cannot be reached).
    Failed,
}

/// An open SSE transport: its stream, and the POSTs that carry the page's frames.
pub(super) struct SseLink {
    inner: Rc<Inner>,
}

struct Inner {
    /// `/sse/<id>`: POST frames here, DELETE to end.
    post_url: String,
    source: EventSource,
    events: mpsc::UnboundedSender<Event>,
    /// Frames written and not yet POSTed.
    outgoing: RefCell<Vec<String>>,
    /// A POST is on its way.
    in_flight: Cell<bool>,
    /// The transport ended (closed by the page, or failed): nothing more goes out.
    ended: Cell<bool>,
    /// The stream's listeners, kept as long as it is open.
    listeners: RefCell<Vec<Listener>>,
}

/// `POST /sse`'s answer: where the stream is, and where frames go.
#[derive(serde::Deserialize)]
struct Opened {
    events: String,
    post: String,
}

/// A `close` event's data (its reason is for people reading the stream).
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Built only by its `Deserialize`, which the lint does not see.
struct Closed {
    code: u16,
}

/// A listener on the stream.
type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// What a listener makes of one named event.
type Reading = Box<dyn Fn(&MessageEvent) -> Option<Event>>;

/// How long a POST the server could not take yet (429) waits before it goes again.
const BUSY_RETRY_MS: u32 = 250;

impl SseLink {
    /// Opens a transport whose first frame is `hello`: the link, and what its stream brings.
    /// `None` if the server did not open one.
    pub(super) async fn open(hello: &str) -> Option<(Self, mpsc::UnboundedReceiver<Event>)> {
        let response = gloo_net::http::Request::post("/sse")
            .header("Content-Type", "application/x-ndjson")
            .body(hello.to_owned())
            .ok()?
            .send()
            .await
            .ok()?;
        if response.status() != 201 {
            return None;
        }
        let Opened { events, post } = response.json().await.ok()?;
        let post_url = post;
        let source = EventSource::new(&events).ok()?;
        let (sender, receiver) = mpsc::unbounded();
        let inner = Rc::new(Inner {
            post_url,
            source,
            events: sender,
            outgoing: RefCell::new(Vec::new()),
            in_flight: Cell::new(false),
            ended: Cell::new(false),
            listeners: RefCell::new(Vec::new()),
        });
        inner.listen();
        Some((SseLink { inner }, receiver))
    }

    /// Sends one frame (in the next POST); false once the transport has ended.
    pub(super) fn send(&self, text: &str) -> bool {
        if self.inner.ended.get() {
            return false;
        }
        self.inner.outgoing.borrow_mut().push(text.to_owned());
        Inner::flush(&self.inner);
        true
    }

    /// Answers the server's heartbeat: an empty line, so a POST goes out (alone, or with
    /// what was waiting).
    pub(super) fn pong(&self) {
        self.send("");
    }
}

impl Drop for SseLink {
    /// Ends the transport: the stream is closed and the server told (`DELETE`).
    fn drop(&mut self) {
        let inner = &self.inner;
        let was_open = !inner.ended.replace(true);
        inner.source.close();
        inner.listeners.borrow_mut().clear();
        if was_open {
            let url = inner.post_url.clone();
            spawn_local(async move {
                let _ = gloo_net::http::Request::delete(&url).send().await;
            });
        }
    }
}

impl Inner {
    /// Hands each of the stream's events to the reader.
    fn listen(self: &Rc<Self>) {
        let on = |name: &str, handle: Reading| {
            let events = self.events.clone();
            let listener =
                Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
                    if let Some(event) = event.dyn_ref::<MessageEvent>().and_then(&handle) {
                        let _ = events.unbounded_send(event);
                    }
                });
            let _ = self
                .source
                .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            self.listeners.borrow_mut().push(listener);
        };
        on(
            "message",
            Box::new(|e| e.data().as_string().map(Event::Text)),
        );
        on(
            "binary",
            Box::new(|e| {
                let data = e.data().as_string()?;
                let bytes = web_sys::window()?.atob(&data).ok()?;
                // `atob` gives one char per byte.
                Some(Event::Binary(bytes.chars().map(|c| c as u8).collect()))
            }),
        );
        on("ping", Box::new(|_| Some(Event::Ping)));
        on(
            "close",
            Box::new(|e| {
                let data: serde_json::Value = serde_json::from_str(&e.data().as_string()?).ok()?;
                let code = data.get("code")?.as_u64()?;
                Some(Event::Close(u16::try_from(code).unwrap_or(1000)))
            }),
        );
        // An error with the source closed: the server refused the stream (the transport
        // ended, or the server restarted and never knew it). An error while it reconnects
        // by itself (with `Last-Event-ID`) is not the end.
        let events = self.events.clone();
        let source = self.source.clone();
        let on_error = Listener::new(move |_: web_sys::Event| {
            if source.ready_state() == EventSource::CLOSED {
                let _ = events.unbounded_send(Event::Failed);
            }
        });
        let _ = self
            .source
            .add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
        self.listeners.borrow_mut().push(on_error);
    }

    /// POSTs what waits, unless a POST is on its way (it flushes again when it is done).
    fn flush(this: &Rc<Self>) {
        if this.in_flight.get() || this.ended.get() || this.outgoing.borrow().is_empty() {
            return;
        }
        let batch = std::mem::take(&mut *this.outgoing.borrow_mut());
        this.in_flight.set(true);
        let this = this.clone();
        spawn_local(async move {
            let body = batch.join("\n");
            let status = match gloo_net::http::Request::post(&this.post_url)
                .header("Content-Type", "application/x-ndjson")
                .body(body)
            {
                Ok(request) => request.send().await.map(|r| r.status()).ok(),
                Err(_) => None,
            };
            this.in_flight.set(false);
            match status {
                Some(202) => {}
                // The server's inbox for this connection is full; nothing was taken: the
                // same frames go again, first, a moment later.
                Some(429) => {
                    this.outgoing.borrow_mut().splice(0..0, batch);
                    this.in_flight.set(true);
                    sleep_ms(BUSY_RETRY_MS).await;
                    this.in_flight.set(false);
                }
                // Gone (404), refused, or unreachable: the connection starts again (and
                // its session resends what was not acknowledged).
                _ => {
                    if !this.ended.replace(true) {
                        let _ = this.events.unbounded_send(Event::Failed);
                    }
                    return;
                }
            }
            Inner::flush(&this);
        });
    }
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: u32) {
    let (done, wait) = futures_channel::oneshot::channel::<()>();
    let handle = leptos::prelude::set_timeout_with_handle(
        move || {
            let _ = done.send(());
        },
        std::time::Duration::from_millis(u64::from(ms)),
    );
    let _ = wait.await;
    drop(handle);
}
