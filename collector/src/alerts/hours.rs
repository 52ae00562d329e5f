//! Time of day: the allowed hours and days of a `time_of_day` rule, in a
//! fixed UTC offset, and their parsing.
//!
//! Hours are `"HH:MM-HH:MM"`, start included and end excluded; a span whose
//! end is before its start wraps midnight and belongs to the day it starts
//! on (`"22:00-06:00"` on `fri` allows Saturday 05:59). A fixed offset, not
//! a time zone: daylight saving time moves the hours by one twice a year,
//! which an alert on working hours tolerates; an IANA zone would be the
//! refinement.

/// Allowed hours in a fixed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hours {
    /// Start, minutes after midnight (included).
    pub start: u16,
    /// End, minutes after midnight (excluded; 1440 is midnight).
    pub end: u16,
    /// Allowed weekdays, Monday first.
    pub days: [bool; 7],
    /// Offset east of UTC, seconds.
    pub offset: i32,
}

impl Hours {
    /// Whether the instant `unix_secs` falls within the allowed hours and days.
    pub fn allows(&self, unix_secs: i64) -> bool {
        let local = unix_secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        // 1970-01-01 was a Thursday (index 3, Monday first).
        let weekday = |d: i64| (d + 3).rem_euclid(7) as usize;
        if self.start < self.end {
            self.days[weekday(days)] && (self.start..self.end).contains(&minute)
        } else if minute >= self.start {
            // The evening part of a span across midnight belongs to its day.
            self.days[weekday(days)]
        } else {
            // The morning part belongs to the day the span started.
            minute < self.end && self.days[weekday(days - 1)]
        }
    }
}

/// `"HH:MM-HH:MM"` into minutes (start, end).
pub fn parse_hours(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} is not a span of hours such as \"08:00-18:00\"");
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let hm = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (start, end) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
    if start == end || start == 1440 {
        return Err(format!(
            "{s:?} allows no time (or every time): start and end must differ"
        ));
    }
    Ok((start, end))
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Day names and ranges (`"mon-fri"`) into allowed weekdays, Monday first.
pub fn parse_days(list: &[String]) -> Result<[bool; 7], String> {
    let day = |d: &str| {
        DAYS.iter()
            .position(|n| n.eq_ignore_ascii_case(d.trim()))
            .ok_or_else(|| format!("{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let mut out = [false; 7];
    for item in list {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut i = a;
                loop {
                    out[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => out[day(item)?] = true,
        }
    }
    if !out.contains(&true) {
        return Err("give at least one day".into());
    }
    Ok(out)
}
