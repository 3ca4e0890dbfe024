//! One live chart: a field of every sample of the last 15 minutes as an SVG polyline, the
//! newest second at the right edge, the window's peak at the top; its caption says the
//! latest value and the peak, and so does its accessible name.

use leptos::prelude::*;
use shared::console::{CHART_HEIGHT, CHART_WIDTH, Series, chart_points, show_value};

use super::Console;

/// A chart of `series` (`<figure class="chart" data-series="lines">`; its `polyline`'s
/// `points` are the data points drawn).
#[component]
pub fn Chart(
    /// Which field it draws.
    series: Series,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let drawn = Memo::new(move |_| {
        console
            .samples
            .with(|kept| chart_points(kept, series.value))
    });
    let latest = Memo::new(move |_| {
        console
            .samples
            .with(|kept| kept.last().map(|s| (series.value)(s)))
    });
    let now = move || latest.get().map(|v| show_value(v, series.unit));
    let peak = move || show_value(drawn.with(|(_, peak)| *peak), series.unit);
    let label = move || match now() {
        Some(now) => format!(
            "{}, last 15 minutes: now {now}, peak {}",
            series.title,
            peak()
        ),
        None => format!("{}, last 15 minutes: no data yet", series.title),
    };
    let view_box = format!("0 0 {CHART_WIDTH} {CHART_HEIGHT}");
    view! {
        <figure class="chart" data-series=series.id>
            <figcaption>
                <span class="chart-title">{series.title}</span>
                <span class="chart-now">{move || now().unwrap_or_else(|| "…".into())}</span>
            </figcaption>
            <svg viewBox=view_box preserveAspectRatio="none" role="img" aria-label=label>
                <polyline points=move || drawn.with(|(points, _)| points.clone()) />
            </svg>
            <p class="chart-axis">
                <span>"15 min ago"</span>
                <span>"peak " {peak}</span>
                <span>"now"</span>
            </p>
        </figure>
    }
}
