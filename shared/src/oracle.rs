//! An independent oracle for tests: what a correct server must answer to a client's text
//! frame, worked out from the protocol's description, not from [`crate::decode_client`]. The
//! decoder's own tests and the server's fuzz test check the decoder against it, so a decoder
//! that classified frames wrongly fails them instead of agreeing with itself.
//!
//! Built for this crate's tests and, with the `testing` feature, for other crates' tests.

use serde_json::Value;

use crate::ErrorCode;

/// How a field of a client message may look.
#[derive(Clone, Copy)]
enum Field {
    /// A string, required.
    Text,
    /// A string, `null`, or absent.
    MaybeText,
    /// A non-negative integer below 2^64, required.
    Count64,
    /// A non-negative integer below 2^64, `null`, or absent.
    MaybeCount64,
    /// A non-negative integer below 2^32, required.
    Count32,
    /// A non-negative integer below 2^32, `null`, or absent.
    MaybeCount32,
    /// An object of non-negative integers below 2^64, `null`, or absent.
    MaybeSeqs,
    /// A product: an object with `title`, `description` and `code` strings, a `price`
    /// number and a `stock` integer in 0..2^32, required.
    Product,
}

/// The error code a server must answer `text` with, or `None` if `text` is a valid client
/// message (which may still be refused for what it says, e.g. a blank `send`). `None` too
/// for text this oracle cannot judge on its own (a field given twice), so callers skip it.
pub fn expected_refusal(text: &str) -> Option<Option<ErrorCode>> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Some(Some(ErrorCode::BadJson));
    };
    let Some(object) = value.as_object() else {
        return Some(Some(ErrorCode::BadJson));
    };
    let Some(kind) = object.get("type") else {
        return Some(Some(ErrorCode::BadField));
    };
    let Some(kind) = kind.as_str() else {
        return Some(Some(ErrorCode::BadField));
    };
    let Some(fields) = fields_of(kind) else {
        return Some(Some(ErrorCode::UnknownType));
    };
    // A JSON object keeps the last of two equal keys; a strict reader refuses them. Leave
    // such text to the hand-written tests.
    for (name, _) in fields.iter().chain(&[("type", Field::Text)]) {
        if text.matches(&format!("\"{name}\"")).count() > 1 {
            return None;
        }
    }
    let valid = fields
        .iter()
        .all(|(name, field)| fits(object.get(*name), *field));
    Some((!valid).then_some(ErrorCode::BadField))
}

/// The fields of a client message `kind` (none: no such kind), each with what it must be.
fn fields_of(kind: &str) -> Option<&'static [(&'static str, Field)]> {
    Some(match kind {
        "hello" => &[
            ("resume", Field::MaybeText),
            ("rooms", Field::MaybeSeqs),
            ("name", Field::MaybeText),
            ("token", Field::MaybeText),
        ],
        "refresh" => &[("token", Field::Text)],
        "typing" => &[("room", Field::MaybeText), ("text", Field::Text)],
        "send" => &[
            ("room", Field::MaybeText),
            ("text", Field::Text),
            ("nonce", Field::MaybeText),
        ],
        "edit" => &[
            ("room", Field::MaybeText),
            ("seq", Field::Count64),
            ("text", Field::Text),
            ("nonce", Field::MaybeText),
        ],
        "delete" => &[
            ("room", Field::MaybeText),
            ("seq", Field::Count64),
            ("nonce", Field::MaybeText),
        ],
        "kick" | "unban" | "unmute" => &[
            ("room", Field::MaybeText),
            ("user", Field::Text),
            ("nonce", Field::MaybeText),
        ],
        "ban" | "mute" => &[
            ("room", Field::MaybeText),
            ("user", Field::Text),
            ("until", Field::MaybeCount64),
            ("nonce", Field::MaybeText),
        ],
        "slow_mode" => &[
            ("room", Field::MaybeText),
            ("secs", Field::Count32),
            ("nonce", Field::MaybeText),
        ],
        "read" => &[("room", Field::Text), ("seq", Field::Count64)],
        "load_older" => &[
            ("room", Field::MaybeText),
            ("before", Field::Count64),
            ("limit", Field::Count32),
        ],
        "ping" => &[],
        "join" | "leave" => &[("room", Field::Text)],
        "members" => &[("room", Field::Text), ("offset", Field::MaybeCount32)],
        "set_name" => &[("name", Field::Text)],
        "echo" => &[("text", Field::Text)],
        "tic" => &[("n", Field::Count64)],
        "binary" => &[("size", Field::Count32)],
        "start_ticker" => &[("ticker", Field::Count32), ("every_ms", Field::Count32)],
        "stop_ticker" => &[("ticker", Field::Count32)],
        "watch_products" | "unwatch_products" => &[],
        "load_products" => &[("after", Field::Count64)],
        "add_product" => &[("product", Field::Product)],
        "delete_product" => &[("id", Field::Count64)],
        _ => return None,
    })
}

/// Whether a field's value (none: absent) is what `field` asks for.
fn fits(value: Option<&Value>, field: Field) -> bool {
    match (field, value) {
        (Field::Text, Some(v)) => v.is_string(),
        (Field::MaybeText, None | Some(Value::Null)) => true,
        (Field::MaybeText, Some(v)) => v.is_string(),
        (Field::Count64, Some(v)) => v.as_u64().is_some(),
        (Field::MaybeCount64, None | Some(Value::Null)) => true,
        (Field::MaybeCount64, Some(v)) => v.as_u64().is_some(),
        (Field::MaybeCount32, None | Some(Value::Null)) => true,
        (Field::Count32 | Field::MaybeCount32, Some(v)) => {
            v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX))
        }
        (Field::MaybeSeqs, None | Some(Value::Null)) => true,
        (Field::MaybeSeqs, Some(Value::Object(seqs))) => {
            seqs.values().all(|s| s.as_u64().is_some())
        }
        (Field::Product, Some(Value::Object(p))) => {
            ["title", "description", "code"]
                .iter()
                .all(|f| p.get(*f).is_some_and(Value::is_string))
                && p.get("price").is_some_and(Value::is_number)
                && p.get("stock")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n <= u64::from(u32::MAX))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientMsg;

    #[test]
    fn the_oracle_knows_every_client_type() {
        for kind in ClientMsg::TYPES {
            let verdict = expected_refusal(&format!(r#"{{"type":"{kind}"}}"#));
            assert_ne!(
                verdict,
                Some(Some(ErrorCode::UnknownType)),
                "the oracle has no entry for `{kind}`"
            );
        }
    }
}
