//! Server-Sent Events, cut out of a stream's bytes without I/O: the client's fallback
//! transport, the test kit and the operator's console read their event streams with these.

/// One event of an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `id:`, if it had one (data events do; pings and the close do not).
    pub id: Option<u64>,
    /// Its `event:` (`message` when it named none).
    pub event: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
}

/// One event block; none for a block with no `data:` (the `retry:` preamble, a comment).
pub fn parse_event(block: &str) -> Option<SseEvent> {
    let mut id = None;
    let mut event = "message".to_owned();
    let mut data: Option<String> = None;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = value.parse().ok(),
            "event" => event = value.to_owned(),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    data.map(|data| SseEvent { id, event, data })
}

/// Takes the next whole event block (up to its blank line) off the front of `pending`.
pub fn take_block(pending: &mut Vec<u8>) -> Option<String> {
    let end = pending.windows(2).position(|w| w == b"\n\n")?;
    let block: Vec<u8> = pending.drain(..end + 2).collect();
    Some(String::from_utf8_lossy(&block).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_cut_at_blank_lines_and_read_field_by_field() {
        let mut pending =
            b"retry: 2000\n\nevent: sample\ndata: {\"a\":1}\ndata: two\n\nid: 3\nda".to_vec();
        let first = take_block(&mut pending).expect("a block");
        assert_eq!(parse_event(&first), None, "no data: the preamble");
        let second = take_block(&mut pending).expect("a block");
        assert_eq!(
            parse_event(&second),
            Some(SseEvent {
                id: None,
                event: "sample".into(),
                data: "{\"a\":1}\ntwo".into(),
            })
        );
        assert_eq!(take_block(&mut pending), None, "half a block waits");
        assert_eq!(pending, b"id: 3\nda");
    }
}
