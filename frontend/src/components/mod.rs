//! The page's views. Each reads [`ChatState`](crate::ChatState) signals and calls the
//! [`Connection`](crate::Connection) for what the user does; none writes connection state.
//!
//! - `status`: who this page is (name, id) and whether it is connected.
//! - `name`: the display-name form.
//! - `rooms`: the side panel: the rooms this page is in (with unread counts) and the join form.
//! - `room`: the room in view as the URL names it (`RoomPage`), its header (title, how many
//!   online, leave) and who is here.
//! - `composer`, `live_typing`, `history`: the classic exercise, per room.

mod composer;
mod history;
mod live_typing;
mod name;
mod room;
mod rooms;
mod status;

pub use composer::Composer;
pub use history::History;
pub use live_typing::LiveTyping;
pub use name::NameForm;
pub use room::{Members, NotFound, RoomHeader, RoomPage, RoomView};
pub use rooms::{JoinRoom, RoomsPanel};
pub use status::StatusBar;
