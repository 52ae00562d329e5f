//! Turning syslog's partial timestamps into instants.
//!
//! RFC 3164 timestamps (`Mar  7 10:01:02`) have neither a year nor a time
//! zone, and rsyslog's high-precision form may lack a zone too. A [`Clock`]
//! supplies both:
//!
//! * **Time zone.** A fixed offset, an IANA zone, or the system's local zone
//!   (the default, because that is the zone the writing daemon used). Offsets
//!   are looked up per local hour and cached, since DST changes happen on hour
//!   boundaries in every zone in use.
//! * **Year.** In *reference* mode (live tailing) the year is the one that
//!   puts the event closest before the reference time (the moment the line
//!   was read), allowing one day of clock skew into the future: a `Dec 31`
//!   line read on January 1 belongs to last year, and a `Jan 1` line read on
//!   December 31 at 23:59:59 by a slow clock belongs to next year. In *fixed*
//!   mode (`--year N`, for backfilling old files) the first line gets year N
//!   and the year advances whenever the month jumps back by more than six
//!   months, which is the December to January rollover inside one file. A
//!   line whose month jumps *forward* by more than six months is a straggler
//!   written before the rollover and gets the previous year.

use auditship_core::Timestamp;

/// Where the offset for zone-less timestamps comes from.
#[derive(Clone, Debug)]
pub enum Zone {
    /// A fixed offset in seconds east of UTC.
    Fixed(i32),
    /// A time-zone database zone (IANA name or the system zone).
    Tz(jiff::tz::TimeZone),
}

impl Zone {
    /// Parses `local`, `UTC`, `+01:00`/`-0530`, or an IANA name like `Europe/Paris`.
    pub fn parse(spec: &str) -> Result<Zone, String> {
        match spec {
            "local" | "" => Ok(Zone::Tz(jiff::tz::TimeZone::system())),
            "UTC" | "utc" | "Z" => Ok(Zone::Fixed(0)),
            s if s.starts_with(['+', '-']) => auditship_core::time::parse_offset(s.as_bytes())
                .map(Zone::Fixed)
                .ok_or_else(|| format!("invalid UTC offset {s:?}; expected +HH:MM")),
            name => jiff::tz::TimeZone::get(name)
                .map(Zone::Tz)
                .map_err(|e| format!("unknown time zone {name:?}: {e}")),
        }
    }
}

/// How the missing year is chosen.
#[derive(Clone, Copy, Debug)]
pub enum YearMode {
    /// Relative to the time each line was read.
    Reference,
    /// Starting at a given year and rolling over with the file.
    Fixed {
        /// Year of the current line.
        year: i32,
        /// Month of the previous line.
        last_month: Option<u8>,
    },
}

/// Resolves partial syslog timestamps.
#[derive(Clone, Debug)]
pub struct Clock {
    zone: Zone,
    year: YearMode,
    /// (local days since epoch, local hour) -> offset.
    cache: Option<((i64, u8), i32)>,
}

impl Clock {
    /// A clock for `zone`, choosing years by `year`.
    pub fn new(zone: Zone, year: YearMode) -> Self {
        Clock {
            zone,
            year,
            cache: None,
        }
    }

    /// A UTC clock in reference mode, for tests and defaults.
    pub fn utc() -> Self {
        Clock::new(Zone::Fixed(0), YearMode::Reference)
    }

    /// The offset in force at a local civil time.
    pub fn offset_at(&mut self, y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Option<i32> {
        match &self.zone {
            Zone::Fixed(o) => Some(*o),
            Zone::Tz(tz) => {
                let key = (auditship_core::time::days_from_civil(y, mo, d), h);
                if let Some((k, off)) = self.cache {
                    if k == key {
                        return Some(off);
                    }
                }
                let dt = jiff::civil::DateTime::new(
                    i16::try_from(y).ok()?,
                    mo as i8,
                    d as i8,
                    h as i8,
                    mi as i8,
                    s.min(59) as i8,
                    0,
                )
                .ok()?;
                let off = tz
                    .to_ambiguous_zoned(dt)
                    .compatible()
                    .ok()?
                    .offset()
                    .seconds();
                self.cache = Some((key, off));
                Some(off)
            }
        }
    }

    /// A complete local time without zone, resolved in this clock's zone.
    #[allow(clippy::too_many_arguments)]
    pub fn local(
        &mut self,
        y: i32,
        mo: u8,
        d: u8,
        h: u8,
        mi: u8,
        s: u8,
        nanos: u32,
    ) -> Option<Timestamp> {
        let off = self.offset_at(y, mo, d, h, mi, s)?;
        Timestamp::from_civil(y, mo, d, h, mi, s, nanos, off)
    }

    /// A time without year or zone, as RFC 3164 writes it.
    #[allow(clippy::too_many_arguments)]
    pub fn yearless(
        &mut self,
        mo: u8,
        d: u8,
        h: u8,
        mi: u8,
        s: u8,
        nanos: u32,
        reference: Timestamp,
    ) -> Option<Timestamp> {
        match self.year {
            YearMode::Fixed { year, last_month } => match last_month {
                // A straggler from before the rollover: last year, state unchanged.
                Some(last) if mo > last && mo - last > 6 => {
                    self.local(year - 1, mo, d, h, mi, s, nanos)
                }
                _ => {
                    let year = match last_month {
                        Some(last) if last > mo && last - mo > 6 => year + 1,
                        _ => year,
                    };
                    self.year = YearMode::Fixed {
                        year,
                        last_month: Some(mo),
                    };
                    self.local(year, mo, d, h, mi, s, nanos)
                }
            },
            YearMode::Reference => {
                let limit = reference.unix_secs() + 86_400;
                let ref_year = reference.civil().0;
                (ref_year - 1..=ref_year + 1)
                    .rev()
                    .filter_map(|y| self.local(y, mo, d, h, mi, s, nanos))
                    .find(|ts| ts.unix_secs() <= limit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u8, d: u8, h: u8) -> Timestamp {
        Timestamp::from_civil(y, mo, d, h, 0, 0, 0, 0).unwrap()
    }

    #[test]
    fn december_line_read_in_january_is_last_year() {
        let mut c = Clock::utc();
        let ts = c
            .yearless(12, 31, 23, 59, 59, 0, at(2027, 1, 1, 0))
            .unwrap();
        assert_eq!(ts.to_string(), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn january_line_read_just_before_new_year_is_next_year() {
        let mut c = Clock::utc();
        let reference = Timestamp::from_civil(2026, 12, 31, 23, 59, 50, 0, 0).unwrap();
        let ts = c.yearless(1, 1, 0, 0, 5, 0, reference).unwrap();
        assert_eq!(ts.to_string(), "2027-01-01T00:00:05Z");
    }

    #[test]
    fn ordinary_lines_get_the_reference_year() {
        let mut c = Clock::utc();
        let ts = c.yearless(3, 7, 10, 1, 2, 0, at(2026, 11, 22, 8)).unwrap();
        assert_eq!(ts.to_string(), "2026-03-07T10:01:02Z");
        // A line dated two days ahead is not from the future: last year.
        let ts = c.yearless(11, 24, 8, 0, 0, 0, at(2026, 11, 22, 8)).unwrap();
        assert_eq!(ts.to_string(), "2025-11-24T08:00:00Z");
    }

    #[test]
    fn leap_day_finds_a_leap_year() {
        let mut c = Clock::utc();
        let ts = c.yearless(2, 29, 12, 0, 0, 0, at(2025, 3, 1, 0)).unwrap();
        assert_eq!(ts.to_string(), "2024-02-29T12:00:00Z");
    }

    #[test]
    fn fixed_year_rolls_over_with_the_file() {
        let mut c = Clock::new(
            Zone::Fixed(0),
            YearMode::Fixed {
                year: 2025,
                last_month: None,
            },
        );
        let r = at(2000, 1, 1, 0);
        let a = c.yearless(12, 31, 23, 0, 0, 0, r).unwrap();
        let b = c.yearless(1, 1, 0, 30, 0, 0, r).unwrap();
        let back = c.yearless(12, 31, 23, 59, 0, 0, r).unwrap();
        assert_eq!(a.to_string(), "2025-12-31T23:00:00Z");
        assert_eq!(b.to_string(), "2026-01-01T00:30:00Z");
        // A late out-of-order December line belongs before the rollover.
        assert_eq!(back.to_string(), "2025-12-31T23:59:00Z");
        let next = c.yearless(1, 1, 0, 31, 0, 0, r).unwrap();
        assert_eq!(next.to_string(), "2026-01-01T00:31:00Z");
    }

    #[test]
    fn iana_zone_applies_daylight_saving() {
        let mut c = Clock::new(Zone::parse("Europe/Paris").unwrap(), YearMode::Reference);
        let winter = c.local(2026, 1, 15, 12, 0, 0, 0).unwrap();
        let summer = c.local(2026, 7, 15, 12, 0, 0, 0).unwrap();
        assert_eq!(winter.to_string(), "2026-01-15T12:00:00+01:00");
        assert_eq!(summer.to_string(), "2026-07-15T12:00:00+02:00");
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(matches!(Zone::parse("-05:30"), Ok(Zone::Fixed(-19_800))));
    }
}
