//! xm_syslog: the settings of to_syslog_bsd(), to_syslog_ietf() and
//! to_syslog_snare(), which the Exec language implements itself (see
//! `crate::syslog`); like NXLog, they may be called from any module
//! without naming an instance.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::block::RawBlock;
use crate::diag::Diagnostic;
use crate::directive::Directive;
use crate::lang::scope::ExecApi;
use crate::syslog::SyslogOptions;

/// Directives, in the order messages list them; defaults as
/// [`SyslogOptions::default`] sets them. CE has the first three;
/// UTCTimestamp and ReplaceLineBreaks are NXLog Enterprise's.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("IETFTimestampInGMT", V::Bool, Some("FALSE")),
    DirectiveSpec::once("SnareDelimiter", V::Special, Some("\\t")),
    DirectiveSpec::once("SnareReplacement", V::Special, Some("' '")),
    DirectiveSpec::once("UTCTimestamp", V::Bool, Some("FALSE")),
    DirectiveSpec::once("ReplaceLineBreaks", V::Special, Some("' '")),
];

/// The to_syslog_*() procedures are resolved by the Exec parser from the
/// scope's xm_syslog instances (they rewrite the event, which host
/// procedures cannot).
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// xm_syslog settings.
#[derive(Clone, Debug, Default)]
pub struct XmSyslog {
    pub options: SyslogOptions,
}

/// One character as NXLog CE's xm_syslog reads it: the character itself,
/// a backslash escape (`\t`, `\n`, `\r`, `\a`, `\b`, `\v`, `\f`), or one
/// character in single or double quotes.
pub(crate) fn config_char(d: &Directive) -> Result<char, Diagnostic> {
    let v = d.value.as_str();
    let mut cs = v.chars();
    let got = match (cs.next(), cs.next(), cs.next(), cs.next()) {
        (Some(c), None, _, _) => Some(c),
        (Some('\\'), Some(e), None, _) => match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'v' => Some('\x0b'),
            'f' => Some('\x0c'),
            'r' => Some('\r'),
            _ => None,
        },
        (Some(q @ ('"' | '\'')), Some(c), Some(q2), None) if q == q2 => Some(c),
        _ => None,
    };
    match got {
        Some(c) if c != '\0' => Ok(c),
        _ => Err(d.err(format!(
            "invalid {} parameter: {v} (expected one character, e.g. | or '|', or an escape such as \\t)",
            d.name
        ))),
    }
}

/// The settings of an xm_syslog block; problems are appended. Read before
/// any Exec is compiled (errors discarded then) and again when the block
/// is built.
pub(crate) fn syslog_options(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> SyslogOptions {
    let mut o = SyslogOptions::default();
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "ietftimestampingmt" | "utctimestamp" => o.utc_timestamp |= d.as_bool()?,
                "snaredelimiter" => o.snare_delimiter = config_char(d)?,
                "snarereplacement" => o.snare_replacement = config_char(d)?,
                "replacelinebreaks" => {
                    o.line_break = match config_char(d)? {
                        '\n' => None,
                        c => Some(c),
                    }
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = r {
            errors.push(e);
        }
    }
    o
}

/// Check an `<Extension>` block's xm_syslog directives into [`XmSyslog`].
pub(crate) fn build(cx: &mut Build) -> Option<XmSyslog> {
    let before = cx.errors.len();
    let options = syslog_options(cx.block, cx.errors);
    (cx.errors.len() == before).then_some(XmSyslog { options })
}

#[cfg(test)]
mod tests {
    use crate::syslog::SyslogOptions;

    fn options(lines: &str) -> Result<SyslogOptions, String> {
        let text = format!("<Extension s>\nModule xm_syslog\n{lines}\n</Extension>\n");
        let cfg = crate::parse_str(&text, "s.conf").map_err(|e| e.to_string())?;
        match &cfg.module("s").expect("instance").settings {
            crate::ModuleSettings::XmSyslog(x) => Ok(x.options.clone()),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn delimiters_read_like_nxlog_ce() {
        for (written, want) in [
            ("|", '|'),
            ("\\t", '\t'),
            ("'|'", '|'),
            ("\";\"", ';'),
            ("' '", ' '),
        ] {
            let o = options(&format!("SnareDelimiter {written}")).unwrap();
            assert_eq!(o.snare_delimiter, want, "{written}");
        }
        assert_eq!(options("").unwrap(), SyslogOptions::default());
        let o = options("SnareReplacement _\nIETFTimestampInGMT TRUE").unwrap();
        assert_eq!((o.snare_replacement, o.utc_timestamp), ('_', true));
        assert!(options("UTCTimestamp yes").unwrap().utc_timestamp);
        assert_eq!(options("ReplaceLineBreaks \\n").unwrap().line_break, None);
        assert_eq!(
            options("ReplaceLineBreaks |").unwrap().line_break,
            Some('|')
        );
    }

    #[test]
    fn bad_values_name_the_line() {
        for bad in [
            "SnareDelimiter ab",
            "SnareDelimiter \\x",
            "SnareReplacement '|",
        ] {
            let e = options(bad).unwrap_err();
            assert!(e.contains("s.conf:3") && e.contains("invalid Snare"), "{e}");
        }
        let e = options("Delimiter ,").unwrap_err();
        assert!(e.contains("s.conf:3") && e.contains("Delimiter"), "{e}");
    }

    /// to_syslog_*() in a configuration: callable without an instance
    /// (the first xm_syslog's settings) or through one; the Snare counter
    /// counts the events the calling module's Exec ran over.
    #[test]
    fn procedures_in_exec() {
        let text = "<Extension a>\nModule xm_syslog\nSnareDelimiter |\n</Extension>\n\
                    <Extension b>\nModule xm_syslog\nSnareDelimiter ;\n</Extension>\n\
                    <Output o>\nModule om_file\nFile 'x'\nExec to_syslog_snare();\n</Output>\n\
                    <Output p>\nModule om_file\nFile 'x'\nExec b->to_syslog_snare();\n</Output>\n";
        let cfg = crate::parse_str(text, "s.conf").unwrap_or_else(|e| panic!("{e}"));
        let mut ctx = crate::CollectingContext {
            hostname: Some("h".into()),
            ..Default::default()
        };
        let prog = |n: &str| cfg.module(n).and_then(|m| m.exec.clone()).expect("exec");
        let (o, p) = (prog("o"), prog("p"));
        assert!(o.calls("to_syslog_snare"));
        let counter = |raw: &str, d: char| raw.split(d).nth(3).map(str::to_string);
        for n in 1..=3 {
            let mut r = crate::Record::new();
            o.run(&mut r, &mut ctx);
            let raw = r.get_str("raw_event").expect("raw");
            assert_eq!(
                counter(raw, '|').as_deref(),
                Some(n.to_string().as_str()),
                "{raw}"
            );
        }
        let mut r = crate::Record::new();
        p.run(&mut r, &mut ctx);
        let raw = r.get_str("raw_event").expect("raw");
        assert_eq!(counter(raw, ';').as_deref(), Some("1"), "{raw}");
        assert!(ctx.logs.is_empty(), "{:?}", ctx.logs);
    }

    #[test]
    fn procedures_need_an_instance() {
        let text = "<Output o>\nModule om_file\nFile 'x'\nExec to_syslog_ietf();\n</Output>\n";
        let e = crate::parse_str(text, "s.conf").unwrap_err().to_string();
        assert!(
            e.contains("s.conf:4")
                && e.contains("to_syslog_ietf() needs an xm_syslog extension instance"),
            "{e}"
        );
        let text = "<Extension s>\nModule xm_syslog\n</Extension>\n\
                    <Output o>\nModule om_file\nFile 'x'\nExec to_syslog_bsd(1);\n</Output>\n";
        let e = crate::parse_str(text, "s.conf").unwrap_err().to_string();
        assert!(
            e.contains("s.conf:7") && e.contains("to_syslog_bsd() takes"),
            "{e}"
        );
    }
}
