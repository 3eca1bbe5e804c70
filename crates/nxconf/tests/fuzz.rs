//! Property tests: the parser, the Exec compiler and evaluator, the JSON
//! reader and the schedule parser never panic, whatever the input.

use nxconf::*;
use proptest::prelude::*;

/// Fragments that make inputs look like configurations, so the generator
/// reaches deep into the parser instead of failing on the first byte.
const FRAGMENTS: &[&str] = &[
    "<Input regmon>",
    "</Input>",
    "<Output file>",
    "</Output>",
    "<Extension json>",
    "</Extension>",
    "<Route r>",
    "</Route>",
    "<Schedule>",
    "</Schedule>",
    "<Exec>",
    "</Exec>",
    "<Processor p>",
    "Module im_regmon",
    "Module xm_json",
    "Module om_file",
    "RegValue 'HKLM\\x\\*'",
    "File 'x'",
    "Path regmon => file",
    "When @daily",
    "Every 1 min",
    "First 2024-01-01 00:00:00",
    "Exec ",
    "to_json();",
    "start_scan();",
    "drop();",
    "if ",
    "else ",
    "$a",
    " = ",
    "==",
    "=~ /(a)/i",
    "s/a/b/g",
    "(",
    ")",
    "{",
    "}",
    ";",
    "'str'",
    "\"esc\\n\\x41\"",
    "1",
    "5M",
    "TRUE",
    "undef",
    "and",
    "or",
    "not",
    "xor",
    "defined",
    "in (1, 2)",
    "+",
    "-",
    "*",
    "/",
    "%",
    "lc(",
    "substr(",
    ",",
    "\\",
    "\n",
    " ",
    "#",
    "define X y",
    "%X%",
    "include nosuch*.conf",
    "envvar HOME",
    "2024-01-02 03:04:05",
    "ScanInterval 10",
    "Digest sha256",
    "HiveFile 'a' 'b'",
    "Priority 3",
    "->",
    "$1",
    "${a b}",
];

fn config_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_str_never_panics(text in any::<String>()) {
        let _ = parse_str(&text, "fuzz.conf");
    }

    #[test]
    fn parse_config_like_never_panics(text in config_like()) {
        if let Err(e) = parse_str(&text, "fuzz.conf") {
            // every diagnostic names the file and a line
            for d in e.iter() {
                prop_assert_eq!(&d.file, "fuzz.conf");
            }
            let _ = e.to_string();
        }
    }

    #[test]
    fn exec_compile_and_run_never_panic(code in config_like()) {
        let scope = ExecScope::new("t", "im_regmon", true);
        if let Ok(p) = Program::compile(&code, &scope, "t.conf") {
            let mut rec = Record::new().with("a", "x").with("n", 3i64);
            let mut ctx = CollectingContext::default();
            let _ = p.run(&mut rec, &mut ctx);
        }
    }

    #[test]
    fn json_reader_never_panics(text in any::<String>()) {
        let _ = Record::from_json(&text, &JsonOptions::default());
    }

    #[test]
    fn schedule_parsers_never_panic(text in any::<String>()) {
        let _ = When::parse(&text);
        let _ = parse_every(&text);
        let _ = parse_first(&text);
        let _ = DateFormat::parse(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let scope = ExecScope::new("t", "im_regmon", true);
    for code in [
        format!("$a = {}1{};", "(".repeat(5000), ")".repeat(5000)),
        format!("$a = {}1;", "- ".repeat(5000)),
        format!("$a = {}TRUE;", "not ".repeat(5000)),
        format!("{}{}", "{".repeat(5000), "}".repeat(5000)),
        format!("{}drop();", "if TRUE ".repeat(5000)),
    ] {
        let _ = Program::compile(&code, &scope, "t.conf");
    }
    let _ = Record::from_json(
        &format!("{{\"a\":{}}}", "[".repeat(100_000)),
        &JsonOptions::default(),
    );
}
