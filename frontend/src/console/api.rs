//! The console's requests to the server API, each with the credential as `Authorization:
//! Bearer …`. A 401, 403 or 404 means the credential (or the console) is gone: the caller
//! sends the page back to its sign-in screen ([`Console::refused_with`]).

use leptos::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

use super::Console;

/// Why a request did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The server answered with this status (and its message, if it sent one).
    Status(u16, String),
    /// No answer (the server is down or unreachable), or not the JSON expected.
    Unreachable,
}

impl Failed {
    /// For people.
    pub fn says(&self) -> String {
        match self {
            Failed::Status(status, message) if message.is_empty() => {
                format!("The server answered {status}.")
            }
            Failed::Status(status, message) => format!("{message} ({status})"),
            Failed::Unreachable => "The server cannot be reached.".into(),
        }
    }
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

/// What a refused request's body says, if it is the API's JSON error.
async fn message_of(response: gloo_net::http::Response) -> String {
    response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET path`, as `T`.
pub async fn get<T: DeserializeOwned>(console: Console, path: &str) -> Result<T, Failed> {
    let credential = console.credential.get_untracked().unwrap_or_default();
    let response = gloo_net::http::Request::get(path)
        .header("Authorization", &bearer(&credential))
        .send()
        .await
        .map_err(|_| Failed::Unreachable)?;
    match response.status() {
        200 => response.json::<T>().await.map_err(|_| Failed::Unreachable),
        status => Err(console.refused_with(status, message_of(response).await)),
    }
}

/// `method path` with `body` as JSON (none: no body); the status of a success.
pub async fn send(
    console: Console,
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<u16, Failed> {
    let credential = console.credential.get_untracked().unwrap_or_default();
    let builder = match method {
        "DELETE" => gloo_net::http::Request::delete(path),
        "PATCH" => gloo_net::http::Request::patch(path),
        _ => gloo_net::http::Request::post(path),
    }
    .header("Authorization", &bearer(&credential));
    let sent = match body {
        Some(body) => match builder.json(body) {
            Ok(request) => request.send().await,
            Err(_) => return Err(Failed::Unreachable),
        },
        None => builder.send().await,
    };
    let response = sent.map_err(|_| Failed::Unreachable)?;
    match response.status() {
        status @ 200..=299 => Ok(status),
        status => Err(console.refused_with(status, message_of(response).await)),
    }
}

/// How often a list the console shows is asked for again.
pub const REFRESH_MS: u32 = 3_000;

/// A list at `path`, asked for every [`REFRESH_MS`] while the component that calls this
/// is shown (it stops with it, and for good once the credential is refused).
pub fn kept_fresh<T>(console: Console, path: &'static str) -> RwSignal<Vec<T>>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let rows = RwSignal::new(Vec::<T>::new());
    let shown = RwSignal::new(true);
    on_cleanup(move || {
        shown.try_set(false);
    });
    leptos::task::spawn_local(async move {
        while shown.try_get_untracked() == Some(true) {
            match get::<Vec<T>>(console, path).await {
                Ok(list) => {
                    rows.try_set(list);
                }
                Err(Failed::Status(401 | 403 | 404, _)) => return,
                Err(_) => {}
            }
            crate::connection::sleep_ms(REFRESH_MS).await;
        }
    });
    rows
}
