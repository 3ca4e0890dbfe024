//! Says hello in `general` and prints the next five lines.
//! Run: `cargo run -p client --example hello -- ws://127.0.0.1:3000` (with `scripts/run.sh`).

use client::{Client, Event, Options, line_text};
use shared::RoomName;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:3000".into());
    let (chat, mut events) = Client::connect(&url, Options::default()).await?;
    let seq = chat
        .send(&RoomName::general(), "hola from the example")
        .await?;
    println!("stored at seq {seq}");
    let mut shown = 0;
    while let Some(event) = events.next().await {
        match event {
            Event::Joined { lines, .. } => {
                for line in lines {
                    println!("{}", line_text(&line));
                }
            }
            Event::Line(line) => {
                println!("{}", line_text(&line));
                shown += 1;
                if shown == 5 {
                    break;
                }
            }
            _ => {}
        }
    }
    chat.close().await;
    Ok(())
}
