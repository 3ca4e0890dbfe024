//! How durations are written on both command lines (the server's `--session-ttl`,
//! `--refresh-before`, …; `charla token --ttl`): `45s`, `30m`, `12h`, `7d`, or a plain number
//! of seconds. One parser, so the two never disagree.

use std::time::Duration;

/// Parses `45s`, `30m`, `12h`, `7d`, or a plain number of seconds; zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and s, m, h or d (45s, 30m, 12h, 7d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3_600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("the duration must be above zero".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Like [`parse_duration`], and zero (`0`, `0s`, …) is allowed.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    if text.trim().trim_end_matches(['s', 'm', 'h', 'd']) == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("7d"), Ok(7 * 86_400));
        assert_eq!(secs("12h"), Ok(12 * 3_600));
        assert_eq!(secs("30m"), Ok(1_800));
        assert_eq!(secs(" 45 "), Ok(45));
        for bad in ["", "0s", "7w", "d", "-1s", "1.5h"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("30s"), Ok(Duration::from_secs(30)));
    }
}
