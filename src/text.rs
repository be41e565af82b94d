//! Text for people: names from outside made safe for a terminal, sizes, times and
//! durations as driftless writes and reads them. A leaf: it imports nothing of driftless.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

/// Text from outside this process (file and object names, release messages, authors,
/// hold reasons) made safe for a terminal: control characters and bidirectional
/// overrides are shown escaped (`\n`, `\u{1b}`), so a name can neither forge a line of
/// the proof block nor send escape sequences to the terminal.
pub fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

pub fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "48h", "30m", "90s", "7d", or anything jiff reads as a duration ("2h 30m", "PT48H").
pub fn parse_duration(text: &str) -> Option<SignedDuration> {
    let t = text.trim();
    let days = t
        .strip_suffix('d')
        .and_then(|n| n.trim().parse::<i64>().ok())
        .map(|n| SignedDuration::from_hours(n * 24));
    days.or_else(|| t.parse::<SignedDuration>().ok())
        .filter(|d| !d.is_negative())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Some(SignedDuration::from_hours(48)));
        assert_eq!(parse_duration("7d"), Some(SignedDuration::from_hours(168)));
        assert_eq!(parse_duration("30m"), Some(SignedDuration::from_mins(30)));
        assert_eq!(parse_duration("0s"), Some(SignedDuration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1h"), None);
    }
}
