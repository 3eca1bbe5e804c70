//! xm_syslog's formatters: `to_syslog_bsd()` (RFC 3164), `to_syslog_ietf()`
//! (RFC 5424) and `to_syslog_snare()`, each rewriting `$raw_event` byte for
//! byte as NXLog CE 2.10 does (src/modules/extension/syslog/syslog.c,
//! common/date.c). Collectors and vendor configurations match on this exact
//! text (e.g. they rewrite `NXLOG@14506`), so each quirk below is CE's.
//!
//! The functions take the time zone, host name, clock and event count from
//! a [`SyslogEnv`], so tests are deterministic; Exec passes the host's.

use crate::record::Record;
use crate::value::{DateFormat, Value, Zone};
use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use std::fmt::Write;

/// The settings of an xm_syslog instance (its directives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    /// `SnareDelimiter`: between Snare fields. Default TAB.
    pub snare_delimiter: char,
    /// `SnareReplacement`: stands for the delimiter inside `$Message`.
    /// Default space.
    pub snare_replacement: char,
    /// `IETFTimestampInGMT` / `UTCTimestamp`: to_syslog_ietf() writes UTC
    /// (`...Z`) instead of local time with an offset. Default FALSE.
    pub utc_timestamp: bool,
    /// `ReplaceLineBreaks`: what CR and LF in the message become; `None`
    /// (written `\n`) keeps them. Default space, which is CE's behaviour.
    pub line_break: Option<char>,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            snare_delimiter: '\t',
            snare_replacement: ' ',
            utc_timestamp: false,
            line_break: Some(' '),
        }
    }
}

/// What the formatters need from the host.
#[derive(Clone, Debug)]
pub struct SyslogEnv<'a> {
    /// The zone of "local time" (`Zone::Local` in regmon).
    pub zone: Zone,
    /// The agent's host name, for an event without a string `$Hostname`.
    pub hostname: &'a str,
    /// The time for an event without a datetime `$EventTime`.
    pub now: DateTime<Utc>,
    /// Snare's event counter: the number of events the calling module has
    /// received, this one included (NXLog's `module->evt_recvd`).
    pub event_count: u64,
}

/// NXLog's log levels (`$SeverityValue`): 1 DEBUG ... 5 CRITICAL.
const LOGLEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// Facility names as CE spells them (`UCP` and `FACALERT` included) with
/// their numbers; an unknown name and KERN (whose number, 0, CE also uses
/// for "not found") both give user.
const FACILITIES: [(&str, i64); 24] = [
    ("KERN", 0),
    ("USER", 1),
    ("MAIL", 2),
    ("DAEMON", 3),
    ("AUTH", 4),
    ("SYSLOG", 5),
    ("LPR", 6),
    ("NEWS", 7),
    ("UCP", 8),
    ("CRON", 9),
    ("AUTHPRIV", 10),
    ("FTP", 11),
    ("NTP", 12),
    ("AUDIT", 13),
    ("FACALERT", 14),
    ("CRON2", 15),
    ("LOCAL0", 16),
    ("LOCAL1", 17),
    ("LOCAL2", 18),
    ("LOCAL3", 19),
    ("LOCAL4", 20),
    ("LOCAL5", 21),
    ("LOCAL6", 22),
    ("LOCAL7", 23),
];

/// Severity names; unknown names and the emergency ones (number 0, CE's
/// "not found") give notice. `NONE` is CE's 8 ("no priority").
const SEVERITIES: [(&str, i64); 14] = [
    ("EMERG", 0),
    ("EMERGENT", 0),
    ("PANIC", 0),
    ("ALERT", 1),
    ("CRIT", 2),
    ("CRITICAL", 2),
    ("ERR", 3),
    ("ERROR", 3),
    ("WARNING", 4),
    ("WARN", 4),
    ("NOTICE", 5),
    ("INFO", 6),
    ("DEBUG", 7),
    ("NONE", 8),
];

const USER: i64 = 1;
const NOTICE: i64 = 5;

fn lookup(table: &[(&str, i64)], name: &str) -> i64 {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(0, |(_, v)| *v)
}

/// The syslog PRI of an event (CE `nx_syslog_get_priority`):
/// facility from `$SyslogFacilityValue`, else `$SyslogFacility`, else user;
/// severity from `$SyslogSeverityValue`, else `$SyslogSeverity`, else the
/// NXLog level in `$SeverityValue` (or `$Severity`) mapped DEBUG 7, INFO 6,
/// WARNING 4, ERROR 3, CRITICAL 2, anything else 5; else notice. The first
/// of each chain that exists decides, even when its type is wrong (then
/// the default stays). An im_regmon event (SeverityValue 3) gives 12.
pub fn priority(rec: &Record) -> i64 {
    let mut fac = USER;
    if let Some(v) = rec.get("SyslogFacilityValue") {
        if let Value::Integer(i) = v {
            fac = *i;
        }
    } else if let Some(Value::String(s)) = rec.get("SyslogFacility") {
        fac = match lookup(&FACILITIES, s) {
            0 => USER,
            n => n,
        };
    }
    let mut sev = NOTICE;
    if let Some(v) = rec.get("SyslogSeverityValue") {
        if let Value::Integer(i) = v {
            sev = *i;
        }
    } else if let Some(v) = rec.get("SyslogSeverity") {
        if let Value::String(s) = v {
            sev = match lookup(&SEVERITIES, s) {
                0 => NOTICE,
                n => n,
            };
        }
    } else if let Some(v) = rec.get("SeverityValue").or_else(|| rec.get("Severity")) {
        let level = match v {
            Value::Integer(i) => *i,
            Value::String(s) => LOGLEVELS
                .iter()
                .position(|l| l.eq_ignore_ascii_case(s))
                .map_or(2, |p| p as i64 + 1),
            _ => 2,
        };
        sev = match level {
            1 => 7,
            2 => 6,
            3 => 4,
            4 => 3,
            5 => 2,
            _ => NOTICE,
        };
    }
    // C: `((int) fac << 3) + (int) sev`
    i64::from((fac as i32).wrapping_shl(3).wrapping_add(sev as i32))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The event's time: a datetime `$EventTime`, else now.
fn event_time(rec: &Record, env: &SyslogEnv<'_>) -> DateTime<Utc> {
    match rec.get("EventTime") {
        Some(Value::DateTime(d)) => *d,
        _ => env.now,
    }
}

/// `Mmm dd hh:mm:ss`, local, the day padded with a space (`Jan  5`).
fn rfc3164_date(out: &mut String, t: &DateTime<FixedOffset>) {
    let _ = write!(
        out,
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[t.month0() as usize % 12],
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

/// `Www Mmm DD hh:mm:ss YYYY`, local, the day padded with a zero.
fn snare_date(out: &mut String, t: &DateTime<FixedOffset>) {
    let _ = write!(
        out,
        "{} {} {:02} {:02}:{:02}:{:02} {:04}",
        WDAYS[t.weekday().num_days_from_sunday() as usize % 7],
        MONTHS[t.month0() as usize % 12],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    );
}

/// `YYYY-MM-DDThh:mm:ss.uuuuuu` and then `Z` (UTC) or the offset `+hh:mm`.
fn rfc5424_date(out: &mut String, d: &DateTime<Utc>, utc: bool, zone: Zone) {
    let t = if utc { Zone::utc() } else { zone }.to_zone(d);
    // A leap second's nanoseconds run past 1e9; CE's microseconds cannot.
    let micros = (t.nanosecond() / 1000).min(999_999);
    let _ = write!(
        out,
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if utc {
        out.push('Z');
    } else {
        let off = t.offset().local_minus_utc();
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
    }
}

/// A string field's text, if the field is a string.
fn string<'r>(rec: &'r Record, name: &str) -> Option<&'r str> {
    match rec.get(name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// `$Hostname` when it is a string, else the agent's host name.
fn hostname<'r>(rec: &'r Record, env: &'r SyslogEnv<'_>) -> &'r str {
    string(rec, "Hostname").unwrap_or(env.hostname)
}

/// `$Message` when it is a string, else the current `$raw_event` (empty
/// when there is none).
fn message(rec: &Record) -> String {
    match (rec.get("Message"), rec.get("raw_event")) {
        (Some(Value::String(m)), _) => m.clone(),
        (_, Some(Value::String(r))) => r.clone(),
        (_, Some(v)) => v.to_display_string().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Append `text` with spaces and tabs as `_` (APP-NAME, the BSD tag).
fn push_underscored(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| match c {
        ' ' | '\t' => '_',
        c => c,
    }));
}

/// Replace CR and LF in `s[from..]` as ReplaceLineBreaks says.
fn replace_line_breaks(s: &mut String, from: usize, opts: &SyslogOptions) {
    let Some(with) = opts.line_break else { return };
    let tail = &s[from..];
    if !tail.contains(['\r', '\n']) {
        return;
    }
    let fixed: String = tail
        .chars()
        .map(|c| if c == '\r' || c == '\n' { with } else { c })
        .collect();
    s.truncate(from);
    s.push_str(&fixed);
}

/// ` MESSAGE` with its line breaks replaced, then set as `$raw_event`.
fn finish_with_message(rec: &mut Record, mut out: String, msg: &str, opts: &SyslogOptions) {
    let from = out.len();
    out.push(' ');
    out.push_str(msg);
    replace_line_breaks(&mut out, from, opts);
    rec.set("raw_event", out);
}

/// to_syslog_bsd(): `<PRI>Mmm dd hh:mm:ss HOSTNAME[ TAG[PID]:] MESSAGE`.
///
/// The tag is `$SourceName` (non-empty string; spaces and tabs become `_`),
/// then `[$ProcessID]` when that is an integer or a string, then `:`;
/// without a SourceName there is neither tag nor colon. MESSAGE is
/// `$Message`, else the old `$raw_event`, its CR and LF made spaces.
pub fn to_syslog_bsd(rec: &mut Record, env: &SyslogEnv<'_>, opts: &SyslogOptions) {
    let msg = message(rec);
    let mut out = format!("<{}>", priority(rec));
    rfc3164_date(&mut out, &env.zone.to_zone(&event_time(rec, env)));
    out.push(' ');
    out.push_str(hostname(rec, env));
    if let Some(app) = string(rec, "SourceName").filter(|s| !s.is_empty()) {
        out.push(' ');
        push_underscored(&mut out, app);
        match rec.get("ProcessID") {
            Some(Value::Integer(p)) => {
                let _ = write!(out, "[{p}]");
            }
            Some(Value::String(p)) => {
                let _ = write!(out, "[{p}]");
            }
            _ => {}
        }
        out.push(':');
    }
    finish_with_message(rec, out, &msg, opts);
}

/// Fields the structured data leaves out (CE's ignore list; any case).
const SD_IGNORED: [&str; 13] = [
    "raw_event",
    "EventTime",
    "Hostname",
    "SourceName",
    "Message",
    "MessageID",
    "ProcessID",
    "Severity",
    "SeverityValue",
    "SyslogSeverity",
    "SyslogSeverityValue",
    "SyslogFacility",
    "SyslogFacilityValue",
];

/// `[NXLOG@14506 name="value" ...]` over every other field in field order,
/// or `-` when there is none. In names ` `, `]` and `"` become `_`; string
/// values escape `\`, `"` and `]` with a backslash; other values take their
/// string form, datetimes as local `YYYY-MM-DD hh:mm:ss`.
fn structured_data(out: &mut String, rec: &Record, zone: Zone) {
    let start = out.len();
    out.push_str("[NXLOG@14506 ");
    let mut count = 0;
    for (name, value) in rec.iter() {
        if SD_IGNORED.iter().any(|i| i.eq_ignore_ascii_case(name)) {
            continue;
        }
        let text = match value {
            Value::String(_) => None,
            v => match v.to_string_with(&DateFormat::default(), zone) {
                Some(t) => Some(t),
                None => continue,
            },
        };
        if count > 0 {
            out.push(' ');
        }
        count += 1;
        out.extend(name.chars().map(|c| match c {
            ' ' | ']' | '"' => '_',
            c => c,
        }));
        out.push_str("=\"");
        match (value, text) {
            (Value::String(s), _) => {
                for c in s.chars() {
                    if matches!(c, '\\' | '"' | ']') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            (_, Some(t)) => out.push_str(&t),
            _ => {}
        }
        out.push('"');
    }
    if count == 0 {
        out.truncate(start);
        out.push('-');
    } else {
        out.push(']');
    }
}

/// to_syslog_ietf(): `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MESSAGE`.
///
/// TIMESTAMP has six fractional digits and the local offset (`Z` with
/// `IETFTimestampInGMT`); APP-NAME is `$SourceName` (spaces and tabs as
/// `_`), PROCID `$ProcessID`, MSGID `$MessageID`, each `-` when missing;
/// SD is [`structured_data`]; MESSAGE as in [`to_syslog_bsd`].
pub fn to_syslog_ietf(rec: &mut Record, env: &SyslogEnv<'_>, opts: &SyslogOptions) {
    let msg = message(rec);
    let mut out = format!("<{}>1 ", priority(rec));
    rfc5424_date(
        &mut out,
        &event_time(rec, env),
        opts.utc_timestamp,
        env.zone,
    );
    out.push(' ');
    out.push_str(hostname(rec, env));
    out.push(' ');
    match string(rec, "SourceName").filter(|s| !s.is_empty()) {
        Some(app) => push_underscored(&mut out, app),
        None => out.push('-'),
    }
    out.push(' ');
    match rec.get("ProcessID") {
        Some(Value::Integer(p)) => {
            let _ = write!(out, "{p}");
        }
        Some(Value::String(p)) if !p.is_empty() => out.push_str(p),
        _ => out.push('-'),
    }
    out.push(' ');
    out.push_str(string(rec, "MessageID").unwrap_or("-"));
    out.push(' ');
    structured_data(&mut out, rec, env.zone);
    finish_with_message(rec, out, &msg, opts);
}

/// Snare's EventLogType for `$EventType` (exact case); others verbatim.
fn snare_event_type(t: &str) -> &str {
    match t {
        "AUDIT_SUCCESS" => "Success Audit",
        "AUDIT_FAILURE" => "Failure Audit",
        "INFO" => "Information",
        "CRITICAL" => "Critical",
        "ERROR" => "Error",
        "WARNING" => "Warning",
        "VERBOSE" => "Verbose",
        other => other,
    }
}

/// to_syslog_snare(): `<PRI>Mmm dd hh:mm:ss HOSTNAME MSWinEventLog` then,
/// each after the delimiter D: CRITICALITY (`$SeverityValue - 1`, else 1),
/// CHANNEL (`$Channel`, else `$FileName`), COUNTER (the module's event
/// count), `Www Mmm DD hh:mm:ss YYYY`, `$EventID`, `$SourceName`,
/// `$AccountName`, `$AccountType`, EVENTTYPE (mapped), `$Hostname`,
/// `$Category`, an empty field, MESSAGE (`$Message` with D replaced by
/// SnareReplacement) and `$RecordNumber`; each missing one is `N/A`. CR and
/// LF anywhere become spaces.
pub fn to_syslog_snare(rec: &mut Record, env: &SyslogEnv<'_>, opts: &SyslogOptions) {
    let d = opts.snare_delimiter;
    let t = env.zone.to_zone(&event_time(rec, env));
    let mut out = format!("<{}>", priority(rec));
    rfc3164_date(&mut out, &t);
    out.push(' ');
    out.push_str(hostname(rec, env));
    out.push(' ');
    out.push_str("MSWinEventLog");
    out.push(d);
    match rec.get("SeverityValue") {
        // C: `(int) integer - 1`
        Some(Value::Integer(s)) => {
            let _ = write!(out, "{}", (*s as i32).wrapping_sub(1));
        }
        _ => out.push('1'),
    }
    out.push(d);
    let na = |s: Option<&str>| s.unwrap_or("N/A").to_string();
    out.push_str(&na(
        string(rec, "Channel").or_else(|| string(rec, "FileName"))
    ));
    out.push(d);
    let _ = write!(out, "{}", env.event_count);
    out.push(d);
    snare_date(&mut out, &t);
    out.push(d);
    // C prints these as `(int)`.
    let int = |name: &str| match rec.get(name) {
        Some(Value::Integer(i)) => (*i as i32).to_string(),
        _ => "N/A".to_string(),
    };
    out.push_str(&int("EventID"));
    out.push(d);
    for f in ["SourceName", "AccountName", "AccountType"] {
        out.push_str(&na(string(rec, f)));
        out.push(d);
    }
    out.push_str(&na(string(rec, "EventType").map(snare_event_type)));
    out.push(d);
    out.push_str(&na(string(rec, "Hostname")));
    out.push(d);
    out.push_str(&na(string(rec, "Category")));
    out.push(d);
    out.push(d);
    match string(rec, "Message") {
        Some(m) => out.extend(
            m.chars()
                .map(|c| if c == d { opts.snare_replacement } else { c }),
        ),
        None => out.push_str("N/A"),
    }
    out.push(d);
    out.push_str(&int("RecordNumber"));
    replace_line_breaks(&mut out, 0, opts);
    rec.set("raw_event", out);
}

/// Which of xm_syslog's procedures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    Bsd,
    Ietf,
    Snare,
}

impl SyslogFormat {
    /// By procedure name (lower case).
    pub fn from_procedure(name: &str) -> Option<SyslogFormat> {
        Some(match name {
            "to_syslog_bsd" => SyslogFormat::Bsd,
            "to_syslog_ietf" => SyslogFormat::Ietf,
            "to_syslog_snare" => SyslogFormat::Snare,
            _ => return None,
        })
    }

    pub fn procedure(self) -> &'static str {
        match self {
            SyslogFormat::Bsd => "to_syslog_bsd",
            SyslogFormat::Ietf => "to_syslog_ietf",
            SyslogFormat::Snare => "to_syslog_snare",
        }
    }

    /// Rewrite `$raw_event` in this format.
    pub fn apply(self, rec: &mut Record, env: &SyslogEnv<'_>, opts: &SyslogOptions) {
        match self {
            SyslogFormat::Bsd => to_syslog_bsd(rec, env, opts),
            SyslogFormat::Ietf => to_syslog_ietf(rec, env, opts),
            SyslogFormat::Snare => to_syslog_snare(rec, env, opts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn zone(secs: i32) -> Zone {
        Zone::Fixed(FixedOffset::east_opt(secs).expect("offset"))
    }

    /// UTC+1, host `agent`, now 2024-03-10 12:00:00Z, 7 events so far.
    fn env() -> SyslogEnv<'static> {
        SyslogEnv {
            zone: zone(3600),
            hostname: "agent",
            now: at("2024-03-10T12:00:00Z"),
            event_count: 7,
        }
    }

    /// An im_regmon CHANGE event, fields as regmon sets them.
    fn regmon_event() -> Record {
        let mut r = Record::new()
            .with("EventTime", at("2024-01-05T06:07:08.123456Z"))
            .with("Hostname", "WIN-HOST")
            .with("EventType", "CHANGE")
            .with("RegistryValueName", "HKLM\\Software\\Run\\x")
            .with("PrevValueSize", 4i64)
            .with("ValueSize", 8i64)
            .with("DigestName", "SHA1")
            .with("PrevDigest", "aa")
            .with("Digest", "bb")
            .with("Severity", "WARNING")
            .with("SeverityValue", 3i64)
            .with("EventReceivedTime", at("2024-01-05T06:07:09Z"))
            .with("SourceModuleName", "regmon")
            .with("SourceModuleType", "im_regmon");
        r.set("raw_event", "EventType=CHANGE ValueSize=8");
        r
    }

    fn run(f: fn(&mut Record, &SyslogEnv<'_>, &SyslogOptions), r: &mut Record) -> String {
        run_with(f, r, &SyslogOptions::default())
    }

    fn run_with(
        f: fn(&mut Record, &SyslogEnv<'_>, &SyslogOptions),
        r: &mut Record,
        o: &SyslogOptions,
    ) -> String {
        f(r, &env(), o);
        r.get_str("raw_event").expect("raw_event").to_string()
    }

    #[test]
    fn bsd_of_a_regmon_event() {
        assert_eq!(
            run(to_syslog_bsd, &mut regmon_event()),
            "<12>Jan  5 07:07:08 WIN-HOST EventType=CHANGE ValueSize=8"
        );
    }

    #[test]
    fn ietf_of_a_regmon_event() {
        assert_eq!(
            run(to_syslog_ietf, &mut regmon_event()),
            "<12>1 2024-01-05T07:07:08.123456+01:00 WIN-HOST - - - [NXLOG@14506 \
             EventType=\"CHANGE\" RegistryValueName=\"HKLM\\\\Software\\\\Run\\\\x\" \
             PrevValueSize=\"4\" ValueSize=\"8\" DigestName=\"SHA1\" PrevDigest=\"aa\" \
             Digest=\"bb\" EventReceivedTime=\"2024-01-05 07:07:09\" \
             SourceModuleName=\"regmon\" SourceModuleType=\"im_regmon\"] \
             EventType=CHANGE ValueSize=8"
        );
    }

    #[test]
    fn snare_of_a_regmon_event() {
        assert_eq!(
            run(to_syslog_snare, &mut regmon_event()),
            "<12>Jan  5 07:07:08 WIN-HOST MSWinEventLog\t2\tN/A\t7\tFri Jan 05 07:07:08 2024\t\
             N/A\tN/A\tN/A\tN/A\tCHANGE\tWIN-HOST\tN/A\t\tN/A\tN/A"
        );
    }

    #[test]
    fn ietf_in_utc_and_in_negative_zones() {
        let o = SyslogOptions {
            utc_timestamp: true,
            ..SyslogOptions::default()
        };
        let out = run_with(to_syslog_ietf, &mut regmon_event(), &o);
        assert!(
            out.starts_with("<12>1 2024-01-05T06:07:08.123456Z WIN-HOST "),
            "{out}"
        );
        // Datetimes in the SD stay local.
        assert!(
            out.contains("EventReceivedTime=\"2024-01-05 07:07:09\""),
            "{out}"
        );
        let mut r = Record::new().with("EventTime", at("2024-07-01T00:00:00Z"));
        to_syslog_ietf(
            &mut r,
            &SyslogEnv {
                zone: zone(-(5 * 3600 + 30 * 60)),
                ..env()
            },
            &SyslogOptions::default(),
        );
        assert_eq!(
            r.get_str("raw_event"),
            Some("<13>1 2024-06-30T18:30:00.000000-05:30 agent - - - - ")
        );
    }

    #[test]
    fn missing_fields() {
        // Nothing at all: now, the agent's host name, notice/user, the
        // (empty) raw_event.
        let mut r = Record::new();
        assert_eq!(run(to_syslog_bsd, &mut r), "<13>Mar 10 13:00:00 agent ");
        let mut r = Record::new();
        assert_eq!(
            run(to_syslog_ietf, &mut r),
            "<13>1 2024-03-10T13:00:00.000000+01:00 agent - - - - "
        );
        let mut r = Record::new();
        assert_eq!(
            run(to_syslog_snare, &mut r),
            "<13>Mar 10 13:00:00 agent MSWinEventLog\t1\tN/A\t7\tSun Mar 10 13:00:00 2024\t\
             N/A\tN/A\tN/A\tN/A\tN/A\tN/A\tN/A\t\tN/A\tN/A"
        );
        // A Hostname that is not a string counts as missing.
        let mut r = Record::new().with("Hostname", 5i64);
        assert!(run(to_syslog_bsd, &mut r).contains(" agent "));
    }

    #[test]
    fn tag_procid_msgid_and_message() {
        let base = || {
            Record::new()
                .with("EventTime", at("2024-11-20T10:00:00Z"))
                .with("Hostname", "h")
                .with("SourceName", "my app")
                .with("Message", "line1\r\nline2")
        };
        let mut r = base().with("ProcessID", 42i64);
        assert_eq!(
            run(to_syslog_bsd, &mut r),
            "<13>Nov 20 11:00:00 h my_app[42]: line1  line2"
        );
        let mut r = base().with("ProcessID", "").with("MessageID", "ID7");
        assert_eq!(
            run(to_syslog_ietf, &mut r),
            "<13>1 2024-11-20T11:00:00.000000+01:00 h my_app - ID7 - line1  line2"
        );
        let mut r = base().with("ProcessID", "p1");
        assert!(run(to_syslog_bsd, &mut r).contains(" my_app[p1]: line1"));
        // No SourceName: no tag and no colon, even with a ProcessID.
        let mut r = base().with("SourceName", "").with("ProcessID", 1i64);
        assert_eq!(
            run(to_syslog_bsd, &mut r),
            "<13>Nov 20 11:00:00 h line1  line2"
        );
        // The old raw_event's line breaks go too; ReplaceLineBreaks \n keeps them.
        let mut r = Record::new().with("raw_event", "a\nb");
        assert!(run(to_syslog_bsd, &mut r).ends_with(" agent a b"));
        let keep = SyslogOptions {
            line_break: None,
            ..SyslogOptions::default()
        };
        let mut r = Record::new().with("raw_event", "a\nb");
        assert!(run_with(to_syslog_bsd, &mut r, &keep).ends_with(" agent a\nb"));
        // Line breaks before the message (a host name) are CE's to keep.
        let mut r = Record::new().with("Hostname", "x\ny");
        assert!(run(to_syslog_bsd, &mut r).contains(" x\ny "));
    }

    #[test]
    fn structured_data_escaping() {
        let mut r = Record::new()
            .with("EventTime", at("2024-01-05T06:07:08Z"))
            .with("Hostname", "h")
            .with("we]ird \"name", "a]b\"c\\d")
            .with("flag", true)
            .with("data", vec![0xABu8, 0x01])
            // Field names are case-insensitive: this is $Message.
            .with("message", "not in SD")
            .with("SyslogFacilityValue", 23i64);
        assert_eq!(
            run(to_syslog_ietf, &mut r),
            "<189>1 2024-01-05T07:07:08.000000+01:00 h - - - [NXLOG@14506 \
             we_ird__name=\"a\\]b\\\"c\\\\d\" flag=\"TRUE\" data=\"AB01\"] not in SD"
        );
    }

    #[test]
    fn priority_rules() {
        let p = |fields: &[(&str, Value)]| {
            let mut r = Record::new();
            for (n, v) in fields {
                r.set(n, v.clone());
            }
            priority(&r)
        };
        let s = |x: &str| Value::String(x.into());
        let i = Value::Integer;
        assert_eq!(p(&[]), 13);
        assert_eq!(p(&[("SeverityValue", i(3))]), 12);
        assert_eq!(p(&[("Severity", s("warning"))]), 12);
        assert_eq!(p(&[("SeverityValue", i(1))]), 15);
        assert_eq!(p(&[("SeverityValue", i(5))]), 10);
        assert_eq!(p(&[("SeverityValue", i(9))]), 13);
        // SeverityValue decides even when Severity disagrees.
        assert_eq!(p(&[("SeverityValue", i(4)), ("Severity", s("DEBUG"))]), 11);
        assert_eq!(p(&[("Severity", s("bogus"))]), 14);
        assert_eq!(
            p(&[("SyslogSeverityValue", i(0)), ("SeverityValue", i(3))]),
            8
        );
        // A SyslogSeverityValue of the wrong type still hides the others.
        assert_eq!(
            p(&[("SyslogSeverityValue", s("x")), ("SeverityValue", i(3))]),
            13
        );
        assert_eq!(p(&[("SyslogSeverity", s("err"))]), 11);
        assert_eq!(p(&[("SyslogSeverity", s("panic"))]), 13);
        assert_eq!(p(&[("SyslogSeverity", s("none"))]), 16);
        assert_eq!(
            p(&[("SyslogFacility", s("local4")), ("SeverityValue", i(3))]),
            164
        );
        assert_eq!(p(&[("SyslogFacility", s("kern"))]), 13);
        assert_eq!(p(&[("SyslogFacility", s("uucp"))]), 13);
        assert_eq!(p(&[("SyslogFacility", s("ucp"))]), 69);
        assert_eq!(
            p(&[("SyslogFacilityValue", i(0)), ("SyslogSeverityValue", i(0))]),
            0
        );
    }

    #[test]
    fn snare_delimiter_and_replacement() {
        let mut r = Record::new()
            .with("EventTime", at("2024-01-05T06:07:08Z"))
            .with("Hostname", "h")
            .with("SeverityValue", 2i64)
            .with("Channel", "Security")
            .with("FileName", "ignored")
            .with("EventID", 4624i64)
            .with("SourceName", "Microsoft Windows")
            .with("AccountName", "bob")
            .with("AccountType", "User")
            .with("EventType", "AUDIT_SUCCESS")
            .with("Category", "Logon")
            .with("Message", "a|b\tc\r\nd")
            .with("RecordNumber", 99i64);
        let o = SyslogOptions {
            snare_delimiter: '|',
            snare_replacement: '/',
            ..SyslogOptions::default()
        };
        assert_eq!(
            run_with(to_syslog_snare, &mut r, &o),
            "<14>Jan  5 07:07:08 h MSWinEventLog|1|Security|7|Fri Jan 05 07:07:08 2024|\
             4624|Microsoft Windows|bob|User|Success Audit|h|Logon||a/b\tc  d|99"
        );
        assert_eq!(r.get_str("Message"), Some("a|b\tc\r\nd"));
        let mut r = Record::new()
            .with("FileName", "System")
            .with("EventType", "INFO");
        let out = run(to_syslog_snare, &mut r);
        assert!(
            out.contains("\tSystem\t") && out.contains("\tInformation\t"),
            "{out}"
        );
    }

    #[test]
    fn dates_pad_as_ce() {
        let e = env();
        let mut s = String::new();
        rfc3164_date(&mut s, &e.zone.to_zone(&at("2024-02-29T23:59:59Z")));
        assert_eq!(s, "Mar  1 00:59:59");
        s.clear();
        snare_date(&mut s, &zone(0).to_zone(&at("2024-12-09T01:02:03Z")));
        assert_eq!(s, "Mon Dec 09 01:02:03 2024");
        s.clear();
        let leap = Utc
            .timestamp_opt(1_483_228_799, 1_500_000_000)
            .single()
            .expect("leap second");
        rfc5424_date(&mut s, &leap, true, e.zone);
        assert_eq!(s, "2016-12-31T23:59:59.999999Z");
    }
}
