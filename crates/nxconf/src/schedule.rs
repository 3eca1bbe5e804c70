//! `<Schedule>` timing: `When` (5-field crontab or an `@` alias), `Every`
//! (an interval) and `First` (when an `Every` schedule starts). Parsed and
//! validated at load time so the runtime only asks "when next?".

use crate::diag::Invalid;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use std::time::Duration as StdDuration;

/// A `When` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// `@startup`: run once when the module starts.
    Startup,
    Cron(CronSpec),
}

/// A parsed 5-field crontab entry (minute hour day-of-month month day-of-week).
/// Each field is a bit set of allowed values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Standard cron rule: when both day fields are restricted, a day matches
    /// if either matches.
    dom_restricted: bool,
    dow_restricted: bool,
    text: String,
}

impl When {
    /// Parse `@daily`, `@startup`, `*/5 * * * *`, ...
    pub fn parse(s: &str) -> Result<When, Invalid> {
        Self::parse_text(s).map_err(Invalid)
    }

    fn parse_text(s: &str) -> Result<When, String> {
        let s = s.trim();
        let spec = match s.to_ascii_lowercase().as_str() {
            "@startup" => return Ok(When::Startup),
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown schedule alias '{s}' (supported: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @startup)"
                ))
            }
            _ => s,
        };
        CronSpec::parse_text(spec).map(|mut c| {
            c.text = s.to_string();
            When::Cron(c)
        })
    }

    /// The first run strictly after `after` (local wall-clock time);
    /// `None` for `@startup`.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            When::Startup => None,
            When::Cron(c) => c.next_after(after),
        }
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_field(
    field: &str,
    what: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    names_base: u32,
) -> Result<(u64, bool), String> {
    let num = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(i as u32 + names_base);
        }
        t.parse::<u32>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| format!("invalid {what} '{t}' in schedule (expected {lo}-{hi})"))
    };
    let mut bits = 0u64;
    let restricted = field != "*";
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let st = s
                    .parse::<u32>()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("invalid step '{s}' in schedule {what} field"))?;
                (r, st)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let v = num(range)?;
            (v, if step > 1 { hi } else { v })
        };
        if a > b {
            return Err(format!("invalid {what} range '{range}' in schedule"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, restricted))
}

impl CronSpec {
    pub fn parse(s: &str) -> Result<CronSpec, Invalid> {
        Self::parse_text(s).map_err(Invalid)
    }

    fn parse_text(s: &str) -> Result<CronSpec, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "invalid schedule '{s}': expected 5 crontab fields (minute hour day-of-month month day-of-week) or @yearly, @monthly, @weekly, @daily, @hourly, @startup"
            ));
        }
        let (minutes, _) = parse_field(f[0], "minute", 0, 59, &[], 0)?;
        let (hours, _) = parse_field(f[1], "hour", 0, 23, &[], 0)?;
        let (days, dom_r) = parse_field(f[2], "day of month", 1, 31, &[], 0)?;
        let (months, _) = parse_field(f[3], "month", 1, 12, &MONTHS, 1)?;
        let (mut wd, dow_r) = parse_field(f[4], "day of week", 0, 7, &DAYS, 0)?;
        if wd & (1 << 7) != 0 {
            wd |= 1; // 7 is Sunday too
        }
        let spec = CronSpec {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (wd & 0x7f) as u8,
            dom_restricted: dom_r,
            dow_restricted: dow_r,
            text: s.to_string(),
        };
        // A spec that can never fire (e.g. 30 February) is a config error.
        let probe = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date");
        if spec.next_after(probe).is_none() {
            return Err(format!("schedule '{s}' never fires"));
        }
        Ok(spec)
    }

    /// The text as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first matching minute strictly after `after`. Bounded: searches
    /// at most nine years ahead (enough for any 29 February).
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = start.date() + Duration::days(366 * 9);
        let mut date = start.date();
        let mut first_day = true;
        while date <= limit {
            if self.months & (1 << date.month()) == 0 {
                // jump to the first day of the next month
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                first_day = false;
                continue;
            }
            if self.day_matches(date) {
                let (h0, m0) = if first_day {
                    (start.hour(), start.minute())
                } else {
                    (0, 0)
                };
                for h in h0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let mstart = if h == h0 { m0 } else { 0 };
                    for m in mstart..60 {
                        if self.minutes & (1 << m) != 0 {
                            return date.and_hms_opt(h, m, 0);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
            first_day = false;
        }
        None
    }
}

/// Parse an `Every` value: `10 sec`, `1 min`, `2 hours`, `1 day`, `1 week`
/// (singular, plural and short forms).
pub fn parse_every(s: &str) -> Result<StdDuration, Invalid> {
    parse_every_text(s).map_err(Invalid)
}

fn parse_every_text(s: &str) -> Result<StdDuration, String> {
    let s = s.trim();
    let err = || {
        format!("invalid Every '{s}' (expected a number and a unit: sec, min, hour, day or week, e.g. 'Every 10 sec')")
    };
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" | "hr" | "hrs" => 3600,
        "d" | "day" | "days" => 86400,
        "w" | "week" | "weeks" => 604_800,
        _ => return Err(err()),
    };
    if n == 0 {
        return Err(format!(
            "invalid Every '{s}': the interval must be greater than zero"
        ));
    }
    n.checked_mul(mult)
        .map(StdDuration::from_secs)
        .ok_or_else(err)
}

/// Parse a `First` value: a local datetime `YYYY-MM-DD hh:mm:ss`.
pub fn parse_first(s: &str) -> Result<NaiveDateTime, Invalid> {
    parse_first_text(s).map_err(Invalid)
}

fn parse_first_text(s: &str) -> Result<NaiveDateTime, String> {
    crate::value::parse_naive(s.trim()).ok_or_else(|| {
        format!(
            "invalid First '{}' (expected a datetime like 2024-01-31 00:00:00)",
            s.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn aliases_and_next() {
        let cases = [
            ("@daily", "2024-03-10 13:45:10", "2024-03-11 00:00:00"),
            ("@midnight", "2024-12-31 23:59:59", "2025-01-01 00:00:00"),
            ("@hourly", "2024-03-10 13:45:10", "2024-03-10 14:00:00"),
            ("@weekly", "2024-03-10 00:00:00", "2024-03-17 00:00:00"), // Sunday -> next Sunday
            ("@monthly", "2024-01-31 12:00:00", "2024-02-01 00:00:00"),
            ("@yearly", "2024-01-01 00:00:00", "2025-01-01 00:00:00"),
            ("*/15 * * * *", "2024-03-10 13:45:10", "2024-03-10 14:00:00"),
            ("5 4 * * sun", "2024-03-10 04:05:00", "2024-03-17 04:05:00"),
            ("0 0 29 2 *", "2024-03-01 00:00:00", "2028-02-29 00:00:00"),
            ("0 12 1 * 1", "2024-03-02 00:00:00", "2024-03-04 12:00:00"), // dom OR dow
            (
                "30 8-10/2 * jan-mar *",
                "2024-03-31 09:00:00",
                "2024-03-31 10:30:00",
            ),
            ("0 0 * * 7", "2024-03-10 00:00:00", "2024-03-17 00:00:00"),
        ];
        for (spec, after, want) in cases {
            let w = When::parse(spec).unwrap();
            assert_eq!(w.next_after(t(after)), Some(t(want)), "{spec}");
        }
        assert_eq!(When::parse("@startup").unwrap(), When::Startup);
    }

    #[test]
    fn bad_specs() {
        assert!(When::parse("@often")
            .unwrap_err()
            .message()
            .contains("supported: @yearly"));
        assert!(When::parse("* * *")
            .unwrap_err()
            .message()
            .contains("expected 5 crontab fields"));
        assert!(When::parse("60 * * * *")
            .unwrap_err()
            .message()
            .contains("invalid minute '60'"));
        assert!(When::parse("0 0 30 2 *")
            .unwrap_err()
            .message()
            .contains("never fires"));
        assert!(When::parse("*/0 * * * *").is_err());
        assert!(When::parse("5-1 * * * *").is_err());
    }

    #[test]
    fn every_and_first() {
        assert_eq!(parse_every("10 sec").unwrap(), StdDuration::from_secs(10));
        assert_eq!(parse_every("1 min").unwrap(), StdDuration::from_secs(60));
        assert_eq!(
            parse_every("2 hours").unwrap(),
            StdDuration::from_secs(7200)
        );
        assert_eq!(
            parse_every("3 Days").unwrap(),
            StdDuration::from_secs(3 * 86400)
        );
        assert_eq!(
            parse_every("1 week").unwrap(),
            StdDuration::from_secs(604_800)
        );
        assert_eq!(parse_every("30").unwrap_err(), "invalid Every '30' (expected a number and a unit: sec, min, hour, day or week, e.g. 'Every 10 sec')");
        assert!(parse_every("0 sec").is_err());
        assert!(parse_every("1 fortnight").is_err());
        assert_eq!(
            parse_first("2010-12-17 00:19:06").unwrap(),
            t("2010-12-17 00:19:06")
        );
        assert!(parse_first("tomorrow").is_err());
    }
}
