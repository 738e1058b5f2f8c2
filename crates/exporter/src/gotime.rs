//! Times as Go's `time.Time` reads and writes them in JSON (RFC 3339 with up to
//! nanoseconds, trailing zeros of the fraction dropped, `Z` for a zero offset), and
//! `SOURCE_DATE_EPOCH` values turned into such times.

use std::cmp::Ordering;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time with the offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoTime(OffsetDateTime);

impl GoTime {
    /// Parses an RFC 3339 time; `None` if it is not one.
    pub(crate) fn parse(text: &str) -> Option<GoTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(GoTime)
    }

    /// The UTC time `seconds` after the Unix epoch; `None` if out of range.
    pub(crate) fn from_unix(seconds: i64) -> Option<GoTime> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(GoTime)
    }

    /// Whether this is strictly later than `other` (Go's `After`).
    pub(crate) fn after(&self, other: &GoTime) -> bool {
        self.0.cmp(&other.0) == Ordering::Greater
    }

    /// Go's `RFC3339Nano` layout, as `json.Marshal` writes a `time.Time`.
    pub(crate) fn to_json_string(self) -> String {
        let t = self.0;
        let mut out = date_time(t);
        let nanos = t.nanosecond();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push_str(&offset(t.offset()));
        out
    }

    /// Go's `t.UTC().Format(time.RFC3339)`: whole seconds, `Z`.
    pub(crate) fn to_utc_seconds_string(self) -> String {
        let mut out = date_time(self.0.to_offset(UtcOffset::UTC));
        out.push('Z');
        out
    }
}

fn date_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn offset(o: UtcOffset) -> String {
    if o.is_utc() {
        return "Z".to_string();
    }
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t = |s: &str| GoTime::parse(s).unwrap().to_json_string();
        assert_eq!(t("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05Z");
        assert_eq!(
            t("2024-01-02T03:04:05.120000000Z"),
            "2024-01-02T03:04:05.12Z"
        );
        assert_eq!(
            t("2024-01-02T03:04:05.000000001+00:00"),
            "2024-01-02T03:04:05.000000001Z"
        );
        assert_eq!(
            t("2024-01-02T03:04:05.5-07:30"),
            "2024-01-02T03:04:05.5-07:30"
        );
        assert!(GoTime::parse("yesterday").is_none());
    }

    #[test]
    fn epoch_and_comparison() {
        let e = GoTime::from_unix(1_700_000_000).unwrap();
        assert_eq!(e.to_json_string(), "2023-11-14T22:13:20Z");
        let later = GoTime::parse("2023-11-14T23:13:21+01:00").unwrap();
        let same = GoTime::parse("2023-11-14T23:13:20+01:00").unwrap();
        assert!(later.after(&e));
        assert!(!same.after(&e));
        assert_eq!(later.to_utc_seconds_string(), "2023-11-14T22:13:21Z");
        assert_eq!(
            GoTime::parse("2023-11-14T22:13:20.9Z")
                .unwrap()
                .to_utc_seconds_string(),
            "2023-11-14T22:13:20Z"
        );
    }
}
