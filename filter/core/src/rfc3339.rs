//! RFC 3339 timestamps (`expires_at`) to and from Unix time in
//! nanoseconds.
//!
//! Grammar (RFC 3339 §5.6), read strictly:
//!
//! ```text
//! date-time    = full-date ("T" / "t") full-time
//! full-date    = 4DIGIT "-" 2DIGIT "-" 2DIGIT         ; year, month, day
//! full-time    = 2DIGIT ":" 2DIGIT ":" 2DIGIT [ "." 1*9DIGIT ] time-offset
//! time-offset  = "Z" / "z" / ("+" / "-") 2DIGIT ":" 2DIGIT
//! ```
//!
//! Decisions made here:
//! - The instant must lie in what a `u64` of nanoseconds since
//!   1970-01-01T00:00:00Z holds: from the epoch to [`LATEST`]
//!   (2554-07-21). An earlier or later time is refused, not clamped.
//! - A leap second (`:60`) is refused with its own error: Unix time has
//!   no name for it, and an expiry need not be that precise.
//! - At most nine fractional digits (nanoseconds); more are refused rather
//!   than rounded. `-00:00` ("offset unknown") is the same instant as `Z`.
//! - A space in place of `T` (allowed by RFC 3339's note) is refused.
//!
//! Never allocates; never panics on any input.

use core::fmt;

/// The latest instant [`parse`] accepts: `u64::MAX` nanoseconds.
pub const LATEST: &str = "2554-07-21T23:34:33.709551615Z";

/// The longest text [`format`] writes.
pub const FORMAT_LEN_MAX: usize = 30;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Why a text is not an RFC 3339 date-time Laneway accepts. Callers quote
/// the text itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// A byte is not what the grammar wants there (or the text ends).
    Syntax {
        /// The byte offset (saturating, for a text past 4 GiB).
        at: u32,
        /// What was expected, e.g. "a digit", "'T'".
        expected: &'static str,
    },
    /// The month is not 01 to 12.
    Month,
    /// The day is not in the month.
    Day {
        /// The year.
        year: u16,
        /// The month, 1 to 12.
        month: u8,
        /// The day as written.
        day: u8,
    },
    /// The hour is more than 23.
    Hour,
    /// The minute is more than 59.
    Minute,
    /// The second is more than 60.
    Second,
    /// The second is 60: a leap second.
    LeapSecond,
    /// More than nine fractional digits.
    Fraction,
    /// The offset's hour is more than 23 or its minute more than 59.
    Offset,
    /// The instant is before 1970-01-01T00:00:00Z.
    BeforeEpoch,
    /// The instant is after [`LATEST`].
    TooLate,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeError::Syntax { at, expected } => write!(
                f,
                "not an RFC 3339 date-time (like 2026-12-31T23:59:59Z): expected {expected} at byte {at}"
            ),
            TimeError::Month => f.write_str("the month is not 01 to 12"),
            TimeError::Day { year, month, day } => write!(
                f,
                "{year:04}-{month:02}-{day:02} is not a date: {} {year} has {} days",
                MONTHS
                    .get(usize::from(month).wrapping_sub(1))
                    .unwrap_or(&"?"),
                days_in_month(year, month)
            ),
            TimeError::Hour => f.write_str("the hour is not 00 to 23"),
            TimeError::Minute => f.write_str("the minute is not 00 to 59"),
            TimeError::Second => f.write_str("the second is not 00 to 59"),
            TimeError::LeapSecond => {
                f.write_str("a leap second (:60) has no Unix time; write :59 instead")
            }
            TimeError::Fraction => {
                f.write_str("more than 9 fractional digits; nanoseconds are the finest")
            }
            TimeError::Offset => f.write_str(
                "the UTC offset is not +HH:MM or -HH:MM with HH 00 to 23 and MM 00 to 59",
            ),
            TimeError::BeforeEpoch => f.write_str("before 1970-01-01T00:00:00Z"),
            TimeError::TooLate => write!(f, "after {LATEST}, the latest time laneway can hold"),
        }
    }
}

/// Reads `text` one position at a time; every miss is a [`TimeError::Syntax`].
struct Reader<'h> {
    text: &'h [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn miss(&self, expected: &'static str) -> TimeError {
        TimeError::Syntax {
            at: u32::try_from(self.at).unwrap_or(u32::MAX),
            expected,
        }
    }

    /// One byte out of `allowed`.
    fn one_of(&mut self, allowed: &[u8], expected: &'static str) -> Result<u8, TimeError> {
        match self.peek() {
            Some(b) if allowed.contains(&b) => {
                self.at += 1;
                Ok(b)
            }
            _ => Err(self.miss(expected)),
        }
    }

    /// Exactly `n` digits, as a number.
    fn digits(&mut self, n: usize) -> Result<u32, TimeError> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.at += 1;
                }
                _ => return Err(self.miss("a digit")),
            }
        }
        Ok(value)
    }
}

fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian; Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of the day `days` after 1970-01-01 (Hinnant's
/// `civil_from_days`), for `days >= 0`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 date-time to Unix time in nanoseconds.
pub fn parse(text: &[u8]) -> Result<u64, TimeError> {
    let mut r = Reader { text, at: 0 };
    let year = r.digits(4)?;
    r.one_of(b"-", "'-'")?;
    let month = r.digits(2)?;
    r.one_of(b"-", "'-'")?;
    let day = r.digits(2)?;
    r.one_of(b"Tt", "'T'")?;
    let hour = r.digits(2)?;
    r.one_of(b":", "':'")?;
    let minute = r.digits(2)?;
    r.one_of(b":", "':'")?;
    let second = r.digits(2)?;
    let mut nanos = 0u64;
    if r.peek() == Some(b'.') {
        r.at += 1;
        let mut n = 0;
        while let Some(b) = r.peek().filter(u8::is_ascii_digit) {
            if n == 9 {
                return Err(TimeError::Fraction);
            }
            nanos = nanos * 10 + u64::from(b - b'0');
            n += 1;
            r.at += 1;
        }
        if n == 0 {
            return Err(r.miss("a digit"));
        }
        nanos *= 10u64.pow(9 - n);
    }
    let offset_s: i64 = match r.one_of(b"Zz+-", "'Z' or a UTC offset (+HH:MM or -HH:MM)")? {
        sign @ (b'+' | b'-') => {
            let sign = if sign == b'-' { -1 } else { 1 };
            let h = r.digits(2)?;
            r.one_of(b":", "':'")?;
            let m = r.digits(2)?;
            if h > 23 || m > 59 {
                return Err(TimeError::Offset);
            }
            sign * i64::from(h * 3600 + m * 60)
        }
        _ => 0,
    };
    if r.peek().is_some() {
        return Err(r.miss("the end"));
    }
    // Four digits each: these fit.
    let (year, month, day) = (year as u16, month as u8, day as u8);
    if !(1..=12).contains(&month) {
        return Err(TimeError::Month);
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(TimeError::Day { year, month, day });
    }
    match (hour, minute, second) {
        (24.., _, _) => return Err(TimeError::Hour),
        (_, 60.., _) => return Err(TimeError::Minute),
        (_, _, 61..) => return Err(TimeError::Second),
        (_, _, 60) => return Err(TimeError::LeapSecond),
        _ => {}
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let seconds = days * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_s;
    let seconds = u64::try_from(seconds).map_err(|_| TimeError::BeforeEpoch)?;
    seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|ns| ns.checked_add(nanos))
        .ok_or(TimeError::TooLate)
}

/// Writes `unix_ns` as RFC 3339 in UTC: `2026-12-31T23:59:59Z`, with the
/// fraction (trailing zeros cut) only when it is not zero. For messages
/// and reports; [`parse`] reads it back to the same value.
pub fn format(unix_ns: u64, out: &mut [u8; FORMAT_LEN_MAX]) -> &str {
    let seconds = unix_ns / NANOS_PER_SECOND;
    let mut nanos = unix_ns % NANOS_PER_SECOND;
    let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY as u64);
    let time = seconds % SECONDS_PER_DAY as u64;
    let mut w = Writer { out, len: 0 };
    w.number(year, 4);
    w.byte(b'-');
    w.number(month, 2);
    w.byte(b'-');
    w.number(day, 2);
    w.byte(b'T');
    w.number(time / 3600, 2);
    w.byte(b':');
    w.number(time / 60 % 60, 2);
    w.byte(b':');
    w.number(time % 60, 2);
    if nanos != 0 {
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        w.byte(b'.');
        w.number(nanos, digits);
    }
    w.byte(b'Z');
    let len = w.len;
    core::str::from_utf8(out.get(..len).unwrap_or_default()).unwrap_or_default()
}

/// Writes ASCII into a fixed buffer; a byte past its end is dropped (the
/// callers' lengths are fixed, so it never is).
struct Writer<'a> {
    out: &'a mut [u8; FORMAT_LEN_MAX],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.out.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `value`'s last `digits` decimal digits, zero-padded.
    fn number(&mut self, value: u64, digits: u32) {
        for i in (0..digits).rev() {
            let digit = (value / 10u64.pow(i) % 10) as u8;
            self.byte(b'0' + digit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::format;
    use std::string::{String, ToString};

    use proptest::prelude::*;

    const S: u64 = NANOS_PER_SECOND;

    fn p(text: &str) -> Result<u64, TimeError> {
        parse(text.as_bytes())
    }

    fn f(ns: u64) -> String {
        format(ns, &mut [0; FORMAT_LEN_MAX]).to_string()
    }

    /// The obviously-correct day count: walk the years and months.
    fn naive_days(year: u64, month: u64, day: u64) -> u64 {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut days = 0;
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        for m in 1..month {
            days += lengths[m as usize - 1];
        }
        days + day - 1
    }

    #[test]
    fn known_instants() {
        let cases: &[(&str, u64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000000001Z", 1),
            ("2000-01-01T00:00:00Z", 946_684_800 * S),
            ("2001-09-09T01:46:40Z", 1_000_000_000 * S),
            ("2009-02-13T23:31:30Z", 1_234_567_890 * S),
            ("2026-01-01T00:00:00Z", 1_767_225_600 * S),
            ("2026-12-31T23:59:59Z", 1_798_761_599 * S),
            ("2038-01-19T03:14:07Z", 2_147_483_647 * S),
            ("2000-02-29T12:00:00Z", 951_825_600 * S),
            ("2024-02-29T00:00:00z", 1_709_164_800 * S),
            ("2026-12-31t23:59:59z", 1_798_761_599 * S),
            ("2026-12-31T23:59:59.5Z", 1_798_761_599 * S + 500_000_000),
            (
                "2026-12-31T23:59:59.123456789Z",
                1_798_761_599 * S + 123_456_789,
            ),
            ("2026-12-31T23:59:59.000Z", 1_798_761_599 * S),
            ("2027-01-01T05:29:59+05:30", 1_798_761_599 * S),
            ("2026-12-31T15:59:59-08:00", 1_798_761_599 * S),
            ("2026-12-31T23:59:59-00:00", 1_798_761_599 * S),
            ("2026-12-31T23:59:59+00:00", 1_798_761_599 * S),
            ("1970-01-01T01:00:00+01:00", 0),
            (LATEST, u64::MAX),
            ("2554-07-22T00:34:33.709551615+01:00", u64::MAX),
        ];
        for &(text, want) in cases {
            assert_eq!(p(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let syntax = |at, expected| Err(TimeError::Syntax { at, expected });
        let cases: &[(&str, Result<u64, TimeError>)] = &[
            ("", syntax(0, "a digit")),
            ("2026-12-31", syntax(10, "'T'")),
            ("2026-12-31 23:59:59Z", syntax(10, "'T'")),
            (
                "2026-12-31T23:59:59",
                syntax(19, "'Z' or a UTC offset (+HH:MM or -HH:MM)"),
            ),
            ("2026-12-31T23:59Z", syntax(16, "':'")),
            ("26-12-31T23:59:59Z", syntax(2, "a digit")),
            ("+2026-12-31T23:59:59Z", syntax(0, "a digit")),
            ("2026-12-31T23:59:59.Z", syntax(20, "a digit")),
            ("2026-12-31T23:59:59Z ", syntax(20, "the end")),
            ("2026-12-31T23:59:59+0530", syntax(22, "':'")),
            ("2026-12-31T23:59:59+05", syntax(22, "':'")),
            (
                "2026-12-31T23:59:59UTC",
                syntax(19, "'Z' or a UTC offset (+HH:MM or -HH:MM)"),
            ),
            ("2026-1-31T23:59:59Z", syntax(6, "a digit")),
            ("2026-12-31T23:59:59.1234567890Z", Err(TimeError::Fraction)),
            ("2026-13-01T00:00:00Z", Err(TimeError::Month)),
            ("2026-00-01T00:00:00Z", Err(TimeError::Month)),
            (
                "2026-02-29T00:00:00Z",
                Err(TimeError::Day {
                    year: 2026,
                    month: 2,
                    day: 29,
                }),
            ),
            (
                "1900-02-29T00:00:00Z",
                Err(TimeError::Day {
                    year: 1900,
                    month: 2,
                    day: 29,
                }),
            ),
            (
                "2026-02-30T00:00:00Z",
                Err(TimeError::Day {
                    year: 2026,
                    month: 2,
                    day: 30,
                }),
            ),
            (
                "2026-04-31T00:00:00Z",
                Err(TimeError::Day {
                    year: 2026,
                    month: 4,
                    day: 31,
                }),
            ),
            (
                "2026-04-00T00:00:00Z",
                Err(TimeError::Day {
                    year: 2026,
                    month: 4,
                    day: 0,
                }),
            ),
            ("2026-12-31T24:00:00Z", Err(TimeError::Hour)),
            ("2026-12-31T23:60:00Z", Err(TimeError::Minute)),
            ("2016-12-31T23:59:60Z", Err(TimeError::LeapSecond)),
            ("2016-12-31T23:59:61Z", Err(TimeError::Second)),
            ("2026-12-31T23:59:59+24:00", Err(TimeError::Offset)),
            ("2026-12-31T23:59:59+05:60", Err(TimeError::Offset)),
            ("1969-12-31T23:59:59Z", Err(TimeError::BeforeEpoch)),
            ("1970-01-01T00:30:00+01:00", Err(TimeError::BeforeEpoch)),
            ("0000-01-01T00:00:00Z", Err(TimeError::BeforeEpoch)),
            ("2554-07-21T23:34:34Z", Err(TimeError::TooLate)),
            ("9999-12-31T23:59:59Z", Err(TimeError::TooLate)),
            ("9999-12-31T23:59:59-23:59", Err(TimeError::TooLate)),
        ];
        for (text, want) in cases {
            assert_eq!(&p(text), want, "{text}");
        }
        assert_eq!(
            TimeError::Day {
                year: 2026,
                month: 2,
                day: 30
            }
            .to_string(),
            "2026-02-30 is not a date: February 2026 has 28 days"
        );
        assert_eq!(
            TimeError::Day {
                year: 2024,
                month: 2,
                day: 30
            }
            .to_string(),
            "2024-02-30 is not a date: February 2024 has 29 days"
        );
        assert_eq!(
            p("2026-12-31").unwrap_err().to_string(),
            "not an RFC 3339 date-time (like 2026-12-31T23:59:59Z): expected 'T' at byte 10"
        );
        assert!(TimeError::LeapSecond.to_string().contains("leap second"));
        assert_eq!(
            TimeError::TooLate.to_string(),
            "after 2554-07-21T23:34:33.709551615Z, the latest time laneway can hold"
        );
        assert!(core::mem::size_of::<TimeError>() <= 24);
    }

    #[test]
    fn format_writes_utc_without_a_zero_fraction() {
        assert_eq!(f(0), "1970-01-01T00:00:00Z");
        assert_eq!(f(946_684_800 * S), "2000-01-01T00:00:00Z");
        assert_eq!(f(1_798_761_599 * S), "2026-12-31T23:59:59Z");
        assert_eq!(f(1_798_761_599 * S + 500_000_000), "2026-12-31T23:59:59.5Z");
        assert_eq!(f(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(f(u64::MAX), LATEST);
        assert_eq!(f(u64::MAX).len(), FORMAT_LEN_MAX);
    }

    #[test]
    fn days_agree_with_the_naive_count_every_day_to_2600() {
        let mut days = 0u64;
        for year in 1970..2600u64 {
            for month in 1..=12u64 {
                for day in 1..=u64::from(days_in_month(year as u16, month as u8)) {
                    assert_eq!(
                        days_from_civil(year as i64, month as i64, day as i64),
                        days as i64
                    );
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
        assert_eq!(naive_days(2000, 1, 1), 10_957);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ns in any::<u64>()) {
            let text = f(ns);
            prop_assert_eq!(p(&text), Ok(ns), "{}", text);
        }

        #[test]
        fn parse_agrees_with_the_naive_day_count(
            year in 1970u64..=2500, month in 1u64..=12, day in 1u64..=31,
            hour in 0u64..24, minute in 0u64..60, second in 0u64..60,
            nanos in 0u64..S, digits in 0usize..=9,
            offset in -(23 * 60 + 59i64)..=(23 * 60 + 59), lower in any::<bool>(),
        ) {
            let day = day.min(u64::from(days_in_month(year as u16, month as u8)));
            let shown = if digits == 0 { 0 } else { nanos / 10u64.pow(9 - digits as u32) };
            let fraction = if digits == 0 { String::new() } else { format!(".{shown:0digits$}") };
            let zone = match (offset, lower) {
                (0, true) => "z".to_string(),
                (0, false) => "Z".to_string(),
                (o, _) => format!("{}{:02}:{:02}", if o < 0 { '-' } else { '+' }, o.abs() / 60, o.abs() % 60),
            };
            let t = if lower { 't' } else { 'T' };
            let text = format!("{year:04}-{month:02}-{day:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{zone}");
            let local = naive_days(year, month, day) as i64 * 86_400
                + (hour * 3600 + minute * 60 + second) as i64;
            let utc = local - offset * 60;
            let ns = if digits == 0 { 0 } else { shown * 10u64.pow(9 - digits as u32) };
            let want = if utc < 0 { Err(TimeError::BeforeEpoch) } else { Ok(utc as u64 * S + ns) };
            prop_assert_eq!(p(&text), want, "{}", text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_near_miss_text(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            if let Ok(ns) = p(&s) {
                // Whatever is accepted is written back as the same instant.
                prop_assert_eq!(p(&f(ns)), Ok(ns));
            }
        }
    }
}
