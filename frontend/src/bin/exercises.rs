//! The exercises' entry point (what `/echo`, `/random`, `/products`, `/realtimeproducts`
//! and `/transports` load, from `dist/exercises/`): mounts [`frontend::App`] with the exercise pages' views,
//! which only this wasm links.

use frontend::{
    App, Frames, Site,
    components::{EchoPage, LiveProductsPage, ProductsPage, RandomPage, TransportsPage},
};
use leptos::prelude::*;

/// The exercises: their five pages ([`shared::exercises::PAGES`]).
const EXERCISES: Site = Site {
    shows: shared::exercises::is_page,
    page: |path| {
        Some(match path {
            "/echo" => view! { <EchoPage /> }.into_any(),
            "/random" => view! { <RandomPage /> }.into_any(),
            "/products" => view! { <ProductsPage /> }.into_any(),
            "/realtimeproducts" => view! { <LiveProductsPage /> }.into_any(),
            "/transports" => view! { <TransportsPage /> }.into_any(),
            _ => return None,
        })
    },
    frames: Frames::ALL,
};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| view! { <App site=EXERCISES /> });
}
