//! A progress line for long CLI operations (`verify`, `export`,
//! `deadletter replay`): done/total, rate and ETA, redrawn at most ten
//! times a second on stderr, and only when stderr is a terminal: in a
//! pipe, a log or CI it prints nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// One operation's progress line.
pub struct Progress {
    what: &'static str,
    unit: Unit,
    total: Option<u64>,
    tty: bool,
    start: Instant,
    drawn: Option<Instant>,
}

/// What is counted.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Bytes, shown in MB.
    Bytes,
    /// Things with a name ("records", "batches").
    Items(&'static str),
}

impl Progress {
    /// Starts a line for `what`; `total` when known.
    pub fn new(what: &'static str, unit: Unit, total: Option<u64>) -> Self {
        Progress {
            what,
            unit,
            total,
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            drawn: None,
        }
    }

    /// Sets the total once it is known.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Reports `done` so far; `extra` is appended (e.g. a record count).
    pub fn update(&mut self, done: u64, extra: &str) {
        if !self.tty
            || self
                .drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = self.line(done, extra);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Ends the line (on a terminal).
    pub fn finish(&mut self) {
        if self.tty && self.drawn.is_some() {
            eprintln!();
        }
    }

    fn line(&self, done: u64, extra: &str) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let amount = |n: u64| match self.unit {
            Unit::Bytes => format!("{:.1} MB", n as f64 / 1e6),
            Unit::Items(name) => format!("{n} {name}"),
        };
        let speed = match self.unit {
            Unit::Bytes => format!("{:.1} MB/s", rate / 1e6),
            Unit::Items(name) => format!("{rate:.0} {name}/s"),
        };
        let mut s = format!("{}: {}", self.what, amount(done));
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
            s.push_str(&format!(
                " of {} ({:.1}%)  {speed}  ETA {}",
                amount(total),
                100.0 * done as f64 / total as f64,
                clock(eta)
            ));
        } else {
            s.push_str(&format!("  {speed}"));
        }
        if !extra.is_empty() {
            s.push_str("  ");
            s.push_str(extra);
        }
        s
    }
}

/// Seconds as `42s`, `3m05s` or `1h02m`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_share_rate_and_eta() {
        let mut p = Progress::new("verify", Unit::Bytes, Some(4_000_000));
        p.start = Instant::now() - Duration::from_secs(2);
        let line = p.line(1_000_000, "12 records");
        assert!(
            line.starts_with("verify: 1.0 MB of 4.0 MB (25.0%)  0.5 MB/s  ETA 6s"),
            "{line}"
        );
        assert!(line.ends_with("12 records"));
        let mut q = Progress::new("replay", Unit::Items("batches"), None);
        q.start = Instant::now() - Duration::from_secs(4);
        assert_eq!(q.line(8, ""), "replay: 8 batches  2 batches/s");
        assert_eq!(clock(3725.0), "1h02m");
        assert_eq!(clock(185.0), "3m05s");
    }
}
