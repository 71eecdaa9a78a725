//! `time` attribute conversions: `SystemTime` <-> RFC 3339 text.
//!
//! RFC 3339 writes years with exactly four digits, so a signal's time must lie
//! in the years 0000 to 9999; `build()` checks that with [`in_range`], which
//! makes [`format`] total for every time a `Signal` can hold.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Length of `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(super) const FORMATTED_LEN: usize = 30;

/// Nanoseconds since the Unix epoch (negative before 1970).
fn unix_nanos(t: SystemTime) -> Option<i128> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).ok(),
        Err(e) => i128::try_from(e.duration().as_nanos()).ok().map(|n| -n),
    }
}

/// `t` in UTC, if its year is 0000 to 9999.
fn to_utc(t: SystemTime) -> Option<OffsetDateTime> {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(unix_nanos(t)?).ok()?;
    (0..=9999).contains(&utc.year()).then_some(utc)
}

/// Whether RFC 3339 can express `t`.
pub(super) fn in_range(t: SystemTime) -> bool {
    to_utc(t).is_some()
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: UTC, always nine fraction digits
/// (fixed width, so the text sorts like the time). Formatted on the stack.
///
/// A time outside [`in_range`] (which no built `Signal` holds) is clamped to
/// the nearest end of the range.
pub(super) fn format(t: SystemTime) -> [u8; FORMATTED_LEN] {
    let (year, month, day, hour, minute, second, nanos) = match to_utc(t) {
        Some(u) => (
            u.year().unsigned_abs(),
            u32::from(u8::from(u.month())),
            u32::from(u.day()),
            u32::from(u.hour()),
            u32::from(u.minute()),
            u32::from(u.second()),
            u.nanosecond(),
        ),
        None if unix_nanos(t).is_some_and(|n| n < 0) => (0, 1, 1, 0, 0, 0, 0),
        None => (9999, 12, 31, 23, 59, 59, 999_999_999),
    };
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], hour);
    put_digits(&mut out[14..16], minute);
    put_digits(&mut out[17..19], second);
    put_digits(&mut out[20..29], nanos);
    out
}

/// Writes the low `slot.len()` decimal digits of `value` into `slot`.
fn put_digits(slot: &mut [u8], mut value: u32) {
    for digit in slot.iter_mut().rev() {
        // `value % 10` is below 10, so the narrowing cannot lose anything.
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Byte offset of the date/time separator: `full-date` is exactly
/// `YYYY-MM-DD`.
const SEPARATOR_AT: usize = 10;

/// Parses an RFC 3339 timestamp with any offset into a `SystemTime`.
///
/// The date and the time must be separated by `T` or `t` (RFC 3339 section
/// 5.6's grammar); the `time` crate accepts any byte there, so the separator
/// is checked here. A space is refused too: the RFC mentions it only as
/// something other applications may choose, outside its grammar.
pub(super) fn parse(s: &str) -> Result<SystemTime, String> {
    let parsed = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string())?;
    // A successful parse read a four-digit year, `-MM-DD` and one more byte,
    // so the separator is the character at byte 10.
    let separator = s.get(SEPARATOR_AT..).and_then(|rest| rest.chars().next());
    if !matches!(separator, Some('T' | 't')) {
        let found = separator.unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(format!(
            "the date and the time must be separated by 'T', found {found:?}"
        ));
    }
    let nanos = parsed.unix_timestamp_nanos();
    let magnitude = nanos.unsigned_abs();
    let secs = u64::try_from(magnitude / NANOS_PER_SEC.unsigned_abs());
    let subsec = u32::try_from(magnitude % NANOS_PER_SEC.unsigned_abs());
    let (Ok(secs), Ok(subsec)) = (secs, subsec) else {
        return Err("the time is out of range".to_owned());
    };
    let offset = Duration::new(secs, subsec);
    let t = if nanos >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    t.ok_or_else(|| "the time is out of range for this platform".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: SystemTime) -> String {
        String::from_utf8(format(t).to_vec()).unwrap()
    }

    #[test]
    fn formats_utc_with_nine_fraction_digits_and_parses_back() {
        let cases = [
            (UNIX_EPOCH, "1970-01-01T00:00:00.000000000Z"),
            (
                UNIX_EPOCH + Duration::new(1_522_949_460, 123),
                "2018-04-05T17:31:00.000000123Z",
            ),
            (
                UNIX_EPOCH - Duration::new(1, 500_000_000),
                "1969-12-31T23:59:58.500000000Z",
            ),
            (
                UNIX_EPOCH - Duration::from_secs(62_167_219_200),
                "0000-01-01T00:00:00.000000000Z",
            ),
            (
                UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999),
                "9999-12-31T23:59:59.999999999Z",
            ),
        ];
        for (t, text) in cases {
            assert!(in_range(t), "{text}");
            assert_eq!(fmt(t), text);
            assert_eq!(parse(text), Ok(t), "{text}");
        }
    }

    #[test]
    fn out_of_range_times_are_detected_and_clamped() {
        let late = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        let early = UNIX_EPOCH - Duration::from_secs(62_167_219_201);
        assert!(!in_range(late));
        assert!(!in_range(early));
        assert_eq!(fmt(late), "9999-12-31T23:59:59.999999999Z");
        assert_eq!(fmt(early), "0000-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn parses_offsets_and_rejects_non_rfc3339() {
        // RFC 3339 section 5.6: `T` and `Z` may be lower case.
        assert_eq!(parse("2018-04-05t17:31:00z"), parse("2018-04-05T17:31:00Z"));
        assert_eq!(
            parse("2018-04-05T19:31:00+02:00"),
            parse("2018-04-05T17:31:00Z")
        );
        for bad in [
            "yesterday",
            "2018-04-05T17:31:00",
            "2018-04-05",
            "2018-13-01T00:00:00Z",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // `time` accepts any byte between date and time; RFC 3339 only `T`/`t`.
        for (bad, found) in [
            ("2018-04-05x17:31:00Z", "'x'"),
            ("2018-04-05 17:31:00Z", "' '"),
            ("2018-04-05_17:31:00Z", "'_'"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                err.contains("separated by 'T'") && err.contains(found),
                "{bad}: {err}"
            );
        }
    }
}
