//! A room's kept history ([`History`]): its latest lines, at most the history cap, oldest
//! first and contiguous in `seq`, each kept as its encoded `message` frame, and the last
//! `seq` published. A greeting takes a [`Page`] of it; a `joined`, a v1 `welcome` or an
//! `older` reply splices the kept bytes into one frame ([`splice_lines`]) instead of
//! encoding every line again. No lock here: the room holds one around it.

use std::{collections::VecDeque, ops::Range};

use shared::{Change, ChangeKind, ChatLine, Seq, ServerMsg, decode_server, encode};

use crate::outbox::Frame;

/// A line kept in memory, as its encoded `message` frame.
#[derive(Debug, Clone)]
pub(super) struct KeptLine {
    pub seq: Seq,
    pub message: Frame,
}

/// The lines a greeting carries: which kept lines, whether older ones exist, and whether
/// they are exactly the ones after where a resuming member stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    /// Indexes into the kept lines.
    pub range: Range<usize>,
    /// Older lines exist (the page is the latest ones, not all).
    pub has_more: bool,
    /// The member resumed: these are all the lines it missed.
    pub resumed: bool,
}

/// A room's kept lines and its numbering.
#[derive(Debug)]
pub(super) struct History {
    lines: VecDeque<KeptLine>,
    /// The last `seq` published (lines below the cap are gone, their count is not).
    last_seq: Seq,
    /// The most lines kept (at least 1).
    cap: usize,
}

impl History {
    /// The history over loaded lines (oldest first, contiguous): the latest `cap` of them.
    pub(super) fn new(lines: Vec<ChatLine>, cap: usize) -> Self {
        let cap = cap.max(1);
        let last_seq = lines.last().map_or(Seq(0), |l| l.seq);
        let skip = lines.len().saturating_sub(cap);
        let mut history = History {
            lines: VecDeque::new(),
            last_seq,
            cap,
        };
        for line in lines.into_iter().skip(skip) {
            history.keep_loaded(line);
        }
        history
    }

    /// Keeps a line read back from where it is kept (in order, within the cap), applying
    /// it if it is an edit or a deletion (a shared Redis stream keeps lines as they were
    /// sent).
    fn keep_loaded(&mut self, mut line: ChatLine) {
        if line.change.is_some() {
            self.apply_change(&mut line);
        }
        self.lines.push_back(keep(line));
    }

    /// How many lines are kept.
    pub(super) fn len(&self) -> usize {
        self.lines.len()
    }

    /// How many would be kept with `more` lines added.
    pub(super) fn len_with(&self, more: usize) -> usize {
        (self.lines.len() + more).min(self.cap)
    }

    /// The last `seq` published.
    pub(super) fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// The `seq` the next line must have to follow on.
    pub(super) fn next_seq(&self) -> Seq {
        Seq(self.last_seq.0 + 1)
    }

    /// Keeps the next entry (dropping the oldest past the cap); returns its frame as sent
    /// live. An edit or a deletion is applied to its target first, so whoever reads the
    /// kept lines afterwards (a newcomer, `older`, the HTTP API) gets the line as it is now.
    pub(super) fn push(&mut self, mut line: ChatLine) -> Frame {
        self.last_seq = line.seq;
        let live = if line.change.is_some() {
            self.apply_change(&mut line);
            Some(Frame::encode(&line.clone().into_server_msg()))
        } else {
            None
        };
        let kept = keep(line);
        let frame = live.unwrap_or_else(|| kept.message.clone());
        self.lines.push_back(kept);
        if self.lines.len() > self.cap {
            self.lines.pop_front();
        }
        frame
    }

    /// The kept line (or entry) at `seq`, if it is still kept.
    pub(super) fn line(&self, seq: Seq) -> Option<ChatLine> {
        let at = self.position(seq)?;
        read_kept(&self.lines[at])
    }

    fn position(&self, seq: Seq) -> Option<usize> {
        self.lines.binary_search_by_key(&seq, |l| l.seq).ok()
    }

    /// Applies an edit or a deletion to its kept target: an edit changes its text (never a
    /// removed line's: then the edit's own text is dropped too); a deletion removes the
    /// target's text and that of every kept edit of it, so the removed text is gone.
    fn apply_change(&mut self, entry: &mut ChatLine) {
        let Some(change) = entry.change.clone().filter(|c| c.kind.changes_a_line()) else {
            return;
        };
        let target = change.target();
        let Some(at) = self.position(target) else {
            return;
        };
        let Some(mut line) = read_kept(&self.lines[at]).filter(|l| l.change.is_none()) else {
            return;
        };
        match change.kind {
            ChangeKind::Edit if line.removed => entry.text.clear(),
            ChangeKind::Edit => {
                line.text.clone_from(&entry.text);
                line.edited = true;
            }
            ChangeKind::Delete => {
                line.text.clear();
                line.removed = true;
                line.edited = false;
                for kept in self.lines.iter_mut().skip(at + 1) {
                    let is_edit = kept
                        .message
                        .text()
                        .is_some_and(|t| t.as_str().contains(r#""kind":"edit""#));
                    if !is_edit {
                        continue;
                    }
                    if let Some(mut edit) = read_kept(kept)
                        && edit.change == Some(Change::edit(target))
                    {
                        edit.text.clear();
                        *kept = keep(edit);
                    }
                }
            }
            _ => return,
        }
        self.lines[at] = keep(line);
    }

    /// Forgets the kept lines; the numbering goes on. Returns how many there were.
    pub(super) fn clear(&mut self) -> usize {
        let gone = self.lines.len();
        self.lines.clear();
        gone
    }

    /// Forgets the kept lines and numbers on from just before `first` (the lines before it
    /// are gone from where they were kept). Returns how many were forgotten.
    pub(super) fn restart_before(&mut self, first: Seq) -> usize {
        self.last_seq = Seq(first.0.saturating_sub(1));
        self.clear()
    }

    /// Keeps lines read back from where they are kept, without delivering them: lines not
    /// after the last kept one are skipped; a gap before one starts the history over at it.
    pub(super) fn restore(&mut self, lines: Vec<ChatLine>) {
        for line in lines {
            if line.seq <= self.last_seq {
                continue;
            }
            if line.seq != self.next_seq() {
                self.lines.clear();
            }
            self.push(line);
        }
    }

    /// The lines to greet a member with (at most `max_lines` and `max_bytes` of them):
    /// exactly the lines after `after` when they all fit, else the latest page.
    pub(super) fn page_for(&self, after: Seq, max_lines: usize, max_bytes: usize) -> Page {
        let end = self.lines.len();
        // The latest lines that fit both bounds, counted from the newest.
        let mut start = end;
        let mut bytes = 0;
        while start > 0 && end - start < max_lines {
            let size = self.lines[start - 1].message.len();
            if bytes + size > max_bytes {
                break;
            }
            bytes += size;
            start -= 1;
        }
        let first_kept = self.lines.front().map_or(self.last_seq.0 + 1, |l| l.seq.0);
        let missed_from = self.lines.partition_point(|l| l.seq <= after);
        let resumable = after.0 > 0
            && after <= self.last_seq
            && after.0 + 1 >= first_kept
            && missed_from >= start;
        if resumable {
            return Page {
                range: missed_from..end,
                has_more: false,
                resumed: true,
            };
        }
        Page {
            range: start..end,
            has_more: start > 0,
            resumed: false,
        }
    }

    /// The kept lines of a page.
    pub(super) fn lines(&self, range: Range<usize>) -> Vec<&KeptLine> {
        self.lines.range(range).collect()
    }

    /// Up to `limit` kept lines before `before` and at most `max_bytes` of them (the newest
    /// of those; always one, so paging back always moves), oldest first; and whether older
    /// ones exist.
    pub(super) fn older(
        &self,
        before: Seq,
        limit: usize,
        max_bytes: usize,
    ) -> (Vec<&KeptLine>, bool) {
        let end = self.lines.partition_point(|l| l.seq < before);
        let mut start = end;
        let mut bytes = 0;
        while start > 0 && end - start < limit {
            let size = self.lines[start - 1].message.len();
            if bytes + size > max_bytes && start < end {
                break;
            }
            bytes += size;
            start -= 1;
        }
        (self.lines.range(start..end).collect(), start > 0)
    }

    /// Up to `limit` kept lines after `after`, oldest first, as a JSON array (each line as
    /// in its `message` frame, less the `type`).
    pub(super) fn lines_json(&self, after: Seq, limit: usize) -> String {
        let start = self.lines.partition_point(|l| l.seq <= after);
        let mut json = String::from("[");
        for (i, line) in self.lines.range(start..).take(limit).enumerate() {
            let Some(text) = line.message.text() else {
                continue;
            };
            if let Some(fields) = text.as_str().strip_prefix(MESSAGE_PREFIX) {
                if i > 0 {
                    json.push(',');
                }
                json.push('{');
                json.push_str(fields);
            }
        }
        json.push(']');
        json
    }
}

/// The start of every encoded `message` frame; what follows is the line's own fields.
const MESSAGE_PREFIX: &str = r#"{"type":"message","#;

/// A kept line read back from its frame.
fn read_kept(kept: &KeptLine) -> Option<ChatLine> {
    match decode_server(kept.message.text()?.as_str()) {
        Ok(ServerMsg::Message(line)) => Some(line),
        _ => None,
    }
}

/// A line as it is kept: its encoded `message` frame.
pub(super) fn keep(line: ChatLine) -> KeptLine {
    let seq = line.seq;
    let message = Frame::encode(&ServerMsg::Message(line));
    debug_assert!(
        message
            .text()
            .is_some_and(|t| t.as_str().starts_with(MESSAGE_PREFIX))
    );
    KeptLine { seq, message }
}

/// `shell` (whose `field` is an empty array) with `lines` spliced into that array: each
/// line's JSON is its kept `message` frame without the `type`. Under the room's lock this
/// only shares the lines' bytes; the connection's writer assembles the frame.
pub(super) fn splice_lines(shell: &ServerMsg, field: &str, lines: &[&KeptLine]) -> Frame {
    let json = encode(shell);
    let empty = format!(r#""{field}":[]"#);
    // Names before `field` are slugs and ids (no quotes inside), so the first match is it.
    let Some(at) = json.find(&empty) else {
        return Frame::encode(shell); // Unreachable for the shells above; stay correct anyway.
    };
    let split = at + empty.len() - 1;
    let bytes = lines
        .iter()
        .filter_map(|l| l.message.text().cloned())
        .collect();
    Frame::spliced(
        shell.type_name(),
        json[..split].to_owned(),
        bytes,
        MESSAGE_PREFIX.len(),
        json[split..].to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{ConnId, DisplayName, RoomName, decode_server};

    fn line(seq: u64) -> ChatLine {
        ChatLine {
            seq: Seq(seq),
            from: ConnId::new("a"),
            name: DisplayName::parse("Ana").ok(),
            text: format!("line {seq}"),
            at: 0,
            nonce: None,
            room: RoomName::general(),
            user: None,
            edited: false,
            removed: false,
            change: None,
        }
    }

    fn quoted(seq: u64, text: &str) -> ChatLine {
        ChatLine {
            text: text.into(),
            nonce: Some(format!("n-{seq}")),
            ..line(seq)
        }
    }

    #[test]
    fn spliced_frames_decode_to_the_same_message_as_encoding_them_whole() {
        let lines = vec![quoted(1, "hola \"quoted\" ,]}"), quoted(2, "adiós")];
        let kept: Vec<KeptLine> = lines.iter().cloned().map(keep).collect();
        let refs: Vec<&KeptLine> = kept.iter().collect();
        let shell = ServerMsg::Older(shared::server::Older {
            room: RoomName::general(),
            lines: Vec::new(),
            has_more: true,
        });
        let spliced = splice_lines(&shell, "lines", &refs).into_bytes();
        let whole = ServerMsg::Older(shared::server::Older {
            room: RoomName::general(),
            lines: lines.clone(),
            has_more: true,
        });
        assert_eq!(spliced.as_str(), encode(&whole));
        assert_eq!(decode_server(spliced.as_str()), Ok(whole));
        let empty = splice_lines(&shell, "lines", &[]).into_bytes();
        assert_eq!(empty.as_str(), encode(&shell));
    }

    fn lines(seqs: std::ops::RangeInclusive<u64>) -> Vec<ChatLine> {
        seqs.map(line).collect()
    }

    fn seqs(kept: &[&KeptLine]) -> Vec<u64> {
        kept.iter().map(|l| l.seq.0).collect()
    }

    #[test]
    fn the_cap_keeps_the_latest_lines_and_the_numbering_goes_on() {
        let mut history = History::new(lines(1..=5), 3);
        assert_eq!((history.len(), history.last_seq()), (3, Seq(5)));
        history.push(line(6));
        assert_eq!(seqs(&history.lines(0..3)), [4, 5, 6]);
        assert_eq!(history.clear(), 3);
        assert_eq!((history.len(), history.next_seq()), (0, Seq(7)));
    }

    #[test]
    fn a_member_that_missed_a_few_lines_gets_exactly_those() {
        let history = History::new(lines(1..=10), 100);
        let page = history.page_for(Seq(7), 500, usize::MAX);
        assert_eq!(
            page,
            Page {
                range: 7..10,
                has_more: false,
                resumed: true
            }
        );
        // Too far behind for the page: the latest lines instead, and "there is more".
        let page = history.page_for(Seq(2), 4, usize::MAX);
        assert_eq!(seqs(&history.lines(page.range.clone())), [7, 8, 9, 10]);
        assert!(page.has_more && !page.resumed);
        // A newcomer: the latest page, cut by bytes as well as by count.
        let last_two: usize = history.lines(8..10).iter().map(|l| l.message.len()).sum();
        let page = history.page_for(Seq(0), 500, last_two);
        assert_eq!((page.range.len(), page.has_more), (2, true));
    }

    #[test]
    fn older_pages_back_by_count_and_bytes_and_always_move() {
        let history = History::new(lines(1..=10), 100);
        let (page, more) = history.older(Seq(8), 3, usize::MAX);
        assert_eq!((seqs(&page), more), (vec![5, 6, 7], true));
        let (page, more) = history.older(Seq(4), 100, 0);
        assert_eq!((seqs(&page), more), (vec![3], true));
        let (page, more) = history.older(Seq(1), 100, usize::MAX);
        assert!(page.is_empty() && !more);
    }

    #[test]
    fn restored_lines_skip_what_is_kept_and_start_over_after_a_gap() {
        let mut history = History::new(lines(1..=3), 100);
        history.restore(lines(2..=5));
        assert_eq!(seqs(&history.lines(0..history.len())), [1, 2, 3, 4, 5]);
        history.restore(lines(9..=10));
        assert_eq!(seqs(&history.lines(0..history.len())), [9, 10]);
        assert_eq!(history.restart_before(Seq(20)), 2);
        assert_eq!(history.next_seq(), Seq(20));
    }

    #[test]
    fn lines_json_is_each_message_without_its_type() {
        let history = History::new(lines(1..=3), 100);
        let json: serde_json::Value =
            serde_json::from_str(&history.lines_json(Seq(1), 10)).expect("JSON");
        let texts: Vec<&str> = json
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|l| l["text"].as_str())
            .collect();
        assert_eq!(texts, ["line 2", "line 3"]);
        assert!(json[0].get("type").is_none());
    }
}
