//! The admins' stats stream, followed: `GET /api/admin/stats` with the credential (a
//! `fetch`, since an `EventSource` cannot send `Authorization`), its body read as it comes
//! and cut into events: `history` replaces the samples, each `sample` adds one. A refusal
//! (401, 403, 404) sends the console back to its sign-in screen; a stream that ends or
//! fails is opened again after [`RETRY_MS`].

use leptos::{prelude::*, task::spawn_local};
use shared::{
    console::Sample,
    sse::{parse_event, take_block},
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::Console;
use crate::connection::sleep_ms;

/// How long to wait before opening a stream that ended again.
const RETRY_MS: u32 = 2_000;

/// Follows the stream into `console` with `credential` while `following` holds.
pub fn follow(console: Console, credential: String, following: RwSignal<bool>) {
    spawn_local(async move {
        while following.try_get_untracked() == Some(true) {
            match read(console, &credential, following).await {
                Ended::Refused(status) => {
                    if following.try_get_untracked() == Some(true) {
                        console.refused_with(status, String::new());
                    }
                    return;
                }
                Ended::Closed => {
                    console.live.try_set(false);
                    sleep_ms(RETRY_MS).await;
                }
            }
        }
    });
}

/// How one stream ended.
enum Ended {
    /// The server refused the credential, with this status.
    Refused(u16),
    /// It ended, failed or could not open: open another.
    Closed,
}

/// Opens one stream and reads it to its end.
async fn read(console: Console, credential: &str, following: RwSignal<bool>) -> Ended {
    let response = gloo_net::http::Request::get("/api/admin/stats")
        .header("Authorization", &format!("Bearer {credential}"))
        .header("Accept", "text/event-stream")
        .send()
        .await;
    let Ok(response) = response else {
        return Ended::Closed;
    };
    match response.status() {
        200 => {}
        status @ (401 | 403 | 404) => return Ended::Refused(status),
        _ => return Ended::Closed,
    }
    let Some(body) = response.body() else {
        return Ended::Closed;
    };
    let Ok(reader) = body
        .get_reader()
        .dyn_into::<web_sys::ReadableStreamDefaultReader>()
    else {
        return Ended::Closed;
    };
    console.live.try_set(true);
    let mut pending: Vec<u8> = Vec::new();
    while following.try_get_untracked() == Some(true) {
        let Ok(chunk) = JsFuture::from(reader.read()).await else {
            break;
        };
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) else {
            break;
        };
        pending.extend(js_sys::Uint8Array::new(&value).to_vec());
        while let Some(block) = take_block(&mut pending) {
            let Some(event) = parse_event(&block) else {
                continue;
            };
            match event.event.as_str() {
                "history" => {
                    if let Ok(samples) = serde_json::from_str::<Vec<Sample>>(&event.data) {
                        console.history(samples);
                    }
                }
                "sample" => {
                    if let Ok(sample) = serde_json::from_str::<Sample>(&event.data) {
                        console.sample(sample);
                    }
                }
                _ => {}
            }
        }
    }
    // Stopped reading: let the browser close the request.
    let _ = reader.cancel();
    Ended::Closed
}
