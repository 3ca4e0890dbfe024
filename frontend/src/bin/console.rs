//! The operator's console's entry point (what `/admin` loads, from `dist/console/`): mounts
//! [`frontend::console::ConsoleApp`], which only this wasm links.

use frontend::console::ConsoleApp;
use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| view! { <ConsoleApp /> });
}
