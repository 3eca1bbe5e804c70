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
        let scope = scope();
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

/// Run `f` on a thread with the default 2 MiB stack (what std gives every
/// spawned thread, and less than a main thread has), so a test proves the
/// code fits there rather than in whatever the harness happens to give.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|_| panic!("the test thread panicked"))
}

fn scope() -> ExecScope {
    ExecScope::new("t", "im_regmon", true)
}

fn run(p: &Program) -> (Record, CollectingContext) {
    let mut rec = Record::new().with("a", "x").with("n", 3i64);
    let mut ctx = CollectingContext::default();
    p.run(&mut rec, &mut ctx);
    (rec, ctx)
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    on_small_stack(|| {
        for code in [
            format!("$a = {}1{};", "(".repeat(5000), ")".repeat(5000)),
            format!("$a = {}1;", "- ".repeat(5000)),
            format!("$a = {}TRUE;", "not ".repeat(5000)),
            format!("$a = {}'x'{};", "lc(".repeat(5000), ")".repeat(5000)),
            format!("{}{}", "{".repeat(5000), "}".repeat(5000)),
            format!("{}drop();", "if TRUE ".repeat(5000)),
            format!("$a = TRUE{};", " in (TRUE)".repeat(5000)),
        ] {
            let e = Program::compile(&code, &scope(), "t.conf")
                .err()
                .unwrap_or_else(|| panic!("accepted: {}...", &code[..40]));
            let msg = e.to_string();
            assert!(msg.starts_with("t.conf:1:"), "{msg}");
            assert!(msg.contains("too deep"), "{msg}");
            assert_eq!(e.iter().count(), 1, "one error, not a cascade: {msg}");
        }
        assert!(Record::from_json(
            &format!("{{\"a\":{}}}", "[".repeat(100_000)),
            &JsonOptions::default(),
        )
        .is_err());
    });
}

/// The deepest nesting the compiler accepts, for each construct that
/// nests, compiles and runs on a 2 MiB stack; one level more is a clear
/// error. The limit is generous: 90 levels of anything are accepted.
#[test]
fn deepest_accepted_nesting_runs_on_a_small_stack() {
    type Gen = fn(usize) -> String;
    let gens: [(&str, Gen); 7] = [
        ("parens", |n| {
            format!("$r = {}1{};", "(".repeat(n), ")".repeat(n))
        }),
        ("not", |n| format!("$r = {}TRUE;", "not ".repeat(n))),
        ("neg", |n| format!("$r = {}$n;", "- ".repeat(n))),
        ("calls", |n| {
            format!("$r = {}$a{};", "lc(".repeat(n), ")".repeat(n))
        }),
        ("sums", |n| {
            format!("$r = {}$n{};", "1 + (".repeat(n), ")".repeat(n))
        }),
        ("blocks", |n| {
            format!("{}$r = 1;{}", "{".repeat(n), "}".repeat(n))
        }),
        ("ifs", |n| format!("{}$r = 1;", "if defined $a ".repeat(n))),
    ];
    for (name, g) in gens {
        let deepest = on_small_stack(move || {
            let mut n = 1;
            while Program::compile(&g(n + 1), &scope(), "t.conf").is_ok() {
                n += 1;
                assert!(n < 1000, "{name}: no limit");
            }
            let p = Program::compile(&g(n), &scope(), "t.conf").expect("compiles");
            let (rec, ctx) = run(&p);
            assert!(ctx.logs.is_empty(), "{name}: {:?}", ctx.logs);
            assert!(rec.contains("r"), "{name}");
            let e = Program::compile(&g(n + 1), &scope(), "t.conf").unwrap_err();
            assert!(e.to_string().contains("too deep"), "{name}: {e}");
            n
        });
        assert!(deepest >= 90, "{name}: only {deepest} levels accepted");
    }
}

/// Flat runs are not nesting: a 1000-branch `else if` chain and 30,000-term
/// operator chains compile and run on a 2 MiB stack.
#[test]
fn long_flat_chains_run_on_a_small_stack() {
    on_small_stack(|| {
        let mut code = String::new();
        for i in 0..1000 {
            code.push_str(&format!("if $n == {i} $r = 'b{i}';\nelse "));
        }
        code.push_str("$r = 'none';");
        let p = Program::compile(&code, &scope(), "t.conf").expect("else-if chain");
        let (rec, ctx) = run(&p);
        assert!(ctx.logs.is_empty(), "{:?}", ctx.logs);
        assert_eq!(rec.get_str("r"), Some("b3"));

        let sum = format!("$r = 0{};", " + 1".repeat(30_000));
        let p = Program::compile(&sum, &scope(), "t.conf").expect("+ chain");
        assert_eq!(run(&p).0.get("r"), Some(&Value::Integer(30_000)));

        let cat = format!("$r = ''{};", " + $a + $Nope".repeat(30_000));
        let p = Program::compile(&cat, &scope(), "t.conf").expect("concatenation");
        assert_eq!(run(&p).0.get_str("r").map(str::len), Some(30_000));

        let or = format!("$r = FALSE{} or TRUE;", " or $n == 0".repeat(30_000));
        let p = Program::compile(&or, &scope(), "t.conf").expect("or chain");
        assert_eq!(run(&p).0.get("r"), Some(&Value::Boolean(true)));

        let cmp = format!("$r = TRUE{};", " == TRUE".repeat(30_000));
        let p = Program::compile(&cmp, &scope(), "t.conf").expect("== chain");
        assert_eq!(run(&p).0.get("r"), Some(&Value::Boolean(true)));

        let stmts = "$r = $a; ".repeat(30_000);
        let p = Program::compile(&stmts, &scope(), "t.conf").expect("statements");
        assert_eq!(run(&p).0.get_str("r"), Some("x"));
        // dropping and cloning the programs must not recurse either
        drop(p.clone());
    });
}

/// The issue's example, in a whole configuration: a flat 47-branch
/// `else if` chain over several Exec lines is accepted (NXLog accepts it).
#[test]
fn config_with_long_else_if_chain_loads() {
    let mut conf = String::from("<Input r>\n  Module im_regmon\n  RegValue 'HKLM\\X\\*'\n");
    conf.push_str("  <Exec>\n");
    for i in 0..47 {
        conf.push_str(&format!("    if $ValueSize == {i} $m = '{i}';\n    else\n"));
    }
    conf.push_str("    $m = 'big';\n  </Exec>\n</Input>\n");
    conf.push_str("<Output o>\n  Module om_file\n  File '/dev/null'\n</Output>\n");
    let c = parse_str(&conf, "big.conf").unwrap_or_else(|e| panic!("{e}"));
    let p = c
        .inputs()
        .next()
        .and_then(|m| m.exec.clone())
        .expect("exec");
    let mut rec = Record::new().with("ValueSize", 46i64);
    p.run(&mut rec, &mut CollectingContext::default());
    assert_eq!(rec.get_str("m"), Some("46"));
}

/// Exec code cannot build strings without bound: doubling a field stops
/// at the string cap with a logged error, and the run goes on.
#[test]
fn string_building_is_bounded() {
    let code = format!("$a = 'x';{} $done = TRUE;", " $a = $a + $a;".repeat(40));
    let p = Program::compile(&code, &scope(), "t.conf").unwrap();
    let (rec, ctx) = run(&p);
    assert_eq!(rec.get("done"), Some(&Value::Boolean(true)));
    assert_eq!(rec.get_str("a").map(str::len), Some(16 << 20));
    assert_eq!(ctx.logs.len(), 40 - 24, "{:?}", ctx.logs.first());
    assert!(
        ctx.logs[0].2.contains("longer than 16 MiB"),
        "{:?}",
        ctx.logs[0]
    );

    for code in [
        "$a = 'xxxxxxxx'; $a = replace($a, 'x', $a); $a = replace($a, 'x', $a); $a = replace($a, 'x', $a); $a = replace($a, 'x', $a);",
        "$a = 'xxxxxxxx'; $a =~ s/x/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/g; $a =~ s/x/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/g; $a =~ s/x/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/g; $a =~ s/x/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/g;",
    ] {
        let p = Program::compile(code, &scope(), "t.conf").unwrap();
        let (rec, ctx) = run(&p);
        assert!(rec.get_str("a").map_or(0, str::len) <= 16 << 20, "{code}");
        assert_eq!(ctx.logs.len(), 1, "{code}: {:?}", ctx.logs);
    }
}
