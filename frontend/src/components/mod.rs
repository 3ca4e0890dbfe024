//! The page's views. Each reads [`ChatState`](crate::ChatState) signals; only the composer and
//! the status bar's reconnect button call the [`Connection`](crate::Connection).

mod composer;
mod history;
mod live_typing;
mod status;

pub use composer::Composer;
pub use history::History;
pub use live_typing::LiveTyping;
pub use status::StatusBar;
