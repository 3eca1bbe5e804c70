//! Table tests for the Exec language.

use chrono::{FixedOffset, TimeZone, Utc};
use nxconf::*;

fn ctx() -> CollectingContext {
    CollectingContext {
        zone: Some(Zone::Fixed(FixedOffset::east_opt(3600).unwrap())),
        hostname: Some("winbox".into()),
        now: Some(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()),
        ..Default::default()
    }
}

fn event() -> Record {
    Record::new()
        .with("Name", "HKLM\\Software\\Run\\Evil")
        .with("Size", 10i64)
        .with("Flag", true)
        .with(
            "EventTime",
            Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        )
}

fn compile(code: &str) -> Program {
    let scope = ExecScope::new("test", "im_regmon", true);
    Program::compile(code, &scope, "t.conf").unwrap_or_else(|e| panic!("{code}: {e}"))
}

fn eval(expr: &str) -> Value {
    let p = compile(&format!("$r = {expr};"));
    let mut rec = event();
    let mut c = ctx();
    p.run(&mut rec, &mut c);
    assert!(c.logs.is_empty(), "{expr}: {:?}", c.logs);
    rec.value("r")
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}
fn i(v: i64) -> Value {
    Value::Integer(v)
}
fn b(v: bool) -> Value {
    Value::Boolean(v)
}

#[test]
fn precedence() {
    let cases = [
        ("1 + 2 * 3", i(7)),
        ("(1 + 2) * 3", i(9)),
        ("10 - 4 - 3", i(3)),
        ("20 / 2 / 5", i(2)),
        ("7 % 4 * 2", i(6)),
        ("-2 * 3", i(-6)),
        ("- (2 + 3)", i(-5)),
        ("1 + 2 == 3", b(true)),
        ("TRUE or FALSE and FALSE", b(true)),
        ("(TRUE or FALSE) and FALSE", b(false)),
        ("not 1 == 2", b(true)),
        ("not TRUE and FALSE", b(false)),
        ("not (TRUE and FALSE)", b(true)),
        ("TRUE xor TRUE or TRUE", b(true)),
        ("TRUE or TRUE xor TRUE", b(true)),
        ("FALSE and TRUE xor TRUE", b(true)),
        ("1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 4", b(false)),
        ("'a' + 'b' == 'ab'", b(true)),
        ("2 in (1, 2, 3)", b(true)),
        ("'x' not in ('a', 'b')", b(true)),
        ("defined $Size and $Size > 5", b(true)),
        ("defined $Nope or $Size == 10", b(true)),
        ("5M", i(5 * 1024 * 1024)),
        ("0x1F + 1", i(32)),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn string_escapes() {
    let cases = [
        (r#""a\\b""#, s("a\\b")),
        (r#""q\"q""#, s("q\"q")),
        (r#""l1\nl2\r\t\b""#, s("l1\nl2\r\t\u{8}")),
        (r#""\x41\x7a""#, s("Az")),
        (r#""C:\Windows""#, s("C:\\Windows")),
        (r#""C:\test""#, s("C:\test")),
        (r"'C:\test\n'", s("C:\\test\\n")),
        (r#"'a"b'"#, s("a\"b")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn regex_and_captures() {
    let p = compile(
        "if $Name =~ /\\\\Run\\\\(\\w+)$/ $Key = $1;\n\
         $Whole = $0;\n\
         if $Name =~ /^(?<Hive>HK\\w+)\\\\/ $Seen = TRUE;\n\
         if $Name =~ /software/i $Ci = TRUE;\n\
         if $Name =~ /software/ $Cs = TRUE;\n\
         if $Name !~ /nomatch/ $Neg = $0;\n\
         $Copy = $Name; $Copy =~ s/\\\\/\\//g;\n\
         $One = 'aaa'; $One =~ s/a/b/;\n\
         $Grp = 'k=v'; $Grp =~ s/(\\w)=(\\w)/$2=\\1/;",
    );
    let mut rec = event();
    let mut c = ctx();
    p.run(&mut rec, &mut c);
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(rec.get_str("Key"), Some("Evil"));
    assert_eq!(rec.get_str("Whole"), Some("\\Run\\Evil"));
    assert_eq!(
        rec.get_str("Hive"),
        Some("HKLM"),
        "named group becomes a field"
    );
    assert_eq!(rec.get("Seen"), Some(&b(true)));
    assert_eq!(rec.get("Ci"), Some(&b(true)));
    assert_eq!(rec.get("Cs"), None);
    assert_eq!(
        rec.get_str("Neg"),
        Some("Software"),
        "a failed or negated match keeps the last captures"
    );
    assert_eq!(rec.get_str("Copy"), Some("HKLM/Software/Run/Evil"));
    assert_eq!(rec.get_str("One"), Some("baa"));
    assert_eq!(rec.get_str("Grp"), Some("v=k"));
}

/// Every operator and function with undef, as NXLog evaluates it (its
/// reference manual and NXLog CE's src/common/expr.c and
/// expr-core-funcproc-cb.c). README-undef.md has the same table.
#[test]
fn undef_semantics() {
    let u = Value::Undef;
    let cases = [
        // + : a string absorbs undef, everything else with undef is undef
        ("'text' + undef", s("text")),
        ("undef + 'text'", s("text")),
        ("'changed: ' + $Nope", s("changed: ")),
        ("$Nope + 'x'", s("x")),
        ("'' + $Nope", s("")),
        ("undef + undef", u.clone()),
        ("$Nope + 1", u.clone()),
        ("1 + $Nope", u.clone()),
        ("$EventTime + $Nope", u.clone()),
        ("'a' + $Nope + 'b' + $Nope2", s("ab")),
        // - * / %
        ("$Nope - 1", u.clone()),
        ("1 - $Nope", u.clone()),
        ("$Nope * 2", u.clone()),
        ("2 * $Nope", u.clone()),
        ("$Nope / 2", u.clone()),
        ("2 / $Nope", u.clone()),
        ("$Nope % 2", u.clone()),
        ("2 % $Nope", u.clone()),
        // == and !=: undef equals only undef
        ("undef == undef", b(true)),
        ("$Nope == $Nope2", b(true)),
        ("undef != undef", b(false)),
        ("$Nope == 1", u.clone()),
        ("1 == $Nope", u.clone()),
        ("$Nope != 1", u.clone()),
        ("'x' != $Nope", u.clone()),
        // ordering comparisons: always undef, undef < undef too
        ("$Nope < 1", u.clone()),
        ("1 <= $Nope", u.clone()),
        ("$Nope > 1", u.clone()),
        ("1 >= $Nope", u.clone()),
        ("undef < undef", u.clone()),
        // and: undef if either side is undef, FALSE and undef too
        ("TRUE and $Nope", u.clone()),
        ("FALSE and $Nope", u.clone()),
        ("$Nope and TRUE", u.clone()),
        ("$Nope and FALSE", u.clone()),
        ("undef and undef", u.clone()),
        // or: TRUE if the left is TRUE, else the right side's value
        ("TRUE or $Nope", b(true)),
        ("$Nope or TRUE", b(true)),
        ("$Nope or FALSE", b(false)),
        ("FALSE or $Nope", u.clone()),
        ("undef or undef", u.clone()),
        // xor: undef if either side is undef
        ("TRUE xor $Nope", u.clone()),
        ("$Nope xor FALSE", u.clone()),
        // unary
        ("not $Nope", u.clone()),
        ("not undef", u.clone()),
        ("-$Nope", u.clone()),
        ("defined $Nope", b(false)),
        ("defined undef", b(false)),
        ("defined $Size", b(true)),
        ("defined ($Nope == 1)", b(false)),
        ("defined ($Nope == undef)", b(true)),
        ("defined ('x' + $Nope)", b(true)),
        // regular expressions
        ("$Nope =~ /x/", u.clone()),
        ("$Nope !~ /x/", u.clone()),
        // in / not in: x == a or x == b ...
        ("$Nope in (1, 2)", u.clone()),
        ("$Nope not in (1, 2)", u.clone()),
        ("$Nope in (1, undef)", b(true)),
        ("$Nope not in (undef)", b(false)),
        ("1 in (undef, 1)", b(true)),
        ("1 in (undef, 2)", b(false)),
        ("1 in (2, undef)", u.clone()),
        // functions of undef are undef
        ("type($Nope)", u.clone()),
        ("type(undef)", u.clone()),
        ("string($Nope)", u.clone()),
        ("integer($Nope)", u.clone()),
        ("lc($Nope)", u.clone()),
        ("uc($Nope)", u.clone()),
        ("size($Nope)", u.clone()),
        ("substr($Nope, 1)", u.clone()),
        ("substr('abc', $Nope)", u.clone()),
        ("replace($Nope, 'a', 'b')", u.clone()),
        ("replace('abc', $Nope, 'b')", u.clone()),
        ("replace('abc', 'a', $Nope)", u.clone()),
        ("parsedate($Nope)", u.clone()),
        ("datetime($Nope)", u.clone()),
        ("strftime($Nope, '%Y')", u.clone()),
        ("year($Nope)", u.clone()),
        ("month($Nope)", u.clone()),
        ("day($Nope)", u.clone()),
        ("hour($Nope)", u.clone()),
        ("minute($Nope)", u.clone()),
        ("second($Nope)", u.clone()),
        ("dayofweek($Nope)", u.clone()),
        // ... except optional arguments, where undef means "not given"
        ("substr('abcdef', 2, $Nope)", s("cdef")),
        ("replace('a-b-c', '-', '+', $Nope)", s("a+b+c")),
        ("strftime($EventTime, $Nope)", s("2024-01-02 04:04:05")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
    // an undef condition takes the else branch; assigning undef deletes
    let p = compile("if $Nope == 1 $a = 'then'; else $a = 'else'; $Size = undef;");
    let mut rec = event();
    p.run(&mut rec, &mut ctx());
    assert_eq!(rec.get_str("a"), Some("else"));
    assert!(!rec.contains("Size"));
    // the issue's example: a NEW event has no PrevDigest, the message stays
    let p = compile("$Message = 'changed: ' + $PrevDigest + ' -> ' + $Digest;");
    let mut rec = Record::new().with("Digest", "abc");
    p.run(&mut rec, &mut ctx());
    assert_eq!(rec.get_str("Message"), Some("changed:  -> abc"));
    // log_*() prints undef as nothing
    let p = compile("log_info('x=', $Nope, '.');");
    let mut c = ctx();
    p.run(&mut event(), &mut c);
    assert_eq!(c.logs.len(), 1);
    assert_eq!(c.logs[0].2, "x=.");
}

/// `and` evaluates its right side even when the left is FALSE (NXLog CE
/// does; a regex there still sets captures), `or` skips it after TRUE, and
/// `- * / %` and `< <= > >=` skip it after an undef left side.
#[test]
fn which_operands_are_evaluated() {
    let cases = [
        ("FALSE and $Name =~ /(Run)/", true),
        ("$Nope and $Name =~ /(Run)/", false),
        ("TRUE or $Name =~ /(Run)/", false),
        ("FALSE or $Name =~ /(Run)/", true),
        ("$Nope == ($Name =~ /(Run)/)", true),
        ("$Nope < integer($Name =~ /(Run)/)", false),
        ("$Nope - integer($Name =~ /(Run)/)", false),
        ("1 < integer($Name =~ /(Run)/)", true),
        ("$Nope + integer($Name =~ /(Run)/)", true),
    ];
    for (e, runs) in cases {
        let p = compile(&format!("$r = {e}; $c = $1;"));
        let mut rec = event();
        let mut c = ctx();
        p.run(&mut rec, &mut c);
        assert_eq!(rec.get_str("c") == Some("Run"), runs, "{e}: {:?}", c.logs);
    }
}

#[test]
fn datetime_arithmetic() {
    let t =
        |y, mo, d, h, mi, se| Value::DateTime(Utc.with_ymd_and_hms(y, mo, d, h, mi, se).unwrap());
    let cases = [
        ("$EventTime + 60", t(2024, 1, 2, 3, 5, 5)),
        ("3600 + $EventTime", t(2024, 1, 2, 4, 4, 5)),
        ("$EventTime - 86400", t(2024, 1, 1, 3, 4, 5)),
        ("($EventTime + 90) - $EventTime", i(90_000_000)),
        ("$EventTime < $EventTime + 1", b(true)),
        ("2024-01-02T03:04:05Z == $EventTime", b(true)),
        ("2024-01-02 04:04:05+01:00 == $EventTime", b(true)),
        ("string($EventTime)", s("2024-01-02 04:04:05")),
        ("'at ' + $EventTime", s("at 2024-01-02 04:04:05")),
        ("strftime($EventTime, '%Y/%m/%d %H')", s("2024/01/02 04")),
        (
            "strftime($EventTime, 'YYYY-MM-DDThh:mm:ss.sTZ')",
            s("2024-01-02T04:04:05.000000+01:00"),
        ),
        ("integer($EventTime)", i(1_704_164_645_000_000)),
        ("datetime(1704164645000000) == $EventTime", b(true)),
        ("parsedate('2024-01-02 04:04:05') == $EventTime", b(true)),
        ("now()", t(2024, 3, 1, 12, 0, 0)),
        ("year($EventTime) * 100 + month($EventTime)", i(202401)),
        ("hour($EventTime)", i(4)),
        ("dayofweek($EventTime)", i(2)),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn functions() {
    let cases = [
        ("hostname()", s("winbox")),
        ("hostname_fqdn()", s("winbox")),
        ("lc('AbC')", s("abc")),
        ("uc('AbC')", s("ABC")),
        ("substr('abcdef', 2)", s("cdef")),
        ("substr('abcdef', 1, 3)", s("bc")),
        ("substr('abc', 10)", s("")),
        ("size('héllo')", i(6)),
        ("string(42) + string(TRUE)", s("42TRUE")),
        ("integer('42') + integer(TRUE)", i(43)),
        ("integer('x')", Value::Undef),
        (
            "type(1) + type('a') + type(TRUE) + type($EventTime)",
            s("integerstringbooleandatetime"),
        ),
        ("replace('a-b-c', '-', '+')", s("a+b+c")),
        ("replace('a-b-c', '-', '+', 1)", s("a+b-c")),
        ("'n=' + 5", s("n=5")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn statements_drop_and_blocks() {
    let p = compile("$a = 1; ; { $b = 2; if $a == 1 { $c = 3; drop(); $d = 4; } } $e = 5;");
    let mut rec = Record::new();
    assert_eq!(p.run(&mut rec, &mut ctx()), Outcome::Drop);
    assert_eq!(rec.names().collect::<Vec<_>>(), ["a", "b", "c"]);

    let p = compile(
        "delete($Size); rename_field($Name, $Path); rename_field('Flag', 'F'); $PATH = 'x';",
    );
    let mut rec = event();
    assert_eq!(p.run(&mut rec, &mut ctx()), Outcome::Keep);
    assert_eq!(rec.names().collect::<Vec<_>>(), ["Path", "F", "EventTime"]);
    assert_eq!(
        rec.get_str("path"),
        Some("x"),
        "set keeps position and spelling"
    );

    let p = compile("log_info('x=', $Size); log_warning('w'); start_scan(); test->start_scan();");
    let mut c = ctx();
    p.run(&mut event(), &mut c);
    assert_eq!(c.logs.len(), 2);
    assert_eq!(c.logs[0], (LogLevel::Info, "test".into(), "x=10".into()));
    assert_eq!(c.calls, ["test->start_scan", "test->start_scan"]);
}

#[test]
fn runtime_errors_skip_the_statement() {
    let p = compile("$a = 1;\n$b = $Name - 1;\n$c = 10 / ($Size - 10);\nif $Size drop();\n$d = 4;");
    let mut rec = event();
    let mut c = ctx();
    assert_eq!(p.run(&mut rec, &mut c), Outcome::Keep);
    assert_eq!(rec.get("a"), Some(&i(1)));
    assert_eq!(rec.get("d"), Some(&i(4)));
    assert!(!rec.contains("b") && !rec.contains("c"));
    let msgs: Vec<_> = c
        .logs
        .iter()
        .map(|(l, m, t)| format!("{l} {m} {t}"))
        .collect();
    assert_eq!(
        msgs,
        [
            "ERROR test t.conf:2: cannot apply '-' to string and integer; statement skipped",
            "ERROR test t.conf:3: division by zero; statement skipped",
            "ERROR test t.conf:4: the 'if' condition is integer, expected boolean; statement skipped",
        ]
    );
}

#[test]
fn load_time_errors() {
    let scope = ExecScope::new("test", "om_file", false);
    let cases = [
        ("$a = 'x' * 2;", "t.conf:1:10: type error: cannot apply '*' to string and integer"),
        ("to_json();", "t.conf:1:1: to_json() needs an xm_json extension instance (add <Extension json> with Module xm_json)"),
        ("$a = 1 + TRUE;", "t.conf:1:8: type error: cannot apply '+' to integer and boolean"),
        ("if 'a' =~ 5 drop();", "t.conf:1:11: expected a regular expression /.../ after '=~', found '5'"),
        ("if 5 =~ /x/ drop();", "t.conf:1:6: type error: '=~' needs a string on the left, found integer"),
        ("$a = substr('x', 'y');", "t.conf:1:6: type error: argument 2 of substr() is string, expected integer"),
        ("$a = (1 + 2;", "t.conf:1:12: expected ')' to close '(', found ';'"),
        ("$a = foo;", "t.conf:1:6: unknown identifier 'foo' (field names start with '$'; strings need quotes)"),
        ("$a = 1 == 'x';", "t.conf:1:8: type error: cannot compare integer and string"),
        ("$a = 'x' in (1, 2);", "t.conf:1:10: type error: cannot compare string and integer"),
        ("if ($a == 1) {", "t.conf:1:14: unclosed '{' (expected '}')"),
    ];
    for (code, want) in cases {
        let e = Program::compile(code, &scope, "t.conf").unwrap_err();
        assert_eq!(e.0[0].headline(), want, "{code}");
    }
}

#[test]
fn to_json_bytes() {
    let p = compile("to_json();");
    let mut rec = Record::new()
        .with(
            "EventTime",
            Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(42),
        )
        .with("Hostname", "WIN-1")
        .with("EventType", "CHANGE")
        .with("RegistryValueName", "HKLM\\Software\\Run\\a\"b")
        .with("PrevValueSize", 4i64)
        .with("Flag", false)
        .with("Ctl", "tab\there\nnl\u{1f}")
        .with("_private", "x")
        .with(".dot", "x")
        .with("raw_event", "old");
    let mut c = ctx();
    p.run(&mut rec, &mut c);
    assert_eq!(
        rec.get_str("raw_event").unwrap(),
        r#"{"EventTime":"2024-01-02T04:04:05.000042+01:00","Hostname":"WIN-1","EventType":"CHANGE","RegistryValueName":"HKLM\\Software\\Run\\a\"b","PrevValueSize":4,"Flag":false,"Ctl":"tab\there\nnl\u001f"}"#
    );
    // raw_event keeps its position when replaced; a to_json() function exists too
    assert_eq!(rec.names().last(), Some("raw_event"));
    let p = compile("$j = to_json();");
    let mut rec = Record::new().with("a", 1i64);
    p.run(&mut rec, &mut c);
    assert_eq!(rec.get_str("j"), Some(r#"{"a":1}"#));
    // parse_json() reads $raw_event back into fields
    let p = compile("$raw_event = '{\"x\":\"y\",\"n\":2}'; parse_json();");
    let mut rec = Record::new();
    p.run(&mut rec, &mut c);
    assert_eq!(rec.get_str("x"), Some("y"));
    assert_eq!(rec.get("n"), Some(&i(2)));
}

#[test]
fn xm_json_dateformat_in_config() {
    let text = "<Extension j>\nModule xm_json\nDateFormat YYYY-MM-DD hh:mm:ss\nIncludeHiddenFields TRUE\n</Extension>\n\
                <Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n<Output o>\nModule om_file\nFile 'x'\nExec to_json();\n</Output>\n";
    let cfg = parse_str(text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    let mut rec = Record::new()
        .with("T", Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
        .with("_h", 1i64);
    cfg.module("o")
        .unwrap()
        .exec
        .as_ref()
        .unwrap()
        .run(&mut rec, &mut ctx());
    assert_eq!(
        rec.get_str("raw_event"),
        Some(r#"{"T":"2024-01-02 04:04:05","_h":1}"#)
    );
}

/// Run output `o`'s Exec of a configuration (an im_regmon input and an
/// om_file output `o` are added around `extra`) over `rec`.
fn run_config(extra: &str, exec: &str, rec: &mut Record) -> (Outcome, CollectingContext) {
    let text = format!(
        "{extra}\n<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n\
         <Output o>\nModule om_file\nFile 'x'\n{exec}\n</Output>\n"
    );
    let cfg = parse_str(&text, "t.conf").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut c = ctx();
    let out = cfg
        .module("o")
        .unwrap()
        .exec
        .as_ref()
        .unwrap()
        .run(rec, &mut c);
    (out, c)
}

fn load_err(text: &str) -> String {
    match parse_str(text, "t.conf") {
        Ok(_) => panic!("loaded: {text}"),
        Err(e) => {
            e.0.iter()
                .map(|d| d.headline())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fn reg_event() -> Record {
    Record::new()
        .with(
            "EventTime",
            Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        )
        .with("Hostname", "WIN-1")
        .with("EventType", "CHANGE")
        .with("RegistryValueName", "HKLM\\Software\\Run\\My App")
        .with("ValueSize", 4i64)
        .with("_hidden", "x")
        .with("raw_event", "old")
}

#[test]
fn xm_kvp_to_kvp() {
    let ext = "<Extension kvp>\nModule xm_kvp\n</Extension>";
    let mut rec = reg_event();
    run_config(ext, "Exec to_kvp();", &mut rec);
    assert_eq!(
        rec.get_str("raw_event"),
        Some("EventTime=2024-01-02 04:04:05;Hostname=WIN-1;EventType=CHANGE;RegistryValueName='HKLM\\\\Software\\\\Run\\\\My App';ValueSize=4;")
    );
    // Function form, instance-qualified forms, and the directives.
    let ext = "<Extension kv>\nModule xm_kvp\nKVPDelimiter ,\nKVDelimiter :\nEscapeChar '/'\nValueQuoteChar '\"'\nQuoteMethod All\n</Extension>";
    let mut rec = Record::new().with("A", "x/y").with("N", 1i64);
    let (_, c) = run_config(ext, "Exec $k = kv->to_kvp();", &mut rec);
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(rec.get_str("k"), Some("A:\"x//y\",N:1,"));
    for exec in ["Exec $k = to_kvp();", "Exec kv->to_kvp(); $k = $raw_event;"] {
        let mut rec = Record::new().with("A", "x/y").with("N", 1i64);
        run_config(ext, exec, &mut rec);
        assert_eq!(rec.get_str("k"), Some("A:\"x//y\",N:1,"), "{exec}");
    }
    // Bad directive values name the line.
    let e = load_err(&format!(
        "<Extension kv>\nModule xm_kvp\nQuoteMethod Sometimes\n</Extension>\n{}",
        "<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n<Output o>\nModule om_file\nFile 'x'\n</Output>\n"
    ));
    assert!(
        e.contains("t.conf:3: invalid QuoteMethod 'Sometimes' (expected All, Delimiter or None)"),
        "{e}"
    );
    // Without an xm_kvp instance to_kvp() is a load error.
    let e = load_err("<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\nExec to_kvp();\n</Input>\n<Output o>\nModule om_file\nFile 'x'\n</Output>\n");
    assert!(
        e.contains("to_kvp() needs an xm_kvp extension instance"),
        "{e}"
    );
}

#[test]
fn xm_csv_to_csv() {
    let ext = "<Extension csv>\nModule xm_csv\nFields $EventTime, $EventType, $Missing, RegistryValueName, $ValueSize\n</Extension>";
    let mut rec = reg_event();
    run_config(ext, "Exec to_csv();", &mut rec);
    assert_eq!(
        rec.get_str("raw_event"),
        Some("2024-01-02 04:04:05,\"CHANGE\",,\"HKLM\\\\Software\\\\Run\\\\My App\",4")
    );
    let ext = "<Extension c2>\nModule xm_csv\nFields $EventType, $ValueSize\nDelimiter \\t\nQuoteMethod All\nQuoteChar \"'\"\n</Extension>";
    let mut rec = reg_event();
    run_config(ext, "Exec $line = c2->to_csv();", &mut rec);
    assert_eq!(rec.get_str("line"), Some("'CHANGE'\t'4'"));
    let ext = "<Extension c3>\nModule xm_csv\nFields EventType, RegistryValueName\nQuoteMethod None\nDelimiter ';'\n</Extension>";
    let mut rec = Record::new()
        .with("EventType", "a;b")
        .with("RegistryValueName", "x\ny");
    run_config(ext, "Exec c3->to_csv();", &mut rec);
    assert_eq!(rec.get_str("raw_event"), Some("a\\;b;x\\ny"));
    // Fields is required; FieldTypes must match it.
    let tail = "<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n<Output o>\nModule om_file\nFile 'x'\n</Output>\n";
    let e = load_err(&format!(
        "<Extension c>\nModule xm_csv\n</Extension>\n{tail}"
    ));
    assert!(
        e.contains("t.conf:1: xm_csv needs a Fields directive"),
        "{e}"
    );
    let e = load_err(&format!(
        "<Extension c>\nModule xm_csv\nFields a, b\nFieldTypes string\n</Extension>\n{tail}"
    ));
    assert!(
        e.contains("t.conf:4: FieldTypes lists 1 types but Fields lists 2 fields"),
        "{e}"
    );
}

#[test]
fn xm_rewrite_process() {
    let ext = "<Extension rw>\nModule xm_rewrite\nKeep EventTime, EventType, RegistryValueName, ValueSize\nDelete $ValueSize\nRename $RegistryValueName, $Target\nExec $Note = 'renamed ' + $Target;\n</Extension>";
    let mut rec = reg_event();
    let (out, c) = run_config(ext, "Exec rw->process(); $After = defined $Note;", &mut rec);
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(out, Outcome::Keep);
    assert_eq!(
        rec.names().collect::<Vec<_>>(),
        ["EventTime", "EventType", "Target", "Note", "After"]
    );
    assert_eq!(
        rec.get_str("Note"),
        Some("renamed HKLM\\Software\\Run\\My App")
    );
    // drop() in the rewrite's Exec drops the event.
    let ext =
        "<Extension rw>\nModule xm_rewrite\nExec if $EventType == 'CHANGE' drop();\n</Extension>";
    let (out, _) = run_config(ext, "Exec rw->process(); $x = 1;", &mut reg_event());
    assert_eq!(out, Outcome::Drop);
    let tail = "<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\n</Input>\n<Output o>\nModule om_file\nFile 'x'\n</Output>\n";
    let e = load_err(&format!(
        "<Extension rw>\nModule xm_rewrite\nRename a\n</Extension>\n{tail}"
    ));
    assert!(e.contains("t.conf:3: Rename takes two field names"), "{e}");
    let e = load_err(&format!(
        "<Extension rw>\nModule xm_rewrite\nExec rw->process();\n</Extension>\n{tail}"
    ));
    assert!(e.contains("cannot call process()"), "{e}");
}

#[test]
fn issue_15_exec_idioms() {
    // define lists with IN / NOT IN
    let text =
        "define WATCHED 'CHANGE', 'DELETE'\n<Extension syslog>\nModule xm_syslog\n</Extension>";
    let exec = "Exec if $EventType IN (%WATCHED%) $w = TRUE; if $EventType NOT IN (%WATCHED%) drop();\n\
                Exec $SyslogFacility = 'LOCAL4'; $SyslogSeverity = 'ERR'; $Message = 'n=' + string($ValueSize) + ' ' + $RegistryValueName;\n\
                Exec if $RegistryValueName =~ /^HKLM\\\\Software\\\\(\\w+)\\\\(.*)$/ $Key = $1 + '/' + $2;\n\
                Exec $Day = strftime($EventTime, '%Y%m%d'); $Big = integer('1' + '0') * 2; log_info('seen ', $Key);\n\
                Exec $Host = hostname_fqdn(); $T = parsedate('2024-01-02 03:04:05'); $Cleaned = replace($RegistryValueName, \"\\\\\", '/');\n\
                Exec to_syslog_bsd();";
    let mut rec = reg_event();
    let (out, c) = run_config(text, exec, &mut rec);
    assert_eq!(out, Outcome::Keep);
    assert_eq!(rec.get("w"), Some(&b(true)));
    assert_eq!(rec.get_str("Key"), Some("Run/My App"));
    assert_eq!(rec.get_str("Day"), Some("20240102"));
    assert_eq!(rec.get("Big"), Some(&i(20)));
    assert_eq!(rec.get_str("Host"), Some("winbox"));
    assert_eq!(rec.get_str("Cleaned"), Some("HKLM/Software/Run/My App"));
    assert!(matches!(rec.get("T"), Some(Value::DateTime(_))));
    assert_eq!(
        c.logs,
        [(LogLevel::Info, "o".into(), "seen Run/My App".into())]
    );
    // LOCAL4 (20) * 8 + err (3) = 163
    let raw = rec.get_str("raw_event").unwrap();
    assert!(raw.starts_with("<163>Jan  2 04:04:05 WIN-1 "), "{raw}");
    assert!(raw.ends_with("n=4 HKLM\\Software\\Run\\My App"), "{raw}");
    // NOT IN drops the others
    let mut rec = reg_event().with("EventType", "NEW");
    assert_eq!(run_config(text, exec, &mut rec).0, Outcome::Drop);
    // now()
    assert_eq!(
        eval("now()"),
        Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap())
    );
}

#[test]
fn more_core_functions() {
    let cases = [
        ("dayofyear($EventTime)", i(2)),
        ("dayofweek($EventTime)", i(2)),
        ("microsecond($EventTime + 0)", i(0)),
        ("year($EventTime) * 100 + month($EventTime)", i(202401)),
        (
            "day($EventTime) + hour($EventTime) + minute($EventTime) + second($EventTime)",
            i(2 + 4 + 4 + 5),
        ),
        (
            "strftime(strptime('02/01/2024 03:04', '%d/%m/%Y %H:%M'), '%Y-%m-%d %H:%M')",
            s("2024-01-02 03:04"),
        ),
        ("strptime('nope', '%Y')", Value::Undef),
        (
            "integer(strptime('1970-01-01 00:00:00 +0000', '%Y-%m-%d %H:%M:%S %z'))",
            i(0),
        ),
        ("string(datetime(0)) == '1970-01-01 01:00:00'", b(true)),
        ("type(now())", s("datetime")),
    ];
    for (e, want) in cases {
        assert_eq!(eval(e), want, "{e}");
    }
}

#[test]
fn xm_fileop_functions() {
    let dir = std::env::temp_dir().join(format!("nxconf-lang-fileop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("out.log");
    std::fs::write(&f, "12345").unwrap();
    let ext = "<Extension fileop>\nModule xm_fileop\n</Extension>";
    let exec = format!(
        "Exec $e = file_exists('{p}'); $d = dir_exists('{d}'); $n = file_size('{p}'); $b = file_basename('{p}');\n\
         Exec $t = file_type('{p}'); $r = file_read('{p}'); $m = type(file_mtime('{p}')); $tmp = size(dir_temp_get()) > 0;\n\
         Exec $missing = file_size('{d}/nope'); $after = 1;",
        p = f.display(),
        d = dir.display()
    );
    let mut rec = Record::new();
    let (_, c) = run_config(ext, &exec, &mut rec);
    assert_eq!(rec.get("e"), Some(&b(true)));
    assert_eq!(rec.get("d"), Some(&b(true)));
    assert_eq!(rec.get("n"), Some(&i(5)));
    assert_eq!(rec.get_str("b"), Some("out.log"));
    assert_eq!(rec.get_str("t"), Some("FILE"));
    assert_eq!(rec.get_str("r"), Some("12345"));
    assert_eq!(rec.get_str("m"), Some("datetime"));
    assert_eq!(rec.get("tmp"), Some(&b(true)));
    // An error is logged, the value is undef and the code goes on (NXLog).
    assert!(!rec.contains("missing"));
    assert_eq!(rec.get("after"), Some(&i(1)));
    assert_eq!(c.logs.len(), 1, "{:?}", c.logs);
    assert!(c.logs[0].2.starts_with("file_size(): "), "{:?}", c.logs);
    std::fs::remove_dir_all(&dir).unwrap();
    // Without an xm_fileop instance the functions are unknown to NXLog too.
    let e = load_err("<Input i>\nModule im_regmon\nRegValue 'HKLM\\x'\nExec $x = file_exists('a');\n</Input>\n<Output o>\nModule om_file\nFile 'x'\n</Output>\n");
    assert!(
        e.contains("file_exists() needs an xm_fileop extension instance"),
        "{e}"
    );
}

#[test]
fn foreign_names_say_where_they_come_from() {
    let scope = ExecScope::new("test", "om_file", false);
    let cases = [
        ("exec_async('/bin/true');", "unknown procedure 'exec_async': exec_async() comes from NXLog's xm_exec module; regmon does not implement it"),
        ("parse_csv();", "unknown procedure 'parse_csv': parse_csv() comes from NXLog's xm_csv module; regmon does not implement it"),
        ("$x = convert($a, 'a', 'b');", "unknown function 'convert': convert() comes from NXLog's xm_charconv module; regmon does not implement it"),
        ("process();", "unknown procedure 'process': call an xm_rewrite instance's process() by its name, e.g. rewrite->process();"),
    ];
    for (code, want) in cases {
        let e = Program::compile(code, &scope, "t.conf").unwrap_err();
        let h = e.0[0].headline();
        assert!(h.ends_with(want), "{code}: {h}");
    }
}

/// The idioms of helper E's public corpus (/work/notes/exec-corpus.md)
/// that reach registry events.
#[test]
fn corpus_idioms() {
    // rapid7/alienvault: EventTime as seconds, then to_syslog_bsd().
    let ext = "<Extension syslog>\nModule xm_syslog\n</Extension>";
    let mut rec = reg_event();
    let (_, c) = run_config(
        ext,
        "Exec $EventTime = integer($EventTime) / 1000000; $Secs = $EventTime; to_syslog_bsd();",
        &mut rec,
    );
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(rec.get("Secs"), Some(&i(1704164645)));
    assert!(rec.get_str("raw_event").unwrap().starts_with('<'));
    // dhcp: facility by name, severity by number.
    let mut rec = reg_event();
    run_config(
        ext,
        "Exec $SyslogFacility = \"LOCAL4\"; $SyslogSeverityValue = 6; to_syslog_bsd();",
        &mut rec,
    );
    assert!(
        rec.get_str("raw_event").unwrap().starts_with("<166>"),
        "{:?}",
        rec.get_str("raw_event")
    );
    // datadog / es_sysmon_http: string + on both sides, datetime + string.
    let mut rec = reg_event();
    let (_, c) = run_config(
        "",
        "Exec $raw_event = \"<DATADOG_API_KEY> \" + $raw_event; $T = $EventTime + '.000'; $U = replace($T, ' ', 'T');",
        &mut rec,
    );
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(rec.get_str("raw_event"), Some("<DATADOG_API_KEY> old"));
    assert_eq!(rec.get_str("T"), Some("2024-01-02 04:04:05.000"));
    assert_eq!(rec.get_str("U"), Some("2024-01-02T04:04:05.000"));
    // wef: not defined, upper-case OR, a block with drop(), `drop ()`.
    let (out, _) = run_config(
        "",
        "Exec if not defined $PatternID OR not defined $Message { drop (); }",
        &mut reg_event(),
    );
    assert_eq!(out, Outcome::Drop);
    // blumira / graylog: a size literal in a fileop Schedule's test.
    let ext = "define LOGFILE /nonexistent/regmon.log\n<Extension fileop>\nModule xm_fileop\n</Extension>";
    let (out, c) = run_config(
        ext,
        "Exec if (file_exists('%LOGFILE%') and (file_size('%LOGFILE%') >= 5M)) $x = 1; $y = file_read(\"C:\\id.txt\");",
        &mut reg_event(),
    );
    assert_eq!(out, Outcome::Keep);
    // A missing file: an error logged, the value undef, the code goes on.
    // `and` evaluates its right side even when the left is FALSE (NXLog
    // CE's expr.c), so file_size() of the missing file is logged too.
    assert_eq!(c.logs.len(), 2, "{:?}", c.logs);
    assert!(
        c.logs[0]
            .2
            .starts_with("file_size(): /nonexistent/regmon.log: "),
        "{:?}",
        c.logs
    );
    assert!(
        c.logs[1].2.starts_with("file_read(): C:\\id.txt: "),
        "{:?}",
        c.logs
    );
}

/// Module variables: create_var(), set_var(), get_var(), delete_var(),
/// shared by an instance's Exec runs (and its Schedules), with lifetimes.
#[test]
fn module_variables() {
    let p = compile(
        "create_var('Seen', 60); if get_var('seen') == undef set_var('seen', 0); \
         set_var('SEEN', get_var('seen') + 1); $n = get_var('seen'); \
         if $n > 2 { delete_var('seen'); drop(); }",
    );
    let mut c = ctx();
    let mut counts = Vec::new();
    for _ in 0..4 {
        let mut rec = Record::new();
        let out = p.run(&mut rec, &mut c);
        counts.push((out, rec.get("n").cloned()));
    }
    assert!(c.logs.is_empty(), "{:?}", c.logs);
    assert_eq!(
        counts,
        [
            (Outcome::Keep, Some(i(1))),
            (Outcome::Keep, Some(i(2))),
            (Outcome::Drop, Some(i(3))),
            (Outcome::Keep, Some(i(1))),
        ]
    );
    // A lifetime ends the variable; the clock is the context's. Programs
    // compiled in one scope (an instance's Exec and Schedules) share them.
    let scope = ExecScope::new("test", "im_regmon", false);
    let p = Program::compile("create_var('x', 10); set_var('x', 'v');", &scope, "t.conf").unwrap();
    let q = Program::compile("$v = get_var('x');", &scope, "t.conf").unwrap();
    let mut c = ctx();
    p.run(&mut Record::new(), &mut c);
    let mut rec = Record::new();
    q.run(&mut rec, &mut c);
    assert_eq!(rec.get_str("v"), Some("v"));
    c.now = Some(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 11).unwrap());
    let mut rec = Record::new();
    q.run(&mut rec, &mut c);
    assert!(!rec.contains("v"), "expired after 10 s");
    let mut rec = Record::new();
    compile("$v = get_var('seen');").run(&mut rec, &mut c);
    assert!(!rec.contains("v"), "another instance has its own variables");
}
