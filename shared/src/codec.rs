//! Encoding and decoding frames. Decoding takes untrusted text and never panics: what does
//! not decode yields a [`DecodeError`] whose [`code`](DecodeError::code) goes back to the
//! sender in an `error` frame.

use serde::{Serialize, de::DeserializeOwned};

use crate::{ClientMsg, ErrorCode, ServerMsg};

/// Why a frame did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON that is not an object.
    #[error("not a JSON object: {0}")]
    BadJson(String),
    /// A JSON object whose `type` is not a known message type.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A known message type with a missing or ill-typed field.
    #[error("{0}")]
    BadField(String),
}

impl DecodeError {
    /// The stable code to send back in an `error` frame.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadJson(_) => ErrorCode::BadJson,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
            DecodeError::BadField(_) => ErrorCode::BadField,
        }
    }
}

/// Decodes one client frame.
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    decode(text, ClientMsg::TYPES)
}

/// Decodes one server frame. Clients should ignore [`DecodeError::UnknownType`]: a newer
/// server may send message types this build does not know.
///
/// Reads `type` first, then the variant's own struct from the same text, instead of serde's
/// derived decoder for an internally tagged enum, which buffers the whole frame into a
/// generic tree before it looks at `type`: the same result (a test checks it against the
/// derived one), and 6 KB brotli less of the page, which decodes nothing else as often.
pub fn decode_server(text: &str) -> Result<ServerMsg, DecodeError> {
    let kind = type_of(text)?;
    chat_variant(&kind, text)
        .or_else(|| exercise_variant(&kind, text))
        .unwrap_or_else(|| Err(unknown(&kind)))
}

/// [`decode_server`] for a client that takes no part in the exercises (the chat's page):
/// their messages (`echo`, `binary`, `ticker`, `ticker_stopped`, `random`, `products`,
/// `product_*`) are [`DecodeError::UnknownType`], like a type from a newer server, so their
/// decoders are not linked into it (about 3 KB brotli of the chat's wasm).
pub fn decode_server_chat(text: &str) -> Result<ServerMsg, DecodeError> {
    let kind = type_of(text)?;
    chat_variant(&kind, text).unwrap_or_else(|| Err(unknown(&kind)))
}

fn unknown(kind: &str) -> DecodeError {
    DecodeError::UnknownType(truncate(kind, 64))
}

/// `match` on a frame's type: `None` for a type not among the arms.
macro_rules! variants {
    ($kind:expr, $text:expr, $($name:literal => $variant:ident($fields:ty)),* $(,)?) => {
        match $kind {
            $($name => Some(fields::<$fields>($text).map(ServerMsg::$variant)),)*
            _ => None,
        }
    };
}

/// The chat's messages (and `pong`).
fn chat_variant(kind: &str, text: &str) -> Option<Result<ServerMsg, DecodeError>> {
    use crate::server as s;
    if kind == "pong" {
        return Some(Ok(ServerMsg::Pong));
    }
    variants! { kind, text,
        "welcome" => Welcome(s::Welcome),
        "joined" => Joined(s::Joined),
        "left" => Left(s::Left),
        "typing" => Typing(s::Typing),
        "message" => Message(crate::ChatLine),
        "message_edited" => MessageEdited(s::MessageEdited),
        "message_deleted" => MessageDeleted(s::MessageDeleted),
        "moderation" => Moderation(s::Moderation),
        "ack" => Ack(s::Ack),
        "read" => Read(s::ReadMark),
        "older" => Older(s::Older),
        "presence" => Presence(s::Presence),
        "members" => Members(s::Members),
        "name_set" => NameSet(s::NameSet),
        "error" => Error(s::Error),
        "token_expiring" => TokenExpiring(s::TokenExpiring),
        "token_refreshed" => TokenRefreshed(s::TokenRefreshed),
    }
}

/// The exercises' messages.
fn exercise_variant(kind: &str, text: &str) -> Option<Result<ServerMsg, DecodeError>> {
    use crate::server as s;
    variants! { kind, text,
        "echo" => Echo(s::Echo),
        "binary" => Binary(s::Binary),
        "ticker" => Ticker(s::Ticker),
        "ticker_stopped" => TickerStopped(s::TickerStopped),
        "random" => Random(s::Random),
        "products" => Products(s::Products),
        "product_added" => ProductAdded(s::ProductAdded),
        "product_removed" => ProductRemoved(s::ProductRemoved),
        "product_refused" => ProductRefused(s::ProductRefused),
    }
}

/// A frame's `type`, read without the rest of its fields (skipped, but checked as JSON).
fn type_of(text: &str) -> Result<std::borrow::Cow<'_, str>, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    match serde_json::from_str::<Tag>(text) {
        Ok(tag) => Ok(tag.kind),
        Err(err) if err.is_syntax() || err.is_eof() || err.is_io() => {
            Err(DecodeError::BadJson(err.to_string()))
        }
        Err(_) if !text.trim_start().starts_with('{') => {
            Err(DecodeError::BadJson("expected a JSON object".into()))
        }
        // An object without a `type`, or whose `type` is not a string.
        Err(err) => Err(DecodeError::BadField(err.to_string())),
    }
}

/// A variant's fields, from the frame's text (its `type` skipped like any unknown field).
fn fields<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|err| DecodeError::BadField(err.to_string()))
}

/// Encodes a message (or any protocol value) as the JSON text of one frame.
pub fn encode<T: Serialize>(msg: &T) -> String {
    // The protocol types hold only strings, integers and sequences of them: serializing
    // them to a String cannot fail.
    serde_json::to_string(msg).expect("protocol types always serialize")
}

fn decode<T: DeserializeOwned>(text: &str, known_types: &[&str]) -> Result<T, DecodeError> {
    // The fast path parses once; only a frame that fails is looked at again, to say why.
    serde_json::from_str(text).map_err(|err| classify(text, err, known_types))
}

fn classify(text: &str, err: serde_json::Error, known_types: &[&str]) -> DecodeError {
    if err.is_syntax() || err.is_eof() || err.is_io() {
        return DecodeError::BadJson(err.to_string());
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return DecodeError::BadJson(err.to_string());
    };
    let Some(object) = value.as_object() else {
        return DecodeError::BadJson("expected a JSON object".into());
    };
    match object.get("type") {
        None => DecodeError::BadField("missing field `type`".into()),
        Some(serde_json::Value::String(t)) if !known_types.contains(&t.as_str()) => {
            DecodeError::UnknownType(truncate(t, 64))
        }
        Some(serde_json::Value::String(_)) => DecodeError::BadField(err.to_string()),
        Some(_) => DecodeError::BadField("field `type` must be a string".into()),
    }
}

/// Keeps an echoed client string short, so an error frame never grows with the input.
fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatLine, ConnId, RoomName, Seq};
    use proptest::prelude::*;

    fn code_of(text: &str) -> ErrorCode {
        decode_client(text).expect_err("must not decode").code()
    }

    /// What serde's derived decoder makes of `text`, with its error classified as
    /// `decode_server` did before it read `type` first.
    fn derived(text: &str) -> Result<ServerMsg, DecodeError> {
        decode(text, ServerMsg::TYPES)
    }

    #[test]
    fn the_server_decoder_agrees_with_serdes_derived_one() {
        for text in [
            r#"{"type":"pong"}"#,
            r#"{"type":"ack","nonce":"n-1","seq":3}"#,
            r#"{"seq":3,"type":"ack","nonce":"n-1"}"#,
            r#"{"type":"presence","online":4,"region":"eu"}"#,
            r#"{"type":"message","room":"general","seq":1,"from":"a1","text":"hola","at":5}"#,
            r#"{"type":"error","code":"brand_new","message":"m"}"#,
            r#"{"type":"ack","nonce":"n-1"}"#,
            r#"{"type":"ack","nonce":7,"seq":3}"#,
            r#"{"type":"brand_new","x":1}"#,
            r#"{"type":7}"#,
            r#"{"nonce":"n"}"#,
            r#"[1,2]"#,
            r#"42"#,
            r#"hola"#,
            r#"{"type":"ack","nonce":"n","seq":3"#,
        ] {
            let (ours, theirs) = (decode_server(text), derived(text));
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{text}: {a} / {b}"),
                _ => panic!("{text}: {ours:?} / {theirs:?}"),
            }
        }
    }

    #[test]
    fn the_server_decoder_knows_every_type() {
        for kind in ServerMsg::TYPES {
            let err = decode_server(&format!(r#"{{"type":"{kind}"}}"#)).err();
            assert!(
                !matches!(err, Some(DecodeError::UnknownType(_))),
                "{kind}: {err:?}"
            );
        }
    }

    #[test]
    fn the_chats_decoder_knows_the_chat_and_skips_the_exercises() {
        let exercises = [
            "echo",
            "binary",
            "ticker",
            "ticker_stopped",
            "random",
            "products",
            "product_added",
            "product_removed",
            "product_refused",
        ];
        for kind in ServerMsg::TYPES {
            let text = format!(r#"{{"type":"{kind}"}}"#);
            let chat = decode_server_chat(&text);
            if exercises.contains(kind) {
                assert_eq!(chat, Err(DecodeError::UnknownType(kind.to_string())));
            } else {
                assert_eq!(chat, decode_server(&text), "{kind}");
            }
        }
        let line =
            r#"{"type":"message","room":"general","seq":1,"from":"a1","text":"hola","at":5}"#;
        assert_eq!(decode_server_chat(line), decode_server(line));
        assert!(decode_server_chat(line).is_ok());
        assert_eq!(
            decode_server_chat("hola").map_err(|e| e.code()),
            Err(ErrorCode::BadJson)
        );
    }

    #[test]
    fn each_kind_of_bad_frame_has_its_code() {
        assert_eq!(code_of("hola"), ErrorCode::BadJson);
        assert_eq!(code_of(r#"{"type":"send","text":"a""#), ErrorCode::BadJson);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code_of("42"), ErrorCode::BadJson);
        assert_eq!(
            code_of(r#"{"type":"shout","text":"a"}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(code_of(r#"{"text":"a"}"#), ErrorCode::BadField);
        assert_eq!(code_of(r#"{"type":7,"text":"a"}"#), ErrorCode::BadField);
        assert_eq!(code_of(r#"{"type":"send"}"#), ErrorCode::BadField);
        assert_eq!(code_of(r#"{"type":"send","text":5}"#), ErrorCode::BadField);
        assert_eq!(
            code_of(r#"{"type":"typing","text":null}"#),
            ErrorCode::BadField
        );
        assert_eq!(
            code_of(r#"{"type":"send","text":"a","nonce":1}"#),
            ErrorCode::BadField
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code_of(&deep), ErrorCode::BadJson);
        let deep_field = format!(
            r#"{{"type":"send","text":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(code_of(&deep_field), ErrorCode::BadJson);
    }

    #[test]
    fn a_forged_from_or_seq_is_ignored() {
        // Unknown fields are dropped: a client cannot smuggle a sender or a position in.
        let msg = decode_client(r#"{"type":"send","text":"hi","from":"someone","seq":9}"#);
        assert_eq!(
            msg,
            Ok(ClientMsg::Send {
                room: None,
                text: "hi".into(),
                nonce: None
            })
        );
    }

    #[test]
    fn an_echoed_unknown_type_is_kept_short() {
        let long = "x".repeat(10_000);
        let err = decode_client(&format!(r#"{{"type":"{long}"}}"#)).expect_err("unknown");
        assert!(err.to_string().len() < 200, "{err}");
    }

    fn any_client_msg() -> impl Strategy<Value = ClientMsg> {
        prop_oneof![
            (proptest::option::of("[a-z0-9_-]{1,32}"), any::<String>())
                .prop_map(|(room, text)| ClientMsg::Typing { room, text }),
            (
                proptest::option::of("[a-z0-9_-]{1,32}"),
                any::<String>(),
                proptest::option::of(any::<String>())
            )
                .prop_map(|(room, text, nonce)| ClientMsg::Send { room, text, nonce }),
            "[a-z0-9_-]{1,32}".prop_map(|room| ClientMsg::Join { room }),
            any::<String>().prop_map(|name| ClientMsg::SetName { name }),
            any::<String>().prop_map(|text| ClientMsg::Echo { text }),
            any::<u64>().prop_map(|n| ClientMsg::Tic { n }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(ticker, every_ms)| ClientMsg::StartTicker { ticker, every_ms }),
            (
                any::<String>(),
                any::<String>(),
                -1e12..1e12f64,
                any::<u32>()
            )
                .prop_map(|(title, code, price, stock)| ClientMsg::AddProduct {
                    product: crate::NewProduct {
                        title,
                        description: "d".into(),
                        code,
                        price: crate::Price(price),
                        stock,
                    }
                }),
        ]
    }

    fn any_server_msg() -> impl Strategy<Value = ServerMsg> {
        let line = (
            any::<u64>(),
            "[A-Za-z0-9_-]{16}",
            any::<String>(),
            any::<u64>(),
            proptest::option::of("[a-z0-9-]{1,64}"),
        )
            .prop_map(|(seq, from, text, at, nonce)| ChatLine {
                room: RoomName::general(),
                seq: Seq(seq),
                from: ConnId::new(from),
                name: None,
                user: None,
                text,
                at,
                nonce,
                edited: false,
                removed: false,
                change: None,
            });
        prop_oneof![
            (
                "[A-Za-z0-9_-]{16}",
                proptest::collection::vec(line.clone(), 0..4),
                any::<u32>()
            )
                .prop_map(|(id, history, online)| ServerMsg::Welcome(
                    crate::server::Welcome {
                        id: ConnId::new(id),
                        history,
                        online,
                        protocol: 1,
                        resume: "token".into(),
                        has_more: online % 2 == 0,
                        resumed: online % 3 == 0,
                        name: None,
                        limits: None,
                        greeting: None,
                        user: None,
                    }
                )),
            ("[A-Za-z0-9_-]{16}", any::<String>()).prop_map(|(from, text)| ServerMsg::Typing(
                crate::server::Typing {
                    room: RoomName::general(),
                    from: ConnId::new(from),
                    name: None,
                    user: None,
                    text
                }
            )),
            line.prop_map(ServerMsg::Message),
            any::<u32>().prop_map(|online| ServerMsg::Presence(crate::server::Presence {
                room: RoomName::general(),
                online,
                members: None
            })),
            any::<String>().prop_map(|message| ServerMsg::error(ErrorCode::TooLarge, message)),
            (any::<u32>(), 1..=1000u32)
                .prop_map(|(ticker, n)| ServerMsg::Random(crate::server::Random { ticker, n })),
            (any::<u64>(), any::<String>(), 0.0..1e9f64).prop_map(|(id, title, price)| {
                ServerMsg::ProductAdded(crate::server::ProductAdded {
                    product: crate::Product {
                        id,
                        title,
                        description: String::new(),
                        code: "c".into(),
                        price: crate::Price(price),
                        stock: 1,
                    },
                })
            }),
        ]
    }

    /// Fragments that make junk look like the real thing often enough to reach deep paths.
    fn junk() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("\"type\"".to_owned()),
            Just(":".to_owned()),
            Just(",".to_owned()),
            Just("\"send\"".to_owned()),
            Just("\"typing\"".to_owned()),
            Just("\"text\"".to_owned()),
            Just("\"nonce\"".to_owned()),
            Just("1e999".to_owned()),
            Just("-0".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("null".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            any::<String>(),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn client_messages_round_trip(msg in any_client_msg()) {
            prop_assert_eq!(decode_client(&encode(&msg)), Ok(msg));
        }

        #[test]
        fn server_messages_round_trip(msg in any_server_msg()) {
            prop_assert_eq!(decode_server(&encode(&msg)), Ok(msg));
        }

    }

    proptest! {
        // The decoding fuzz target: many cases, because this is the door every client frame
        // comes through. (PROPTEST_CASES overrides it for a longer run.)
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000)
        ))]

        #[test]
        fn junk_gets_the_code_an_independent_oracle_expects(text in junk()) {
            // Never panics, and classifies every frame as the protocol says, which the
            // oracle works out on its own (it does not call the decoder).
            if let Some(expected) = crate::oracle::expected_refusal(&text) {
                prop_assert_eq!(decode_client(&text).err().map(|e| e.code()), expected, "{}", text);
            }
        }

        #[test]
        fn any_string_decodes_without_panic(text in any::<String>()) {
            let _ = decode_server(&text);
            prop_assert!(decode_client(&text).is_err() || text.contains("type"));
        }
    }
}
