//! Timestamps that remember their UTC offset.
//!
//! Audit logs carry local times with an offset (`07/Dec/2016:11:05:07 +0100`,
//! `2026-03-07T10:01:02.123456+01:00`). An auditor wants to see the instant
//! *and* the wall clock the host showed, so [`Timestamp`] stores both: an
//! instant (seconds and nanoseconds since the Unix epoch, UTC) and the offset
//! east of UTC in seconds.
//!
//! The textual form is RFC 3339 and is part of the canonical encoding, so it
//! is fixed exactly:
//!
//! ```text
//! YYYY-MM-DDTHH:MM:SS[.fffffffff]OFFSET
//!   fraction: present only when nanos != 0, 1..=9 digits, trailing zeros removed
//!   OFFSET:   "Z" when the offset is zero, otherwise "+HH:MM" or "-HH:MM"
//!   years:    0000..=9999 only; anything else is rejected at construction
//! ```
//!
//! Civil-date arithmetic uses Howard Hinnant's `days_from_civil` algorithm,
//! which is exact for the proleptic Gregorian calendar. Parsing here is for
//! the fixed layouts log formats use; it is hand-written because it sits on
//! the per-line hot path.

use std::fmt;

/// An instant plus the UTC offset it was observed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
    offset: i32,
}

/// Lowest and highest Unix second we accept: years 0000 and 9999.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

impl Timestamp {
    /// Builds a timestamp from a UTC instant and an offset in seconds east of UTC.
    ///
    /// Returns `None` when the offset is beyond ±24h or not a whole number of
    /// minutes (RFC 3339 cannot express it), `nanos` is not below one second,
    /// or the local date falls outside years 0000–9999.
    pub fn new(secs: i64, nanos: u32, offset: i32) -> Option<Self> {
        if nanos >= 1_000_000_000 || offset.abs() >= 86_400 || offset % 60 != 0 {
            return None;
        }
        let local = secs.checked_add(i64::from(offset))?;
        if !(MIN_SECS..=MAX_SECS).contains(&local) {
            return None;
        }
        Some(Timestamp {
            secs,
            nanos,
            offset,
        })
    }

    /// Builds a timestamp from local civil time and its offset.
    #[allow(clippy::too_many_arguments)]
    pub fn from_civil(
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        min: u8,
        sec: u8,
        nanos: u32,
        offset: i32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        // A leap second (":60") is folded into the next second.
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(min) * 60
            + i64::from(sec);
        Self::new(local - i64::from(offset), nanos, offset)
    }

    /// The current time, in UTC.
    pub fn now_utc() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
            offset: 0,
        }
    }

    /// Seconds since the Unix epoch (UTC).
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since the Unix epoch (UTC).
    pub fn unix_millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// The offset east of UTC, in seconds.
    pub fn offset_secs(&self) -> i32 {
        self.offset
    }

    /// The same instant, expressed in UTC.
    pub fn to_utc(self) -> Self {
        Timestamp { offset: 0, ..self }
    }

    /// Local civil fields: (year, month, day, hour, minute, second).
    pub fn civil(&self) -> (i32, u8, u8, u8, u8, u8) {
        let local = self.secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (rem / 3600) as u8,
            (rem % 3600 / 60) as u8,
            (rem % 60) as u8,
        )
    }

    /// Parses the RFC 3339 profile that log producers write.
    ///
    /// Accepts `T`, `t` or a space between date and time, any number of
    /// fraction digits (extra digits beyond nanoseconds are truncated), and
    /// `Z`, `z`, `+HH:MM`, `+HHMM` or `+HH` offsets. Without an offset,
    /// `default_offset` is used and the second element of the result is false.
    pub fn parse_rfc3339(s: &str, default_offset: i32) -> Option<(Self, bool)> {
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let year = digits(&b[0..4])? as i32;
        let month = digits(&b[5..7])? as u8;
        let day = digits(&b[8..10])? as u8;
        let hour = digits(&b[11..13])? as u8;
        let min = digits(&b[14..16])? as u8;
        let sec = digits(&b[17..19])? as u8;
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return None;
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
        let (offset, explicit) = if i == b.len() {
            (default_offset, false)
        } else {
            (parse_offset(&b[i..])?, true)
        };
        let ts = Self::from_civil(year, month, day, hour, min, sec, nanos, offset)?;
        Some((ts, explicit))
    }
}

/// Parses `Z`, `+HH:MM`, `+HHMM` or `+HH` into seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i32> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let v = (h * 3600 + m * 60) as i32;
            Some(if *sign == b'-' { -v } else { v })
        }
        _ => None,
    }
}

/// Parses a run of ASCII digits; `None` if any byte is not a digit.
pub fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

/// Month number (1–12) from an English three-letter abbreviation.
pub fn month_from_abbr(b: &[u8]) -> Option<u8> {
    let m = match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(m)
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` of `year`.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 35];
        let n = self.write_rfc3339(&mut buf);
        // The buffer holds ASCII only.
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl Timestamp {
    /// Writes the canonical RFC 3339 form into `buf`, returning its length.
    pub fn write_rfc3339(&self, buf: &mut [u8; 35]) -> usize {
        fn two(buf: &mut [u8], at: usize, v: u8) {
            buf[at] = b'0' + v / 10;
            buf[at + 1] = b'0' + v % 10;
        }
        let (y, mo, d, h, mi, s) = self.civil();
        let y = y as u32;
        buf[0] = b'0' + (y / 1000 % 10) as u8;
        buf[1] = b'0' + (y / 100 % 10) as u8;
        buf[2] = b'0' + (y / 10 % 10) as u8;
        buf[3] = b'0' + (y % 10) as u8;
        buf[4] = b'-';
        two(buf, 5, mo);
        buf[7] = b'-';
        two(buf, 8, d);
        buf[10] = b'T';
        two(buf, 11, h);
        buf[13] = b':';
        two(buf, 14, mi);
        buf[16] = b':';
        two(buf, 17, s);
        let mut n = 19;
        if self.nanos != 0 {
            buf[n] = b'.';
            n += 1;
            let mut frac = self.nanos;
            let mut digits = 9;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            for i in (0..digits).rev() {
                buf[n + i] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            n += digits;
        }
        if self.offset == 0 {
            buf[n] = b'Z';
            n += 1;
        } else {
            buf[n] = if self.offset < 0 { b'-' } else { b'+' };
            let a = self.offset.unsigned_abs();
            two(buf, n + 1, (a / 3600) as u8);
            buf[n + 3] = b':';
            two(buf, n + 4, (a % 3600 / 60) as u8);
            n += 6;
        }
        n
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match Timestamp::parse_rfc3339(&s, 0) {
            Some((ts, true)) => Ok(ts),
            _ => Err(serde::de::Error::custom(format!(
                "invalid RFC 3339 timestamp with offset: {s:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_across_eras() {
        for days in [-719_468i64, -1, 0, 1, 10_957, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_358), (2023, 1, 1));
    }

    #[test]
    fn formats_offsets_and_fractions_canonically() {
        let ts = Timestamp::from_civil(2026, 3, 7, 10, 1, 2, 123_456_000, 3600).unwrap();
        assert_eq!(ts.to_string(), "2026-03-07T10:01:02.123456+01:00");
        assert_eq!(ts.unix_secs(), 1_772_874_062);
        let utc = Timestamp::from_civil(2016, 12, 7, 10, 5, 7, 0, 0).unwrap();
        assert_eq!(utc.to_string(), "2016-12-07T10:05:07Z");
        let neg = Timestamp::from_civil(2019, 6, 14, 13, 1, 15, 412_000_000, -(3600 + 1800));
        assert_eq!(neg.unwrap().to_string(), "2019-06-14T13:01:15.412-01:30");
    }

    #[test]
    fn parses_rfc3339_variants() {
        let (ts, explicit) = Timestamp::parse_rfc3339("2019-06-14T13:01:15.412+01:30", 0).unwrap();
        assert!(explicit);
        assert_eq!(ts.to_utc().to_string(), "2019-06-14T11:31:15.412Z");
        let (ts, explicit) = Timestamp::parse_rfc3339("2019-06-14T10:40:20.912134", 0).unwrap();
        assert!(!explicit);
        assert_eq!(ts.to_string(), "2019-06-14T10:40:20.912134Z");
        let (ts, _) = Timestamp::parse_rfc3339("2026-01-01 00:00:00.1234567891-0500", 0).unwrap();
        assert_eq!(ts.to_string(), "2026-01-01T00:00:00.123456789-05:00");
        assert!(Timestamp::parse_rfc3339("2026-02-30T00:00:00Z", 0).is_none());
        assert!(Timestamp::parse_rfc3339("2026-01-01T00:00:00+25:00", 0).is_none());
        assert!(Timestamp::parse_rfc3339("2026-01-01T00:00:00.Z", 0).is_none());
        // Regression: an offset of -1 s printed as "-00:00" and parsed back as
        // a different instant; offsets must be whole minutes.
        assert!(Timestamp::new(0, 0, -1).is_none());
    }

    #[test]
    fn serde_round_trip_keeps_offset() {
        let ts = Timestamp::from_civil(2024, 2, 29, 23, 59, 59, 1, -28_800).unwrap();
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, "\"2024-02-29T23:59:59.000000001-08:00\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ts);
        assert!(serde_json::from_str::<Timestamp>("\"2024-02-29T23:59:59\"").is_err());
    }
}
