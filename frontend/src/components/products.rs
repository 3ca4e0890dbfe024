//! The product pages: `/products` (the list as `GET /api/products` returns it) and
//! `/realtimeproducts` (the list kept live over the WebSocket: every change, from any page or
//! from the HTTP API, shows within a frame; a form that adds over the WebSocket; a delete
//! button per product). Both list products by id, so every list shows the same order.

use leptos::{prelude::*, task::spawn_local};
use shared::{FieldError, NewProduct, Product, ProductField, ProductId};

use crate::use_connection;
use crate::{
    Connection,
    exercises::ProductForm,
    i18n::{Texts, use_i18n},
};

/// The product table; with `conn`, a delete button per product.
#[component]
pub fn ProductTable(
    /// The products, by id.
    products: Signal<Vec<Product>>,
    /// Where deletes go (none: a read-only table).
    #[prop(optional)]
    conn: Option<Connection>,
    /// The table's id.
    id: &'static str,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Show
            when=move || !products.get().is_empty()
            fallback=move || view! { <p class="empty">{move || i18n.t().products_none}</p> }
        >
            <div class="table-scroll">
                <table id=id class="products">
                    <caption class="visually-hidden">{move || i18n.t().products_title}</caption>
                    <ProductHead actions=conn.is_some() />
                    <tbody>
                        <For
                            each=move || products.get()
                            key=|p| p.id
                            children=move |product| view! { <ProductRow product conn /> }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

/// The table's head: one column per field, and with `actions` one for the delete buttons.
#[component]
fn ProductHead(
    /// Whether the rows have a delete button.
    actions: bool,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <thead>
            <tr>
                <th scope="col">{move || i18n.t().field_title}</th>
                <th scope="col">{move || i18n.t().field_description}</th>
                <th scope="col">{move || i18n.t().field_code}</th>
                <th scope="col" class="num">{move || i18n.t().field_price}</th>
                <th scope="col" class="num">{move || i18n.t().field_stock}</th>
                {actions.then(|| view! { <th scope="col">{move || i18n.t().actions}</th> })}
            </tr>
        </thead>
    }
}

/// One product's row (`data-id` is its id); with `conn`, its delete button last.
#[component]
fn ProductRow(
    /// The product shown.
    product: Product,
    /// Where its delete goes (none: no delete button).
    conn: Option<Connection>,
) -> impl IntoView {
    let (id, title) = (product.id, product.title.clone());
    view! {
        <tr data-id=id.to_string()>
            <td class="title">{product.title}</td>
            <td>{product.description}</td>
            <td><code>{product.code}</code></td>
            <td class="num">{product.price.to_string()}</td>
            <td class="num">{product.stock}</td>
            {conn.map(|conn| view! { <DeleteCell conn id title /> })}
        </tr>
    }
}

/// The cell with a product's delete button, labelled with the product's title for screen
/// readers (every row's button says only "delete").
#[component]
fn DeleteCell(
    /// Where the delete goes.
    conn: Connection,
    /// The product to delete.
    id: ProductId,
    /// Its title, for the button's label.
    title: String,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <td>
            <button
                class="delete quiet"
                type="button"
                aria-label=move || (i18n.t().delete_named)(&title)
                on:click=move |_| {
                    conn.delete_product(id);
                }
            >
                {move || i18n.t().delete}
            </button>
        </td>
    }
}

/// What loading `/api/products` gave.
#[derive(Debug, Clone, PartialEq)]
enum Loaded {
    Loading,
    Done(Vec<Product>),
    Failed,
}

async fn fetch_products() -> Loaded {
    let response = match gloo_net::http::Request::get("/api/products").send().await {
        Ok(response) if response.ok() => response,
        _ => return Loaded::Failed,
    };
    match response.json::<Vec<Product>>().await {
        Ok(products) => Loaded::Done(products),
        Err(_) => Loaded::Failed,
    }
}

/// `/products`: the list as the HTTP API returns it, with a reload button.
#[component]
pub fn ProductsPage() -> impl IntoView {
    let i18n = use_i18n();
    let loaded = RwSignal::new(Loaded::Loading);
    let load = move || {
        loaded.set(Loaded::Loading);
        spawn_local(async move {
            let got = fetch_products().await;
            loaded.try_set(got);
        });
    };
    load();
    let products = Signal::derive(move || match loaded.get() {
        Loaded::Done(products) => products,
        Loaded::Loading | Loaded::Failed => Vec::new(),
    });
    view! {
        <section class="exercise" aria-labelledby="products-title">
            <h2 id="products-title">{move || i18n.t().products_title}</h2>
            <p>{move || i18n.t().products_intro}</p>
            <div class="buttons">
                <button id="products-reload" type="button" on:click=move |_| load()>
                    {move || i18n.t().reload}
                </button>
                <a href="/realtimeproducts">{move || i18n.t().see_live}</a>
            </div>
            {move || match loaded.get() {
                Loaded::Loading => view! { <p role="status">{move || i18n.t().loading}</p> }.into_any(),
                Loaded::Failed => {
                    view! { <p class="notice" role="alert">{move || i18n.t().products_failed}</p> }
                        .into_any()
                }
                Loaded::Done(_) => view! { <ProductTable products=products id="products-table" /> }.into_any(),
            }}
        </section>
    }
}

/// `/realtimeproducts`: the live list (watched while the page is open), the add form, and a
/// delete button per product.
#[component]
pub fn LiveProductsPage() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    exercises.watching.set(true);
    conn.watch_products();
    on_cleanup(move || {
        exercises.watching.try_set(false);
        exercises.products.try_set(None);
        conn.unwatch_products();
    });
    let products = Signal::derive(move || exercises.products.get().unwrap_or_default());
    view! {
        <section class="exercise" aria-labelledby="live-title">
            <h2 id="live-title">{move || i18n.t().live_products_title}</h2>
            <p>{move || i18n.t().live_intro}</p>
            <ProductFormView />
            <section class="card" aria-labelledby="live-list-title">
                <h3 id="live-list-title">{move || i18n.t().products_title}</h3>
                <Show
                    when=move || exercises.products.get().is_some()
                    fallback=move || view! { <p role="status">{move || i18n.t().loading}</p> }
                >
                    <ProductTable products=products conn=conn id="live-products" />
                </Show>
            </section>
        </section>
    }
}

/// The problem a field has, in the reader's language.
fn field_problem(t: &Texts, errors: &[FieldError], field: ProductField) -> Option<String> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| (t.problem)(e.problem))
}

/// The add form: checked here with the server's own rules first, then sent over the
/// WebSocket; the server's refusal shows field by field.
#[component]
fn ProductFormView() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    let values: [RwSignal<String>; 5] = std::array::from_fn(|_| RwSignal::new(String::new()));
    let local_errors = RwSignal::new(Vec::<FieldError>::new());
    let offline = RwSignal::new(false);
    // Once the server saved the product, the form empties.
    Effect::new(move |_| {
        if let ProductForm::Saved { .. } = exercises.form.get() {
            for value in values {
                value.set(String::new());
            }
        }
    });
    let errors = Signal::derive(move || match exercises.form.get() {
        ProductForm::Refused(errors) => errors,
        _ => local_errors.get(),
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let [title, description, code, price, stock] = values.map(|v| v.get_untracked());
        match NewProduct::from_form(&title, &description, &code, &price, &stock) {
            Err(errors) => {
                exercises.form.set(ProductForm::Idle);
                local_errors.set(errors);
            }
            Ok(product) => {
                local_errors.set(Vec::new());
                let code = product.code.clone();
                if conn.add_product(product) {
                    offline.set(false);
                    exercises.form.set(ProductForm::Sending { code });
                } else {
                    offline.set(true);
                }
            }
        }
    };
    view! {
        <section class="card" aria-labelledby="add-product-title">
            <h3 id="add-product-title">{move || i18n.t().add_product_title}</h3>
            <form id="product-form" class="product-form" on:submit=submit novalidate>
                {ProductField::ALL
                    .into_iter()
                    .zip(values)
                    .map(|(field, value)| view! { <ProductInput field value errors /> })
                    .collect_view()}
                <button id="product-add" type="submit">{move || i18n.t().add_product}</button>
            </form>
            <ProductFormState offline />
        </section>
    }
}

/// A field's label, in the language of `t`.
fn field_label(t: &Texts, field: ProductField) -> &'static str {
    match field {
        ProductField::Title => t.field_title,
        ProductField::Description => t.field_description,
        ProductField::Code => t.field_code,
        ProductField::Price => t.field_price,
        ProductField::Stock => t.field_stock,
    }
}

/// One field of the add form (`#product-<field>`) and its problem (`#product-<field>-error`),
/// which the input points to while there is one. Typing again clears the form's last outcome.
#[component]
fn ProductInput(
    /// Which field.
    field: ProductField,
    /// What is typed in it.
    value: RwSignal<String>,
    /// The problems the form has: the server's refusal, else the form's own check.
    errors: Signal<Vec<FieldError>>,
) -> impl IntoView {
    let exercises = use_connection().exercises;
    let i18n = use_i18n();
    let id = format!("product-{}", field.as_str());
    let error_id = format!("{id}-error");
    let (kind, mode) = match field {
        ProductField::Price => ("text", "decimal"),
        ProductField::Stock => ("text", "numeric"),
        _ => ("text", "text"),
    };
    let label = move || field_label(i18n.t(), field);
    let problem = move || field_problem(i18n.t(), &errors.get(), field);
    let described = error_id.clone();
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                type=kind
                inputmode=mode
                autocomplete="off"
                aria-invalid=move || problem().is_some().to_string()
                aria-describedby=move || problem().map(|_| described.clone())
                prop:value=move || value.get()
                on:input=move |ev| {
                    value.set(event_target_value(&ev));
                    if !matches!(exercises.form.get_untracked(), ProductForm::Idle) {
                        exercises.form.set(ProductForm::Idle);
                    }
                }
            />
            <span id=error_id class="field-error">{problem}</span>
        </div>
    }
}

/// What became of the last add (`#product-form-state`): sending, added (with its id),
/// refused, or not sent for being offline.
#[component]
fn ProductFormState(
    /// Whether the last add could not be sent (not connected).
    offline: RwSignal<bool>,
) -> impl IntoView {
    let exercises = use_connection().exercises;
    let i18n = use_i18n();
    view! {
        <p id="product-form-state" role="status">
            {move || match exercises.form.get() {
                ProductForm::Sending { .. } => i18n.t().sending.to_owned(),
                ProductForm::Saved { id } => (i18n.t().product_added)(id),
                ProductForm::Refused(_) => i18n.t().product_refused.to_owned(),
                ProductForm::Idle if offline.get() => i18n.t().offline.to_owned(),
                ProductForm::Idle => String::new(),
            }}
        </p>
    }
}
