//! The messages: [`ClientMsg`] (client → server) and [`ServerMsg`] (server → client).
//!
//! The JSON shape is fixed by the literal-JSON tests at the bottom of this file; change a
//! name here and they fail, which is the point.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// A connection's public id, chosen by the server: URL-safe, at least 96 random bits.
/// A client can never choose it, nor put another one in the `from` of a line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(String);

impl ConnId {
    /// Wraps an id. The server makes ids; clients only receive them.
    pub fn new(id: impl Into<String>) -> Self {
        ConnId(id.into())
    }

    /// The id as text, as it appears on the wire and on the page.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A line's position in the history: starts at 1, rises by one per line, no gaps. Every
/// client sees lines in this order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One line of the history, as kept by the server and sent to every client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Its position in the history.
    pub seq: Seq,
    /// Who sent it: the sender's connection id, set by the server.
    pub from: ConnId,
    /// What was sent, as typed (rendered as text, never as markup).
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The `nonce` its sender gave the `send`, if any: lets the sender recognise its own line
    /// (e.g. in a replay) and never show it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// A frame from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The sender's input box as it is now; `""` clears its live text everywhere.
    Typing {
        /// The whole current text of the input box.
        text: String,
    },
    /// Append a line to the history.
    Send {
        /// The line. Must not be blank.
        text: String,
        /// A client-chosen string (at most 64 characters) that identifies this send: the
        /// server acks it once the line is durable, and a `send` repeated with a nonce it
        /// already accepted from the same client is acked again, not appended again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// Asks for the lines before `before`, newest last (at most `limit`, capped by the server).
    LoadOlder {
        /// Lines with a `seq` below this one.
        before: Seq,
        /// How many at most.
        limit: u32,
    },
    /// An application-level ping (browsers cannot see WebSocket pings); answered by `pong`.
    Ping,
}

impl ClientMsg {
    /// Every `type` a client may send, as on the wire.
    pub const TYPES: &'static [&'static str] = &["typing", "send", "load_older", "ping"];

    /// This message's `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Typing { .. } => "typing",
            ClientMsg::Send { .. } => "send",
            ClientMsg::LoadOlder { .. } => "load_older",
            ClientMsg::Ping => "ping",
        }
    }
}

/// A frame from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Always the first frame of a connection.
    Welcome {
        /// This connection's public id (the same as before when a resume succeeded).
        id: ConnId,
        /// Lines, oldest first. When `resumed`, exactly the lines after the client's `after`
        /// (append them); otherwise the latest page of the history (replace with it).
        history: Vec<ChatLine>,
        /// How many clients are connected, this one included.
        online: u32,
        /// The protocol version ([`crate::limits::PROTOCOL_VERSION`]).
        protocol: u32,
        /// A private token: reconnect with `/ws?resume=<token>&after=<last seq>` to keep this
        /// id and get every line missed meanwhile. Never shown to other clients.
        #[serde(default)]
        resume: String,
        /// Whether lines older than the first in `history` exist (ask with `load_older`).
        #[serde(default)]
        has_more: bool,
        /// Whether this connection resumed a session: `history` continues the client's own.
        #[serde(default)]
        resumed: bool,
    },
    /// Someone's live text; replaces the live paragraph. Sent to every client, typist included.
    Typing {
        /// The typist.
        from: ConnId,
        /// Their input box as it is now; `""` means they cleared it.
        text: String,
    },
    /// A new history line (the line's fields sit beside `type`).
    Message(ChatLine),
    /// The sender's line with this `nonce` is durable, at this `seq`. Sent to the sender only,
    /// before the `message` itself.
    Ack {
        /// The nonce of the `send`.
        nonce: String,
        /// Where the line is in the history.
        seq: Seq,
    },
    /// The reply to `load_older`.
    Older {
        /// The lines, oldest first (empty when there are none).
        lines: Vec<ChatLine>,
        /// Whether still older lines exist.
        has_more: bool,
    },
    /// The reply to `ping`.
    Pong,
    /// The number of connected clients changed.
    Presence {
        /// How many clients are connected now.
        online: u32,
    },
    /// The last frame was refused. The connection stays open unless a close frame follows.
    Error {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
}

impl ServerMsg {
    /// Every `type` a server may send, as on the wire.
    pub const TYPES: &'static [&'static str] = &[
        "welcome", "typing", "message", "ack", "older", "pong", "presence", "error",
    ];

    /// This message's `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMsg::Welcome { .. } => "welcome",
            ServerMsg::Typing { .. } => "typing",
            ServerMsg::Message(_) => "message",
            ServerMsg::Ack { .. } => "ack",
            ServerMsg::Older { .. } => "older",
            ServerMsg::Pong => "pong",
            ServerMsg::Presence { .. } => "presence",
            ServerMsg::Error { .. } => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    //! One literal-JSON test per variant, both ways: these freeze the wire format.
    use super::*;
    use crate::{decode_client, decode_server, encode};

    fn line(seq: u64, from: &str, text: &str, at: u64) -> ChatLine {
        ChatLine {
            seq: Seq(seq),
            from: ConnId::new(from),
            text: text.into(),
            at,
            nonce: None,
        }
    }

    /// Asserts that `msg` encodes to exactly `json` and that `json` decodes to `msg`.
    fn client_wire(msg: ClientMsg, json: &str) {
        assert_eq!(encode(&msg), json);
        assert_eq!(decode_client(json).expect("decodes"), msg);
        assert!(ClientMsg::TYPES.contains(&msg.type_name()));
    }

    fn server_wire(msg: ServerMsg, json: &str) {
        assert_eq!(encode(&msg), json);
        assert_eq!(decode_server(json).expect("decodes"), msg);
        assert!(ServerMsg::TYPES.contains(&msg.type_name()));
    }

    #[test]
    fn client_typing_wire() {
        client_wire(
            ClientMsg::Typing { text: "ho".into() },
            r#"{"type":"typing","text":"ho"}"#,
        );
    }

    #[test]
    fn client_send_wire() {
        client_wire(
            ClientMsg::Send {
                text: "hola".into(),
                nonce: None,
            },
            r#"{"type":"send","text":"hola"}"#,
        );
        client_wire(
            ClientMsg::Send {
                text: "hola".into(),
                nonce: Some("n-1".into()),
            },
            r#"{"type":"send","text":"hola","nonce":"n-1"}"#,
        );
    }

    #[test]
    fn client_load_older_wire() {
        client_wire(
            ClientMsg::LoadOlder {
                before: Seq(501),
                limit: 100,
            },
            r#"{"type":"load_older","before":501,"limit":100}"#,
        );
    }

    #[test]
    fn client_ping_wire() {
        client_wire(ClientMsg::Ping, r#"{"type":"ping"}"#);
    }

    #[test]
    fn server_welcome_wire() {
        server_wire(
            ServerMsg::Welcome {
                id: ConnId::new("q8Zr2vLk0aYbXw1c"),
                history: vec![line(1, "AAAAAAAAAAAAAAAA", "hola", 1763769600000)],
                online: 2,
                protocol: 1,
                resume: "r3sum3-t0k3n".into(),
                has_more: false,
                resumed: false,
            },
            r#"{"type":"welcome","id":"q8Zr2vLk0aYbXw1c","history":[{"seq":1,"from":"AAAAAAAAAAAAAAAA","text":"hola","at":1763769600000}],"online":2,"protocol":1,"resume":"r3sum3-t0k3n","has_more":false,"resumed":false}"#,
        );
    }

    #[test]
    fn a_v1_core_welcome_still_decodes() {
        // Fields added after the v1 core are optional: a server without them still works.
        let msg = decode_server(
            r#"{"type":"welcome","id":"q8Zr2vLk0aYbXw1c","history":[],"online":1,"protocol":1}"#,
        );
        assert!(matches!(
            msg,
            Ok(ServerMsg::Welcome {
                resumed: false,
                has_more: false,
                ..
            })
        ));
    }

    #[test]
    fn server_ack_wire() {
        server_wire(
            ServerMsg::Ack {
                nonce: "n-1".into(),
                seq: Seq(3),
            },
            r#"{"type":"ack","nonce":"n-1","seq":3}"#,
        );
    }

    #[test]
    fn server_older_wire() {
        server_wire(
            ServerMsg::Older {
                lines: vec![line(1, "AAAAAAAAAAAAAAAA", "hola", 1763769600000)],
                has_more: false,
            },
            r#"{"type":"older","lines":[{"seq":1,"from":"AAAAAAAAAAAAAAAA","text":"hola","at":1763769600000}],"has_more":false}"#,
        );
    }

    #[test]
    fn server_pong_wire() {
        server_wire(ServerMsg::Pong, r#"{"type":"pong"}"#);
    }

    #[test]
    fn server_typing_wire() {
        server_wire(
            ServerMsg::Typing {
                from: ConnId::new("q8Zr2vLk0aYbXw1c"),
                text: "hol".into(),
            },
            r#"{"type":"typing","from":"q8Zr2vLk0aYbXw1c","text":"hol"}"#,
        );
    }

    #[test]
    fn server_message_wire() {
        server_wire(
            ServerMsg::Message(line(3, "q8Zr2vLk0aYbXw1c", "hola", 1763769600000)),
            r#"{"type":"message","seq":3,"from":"q8Zr2vLk0aYbXw1c","text":"hola","at":1763769600000}"#,
        );
        let mut with_nonce = line(4, "q8Zr2vLk0aYbXw1c", "adiós", 1763769600001);
        with_nonce.nonce = Some("n-2".into());
        server_wire(
            ServerMsg::Message(with_nonce),
            r#"{"type":"message","seq":4,"from":"q8Zr2vLk0aYbXw1c","text":"adiós","at":1763769600001,"nonce":"n-2"}"#,
        );
    }

    #[test]
    fn server_presence_wire() {
        server_wire(
            ServerMsg::Presence { online: 4 },
            r#"{"type":"presence","online":4}"#,
        );
    }

    #[test]
    fn server_error_wire() {
        server_wire(
            ServerMsg::Error {
                code: ErrorCode::Empty,
                message: "a line cannot be blank".into(),
            },
            r#"{"type":"error","code":"empty","message":"a line cannot be blank"}"#,
        );
    }

    #[test]
    fn every_error_code_has_its_wire_name() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::UnknownType,
            ErrorCode::BadField,
            ErrorCode::Empty,
            ErrorCode::TooLarge,
            ErrorCode::BinaryFrame,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(encode(&code), format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn unknown_fields_and_codes_are_tolerated() {
        // Adding a field or an error code is a compatible change: old clients must cope.
        let msg = decode_server(r#"{"type":"presence","online":1,"region":"eu"}"#);
        assert_eq!(msg, Ok(ServerMsg::Presence { online: 1 }));
        let msg = decode_server(r#"{"type":"error","code":"brand_new","message":"m"}"#);
        assert_eq!(
            msg,
            Ok(ServerMsg::Error {
                code: ErrorCode::Other,
                message: "m".into()
            })
        );
    }
}
