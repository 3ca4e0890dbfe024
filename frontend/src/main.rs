//! The chat's entry point (what `/` and `/r/<room>` load): mounts [`frontend::App`] for
//! [`frontend::Site::CHAT`] on `<body>`.

use frontend::{App, Site};
use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| view! { <App site=Site::CHAT /> });
}
