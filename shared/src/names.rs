//! Validated names: [`RoomName`] (which room) and [`DisplayName`] (what a person is called).
//!
//! Clients send names as plain strings; the server checks them with [`RoomName::parse`] and
//! [`DisplayName::parse`] and answers a bad one with a typed error (`bad_room`, `bad_name`)
//! rather than a generic decode failure. Everything the server sends holds only valid names.

use serde::{Deserialize, Serialize};

/// The room every connection is in unless it leaves, and the room of every frame that names
/// none (so protocol v1 clients keep working unchanged).
pub const DEFAULT_ROOM: &str = "general";

/// A room's name: 1–32 characters of `a-z`, `0-9`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(String);

/// Why a room name or a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty (after trimming, for display names).
    #[error("the name is empty")]
    Empty,
    /// Longer than 32 characters.
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    /// A room name with a character outside `a-z 0-9 _ -`.
    #[error("a room name may only hold a-z, 0-9, _ and -")]
    BadRoomChar,
    /// A display name with a control character (new line, tab, …).
    #[error("a name may not hold control characters")]
    ControlChar,
    /// A display name with an invisible or direction-changing character (zero-width
    /// spaces, bidirectional overrides): one name could pass for another.
    #[error("a name may not hold invisible or direction-changing characters")]
    InvisibleChar,
}

/// Whether `c` changes how text around it is shown without being seen itself: the
/// bidirectional marks, embeddings, overrides and isolates, and the zero-width spaces,
/// non-joiner, word joiner and byte-order mark. (The zero-width joiner is judged apart:
/// emoji sequences need it.)
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2060}'..='\u{2064}'
            | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{180E}'
            | '\u{00AD}'
    )
}

/// Whether a zero-width joiner sits inside a word (`ad\u{200D}min`), where it can only hide
/// something; between emoji it is how they combine, and stays.
fn has_hiding_joiner(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    chars.iter().enumerate().any(|(i, &c)| {
        c == '\u{200D}'
            && (i == 0
                || i + 1 == chars.len()
                || chars[i - 1].is_alphanumeric()
                || chars[i + 1].is_alphanumeric())
    })
}

impl RoomName {
    /// The longest room name, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Checks a name a client sent.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > Self::MAX_CHARS {
            return Err(NameError::TooLong(Self::MAX_CHARS));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(NameError::BadRoomChar);
        }
        Ok(RoomName(name.to_owned()))
    }

    /// The default room, `general`.
    pub fn general() -> Self {
        RoomName(DEFAULT_ROOM.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RoomName {
    fn default() -> Self {
        Self::general()
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person is called: 1–32 characters once trimmed, no control characters. Two people
/// may share one; their ids tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest name, in characters (Unicode scalar values).
    pub const MAX_CHARS: usize = 32;

    /// Checks (and trims) a name a client sent.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(NameError::TooLong(Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlChar);
        }
        if name.chars().any(is_invisible) || has_hiding_joiner(name) {
            return Err(NameError::InvisibleChar);
        }
        Ok(DisplayName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_short_lowercase_slugs() {
        for ok in ["general", "a", "dev-ops_2", &"x".repeat(32)] {
            assert_eq!(RoomName::parse(ok).map(|r| r.0), Ok(ok.to_owned()));
        }
        assert_eq!(RoomName::parse(""), Err(NameError::Empty));
        assert_eq!(
            RoomName::parse(&"x".repeat(33)),
            Err(NameError::TooLong(32))
        );
        for bad in ["General", "a b", "ñ", "a/b", "a.b", "<script>"] {
            assert_eq!(RoomName::parse(bad), Err(NameError::BadRoomChar), "{bad}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_free_of_control_characters() {
        assert_eq!(DisplayName::parse("  Ana  ").map(|n| n.0), Ok("Ana".into()));
        assert_eq!(DisplayName::parse("   "), Err(NameError::Empty));
        assert!(DisplayName::parse(&"ñ".repeat(32)).is_ok());
        assert_eq!(
            DisplayName::parse(&"ñ".repeat(33)),
            Err(NameError::TooLong(32))
        );
        assert_eq!(DisplayName::parse("a\nb"), Err(NameError::ControlChar));
        assert_eq!(DisplayName::parse("a\u{7}b"), Err(NameError::ControlChar));
    }

    #[test]
    fn display_names_cannot_hide_or_reverse_characters() {
        for sneaky in [
            "ad\u{200B}min",
            "\u{202E}nimda",
            "admin\u{2066}",
            "a\u{200F}b",
            "\u{FEFF}admin",
            "ad\u{200D}min",
            "ad\u{00AD}min",
        ] {
            assert_eq!(
                DisplayName::parse(sneaky),
                Err(NameError::InvisibleChar),
                "{sneaky:?}"
            );
        }
        // Emoji sequences joined with ZWJ, and right-to-left scripts themselves, are names.
        for fine in ["Ana 👨\u{200D}👩\u{200D}👧", "مريم", "שרה", "Zoë"] {
            assert!(DisplayName::parse(fine).is_ok(), "{fine:?}");
        }
        assert!(DisplayName::parse("<b>bold</b> 😀").is_ok());
    }
}
