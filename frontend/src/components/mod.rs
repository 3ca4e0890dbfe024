//! The page's views. Each reads [`ChatState`](crate::ChatState) signals and calls the
//! [`Connection`](crate::Connection) for what the user does; none writes connection state.
//!
//! - `status`: who this page is (name, id) and whether it is connected.
//! - `sign_in`: who is signed in (or "guest"), what became of the sign-in, the dev-login
//!   form and "sign out"; the lock shown on private rooms.
//! - `name`: the display-name form.
//! - `rooms`: the side panel: the rooms this page is in (with unread counts) and the join form.
//! - `room`: the room in view as the URL names it (`RoomPage`), its header (title, how many
//!   online, leave) and who is here.
//! - `composer`, `live_typing`, `history`: the classic exercise, per room.
//! - `nav`: the navigation bar (every page) and the language switch.
//! - `echo`, `random`, `products`: the exercise pages beside the chat (echo server, named
//!   events and binary frames; the random ticker; the product list and the live one). They
//!   read [`Exercises`](crate::exercises::Exercises) signals and send through the
//!   [`Connection`](crate::Connection).
//! - `transports`: the transports lesson (`/transports`): one tick stream over polling, long
//!   polling, SSE and a WebSocket side by side, with each one's delays, requests and bytes.

mod composer;
mod echo;
mod history;
mod live_typing;
mod name;
pub mod nav;
mod products;
mod random;
mod room;
mod rooms;
mod sign_in;
mod status;
mod transports;

pub use composer::Composer;
pub use echo::{BinaryFrames, EchoPage, EchoServer, EchoState, NamedEvents, size_label};
pub use history::History;
pub use live_typing::LiveTyping;
pub use name::NameForm;
pub use nav::NavBar;
pub use products::{LiveProductsPage, ProductTable, ProductsPage};
pub use random::RandomPage;
pub use room::{Members, NotFound, RoomHeader, RoomPage, RoomView};
pub use rooms::{JoinRoom, RoomsPanel};
pub use sign_in::{PrivateLock, SignIn};
pub use status::StatusBar;
pub use transports::TransportsPage;
