//! The block parser: logical lines (from `source`) to raw blocks
//! (`<Input>`, `<Output>`, `<Extension>`, `<Processor>`, `<Route>`, with
//! their `<Schedule>` and `<Exec>` parts), reporting structural errors.
//! Blocks kept as text (`<QueryXML>`) become directives named by their tag.
//! What the directives mean is decided later, by `validate`.

use crate::diag::{Diagnostic, Location};
use crate::directive::Directive;
use crate::lang::parser::ExecSource;
use crate::source::{split_word, SrcLine};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Extension,
    Input,
    Output,
    Processor,
    Route,
}

impl BlockKind {
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Extension => "Extension",
            BlockKind::Input => "Input",
            BlockKind::Output => "Output",
            BlockKind::Processor => "Processor",
            BlockKind::Route => "Route",
        }
    }
    fn parse(s: &str) -> Option<BlockKind> {
        match s.to_ascii_lowercase().as_str() {
            "extension" => Some(BlockKind::Extension),
            "input" => Some(BlockKind::Input),
            "output" => Some(BlockKind::Output),
            "processor" => Some(BlockKind::Processor),
            "route" => Some(BlockKind::Route),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RawDirective {
    pub d: Directive,
    /// 1-based column of the value in the line (approximate after `%NAME%`).
    pub value_col: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct RawSchedule {
    pub loc: Location,
    pub raw: String,
    pub directives: Vec<RawDirective>,
    pub execs: Vec<ExecSource>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawBlock {
    pub kind: BlockKind,
    pub name: String,
    pub loc: Location,
    pub raw: String,
    pub directives: Vec<RawDirective>,
    pub execs: Vec<ExecSource>,
    pub schedules: Vec<RawSchedule>,
}

#[derive(Default)]
pub(crate) struct Structure {
    pub globals: Vec<RawDirective>,
    pub blocks: Vec<RawBlock>,
}

enum Tag<'a> {
    Open(&'a str, &'a str),
    Close(&'a str),
}

fn parse_tag(t: &str) -> Option<Result<Tag<'_>, String>> {
    let t = t.trim();
    if !t.starts_with('<') {
        return None;
    }
    let Some(inner) = t.strip_suffix('>') else {
        return Some(Err("expected '>' at the end of the block tag".into()));
    };
    if let Some(name) = inner.strip_prefix("</") {
        return Some(Ok(Tag::Close(name.trim())));
    }
    let inner = &inner[1..];
    let (name, arg) = split_word(inner);
    Some(Ok(Tag::Open(name, arg.trim())))
}

fn directive_of(line: &SrcLine) -> Result<RawDirective, Diagnostic> {
    let text = line.text.trim();
    let (name, value) = split_word(text);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
        return Err(Diagnostic::new(
            &line.loc,
            &line.raw,
            format!("expected a directive name or a block tag, found '{name}'"),
        ));
    }
    let lead = line.text.len() - line.text.trim_start().len();
    let value_col = lead + (text.len() - value.len()) + 1;
    Ok(RawDirective {
        d: Directive {
            name: name.to_string(),
            value: value.trim().to_string(),
            location: line.loc.clone(),
            line_text: line.raw.trim().to_string(),
        },
        value_col,
    })
}

fn exec_from_directive(rd: &RawDirective) -> ExecSource {
    let mut src = ExecSource::default();
    src.push(
        &rd.d.value,
        rd.d.location.clone(),
        &rd.d.line_text,
        rd.value_col,
    );
    src
}

/// Split logical lines into globals and blocks, reporting structural errors.
pub(crate) fn parse_structure(lines: &[SrcLine], errors: &mut Vec<Diagnostic>) -> Structure {
    let mut st = Structure::default();
    let mut block: Option<RawBlock> = None;
    let mut sched: Option<RawSchedule> = None;
    // an open <Exec> block: its source and the opening line
    let mut exec: Option<(ExecSource, Location, String)> = None;
    let err = |l: &SrcLine, m: String| Diagnostic::new(&l.loc, &l.raw, m);

    for line in lines {
        if let Some(text) = &line.verbatim {
            // a block kept as text (<QueryXML>...): a directive of the
            // block (or schedule) it is in, named by its tag
            let rd = RawDirective {
                d: Directive {
                    name: text.tag.clone(),
                    value: text.body.clone(),
                    location: line.loc.clone(),
                    line_text: line.raw.trim().to_string(),
                },
                value_col: 1,
            };
            match (sched.as_mut(), block.as_mut()) {
                (Some(s), _) => s.directives.push(rd),
                (None, Some(b)) => b.directives.push(rd),
                (None, None) => {
                    errors.push(err(line, format!("<{}> outside a module block", text.tag)))
                }
            }
            continue;
        }
        if let Some((src, _, _)) = exec.as_mut() {
            if let Some(Ok(Tag::Close(n))) = parse_tag(&line.text) {
                if n.eq_ignore_ascii_case("exec") {
                    let (src, _, _) = exec.take().expect("open exec");
                    match (sched.as_mut(), block.as_mut()) {
                        (Some(s), _) => s.execs.push(src),
                        (None, Some(b)) => b.execs.push(src),
                        _ => {}
                    }
                    continue;
                }
            }
            let lead = line.text.len() - line.text.trim_start().len();
            src.push(line.text.trim(), line.loc.clone(), &line.raw, lead + 1);
            continue;
        }
        match parse_tag(&line.text) {
            Some(Err(m)) => errors.push(err(line, m)),
            Some(Ok(Tag::Open(tag, arg))) => {
                let lt = tag.to_ascii_lowercase();
                if lt == "exec" {
                    if block.is_none() {
                        errors.push(err(line, "<Exec> outside a module block".into()));
                    }
                    if !arg.is_empty() {
                        errors.push(err(
                            line,
                            "expected '<Exec>' with nothing after 'Exec'".into(),
                        ));
                    }
                    exec = Some((ExecSource::default(), line.loc.clone(), line.raw.clone()));
                    continue;
                }
                if lt == "schedule" {
                    match &block {
                        None => errors.push(err(line, "<Schedule> outside a module block".into())),
                        Some(b) if b.kind == BlockKind::Route => {
                            errors.push(err(line, "<Schedule> is not allowed in <Route>".into()))
                        }
                        Some(_) if sched.is_some() => errors.push(err(
                            line,
                            "<Schedule> inside <Schedule> (missing </Schedule>?)".into(),
                        )),
                        Some(_) => {}
                    }
                    if !arg.is_empty() {
                        errors.push(err(
                            line,
                            "expected '<Schedule>' with nothing after 'Schedule'".into(),
                        ));
                    }
                    sched = Some(RawSchedule {
                        loc: line.loc.clone(),
                        raw: line.raw.trim().to_string(),
                        directives: Vec::new(),
                        execs: Vec::new(),
                    });
                    continue;
                }
                let Some(kind) = BlockKind::parse(tag) else {
                    errors.push(err(
                        line,
                        format!("unknown block <{tag}> (supported: Extension, Input, Output, Route; Schedule and Exec inside a module)"),
                    ));
                    continue;
                };
                if let Some(open) = &block {
                    errors.push(err(
                        line,
                        format!(
                            "<{}> inside <{} {}> (missing </{}>?)",
                            kind.name(),
                            open.kind.name(),
                            open.name,
                            open.kind.name()
                        ),
                    ));
                    if let Some(b) = block.take() {
                        st.blocks.push(b);
                    }
                    sched = None;
                }
                // NXLog takes the rest of the tag as the name, spaces and
                // all (`<Extension File operations>`); routes name it so too
                if arg.is_empty() {
                    errors.push(err(
                        line,
                        format!("expected a name: <{} NAME>", kind.name()),
                    ));
                }
                block = Some(RawBlock {
                    kind,
                    name: arg.to_string(),
                    loc: line.loc.clone(),
                    raw: line.raw.trim().to_string(),
                    directives: Vec::new(),
                    execs: Vec::new(),
                    schedules: Vec::new(),
                });
            }
            Some(Ok(Tag::Close(tag))) => {
                let lt = tag.to_ascii_lowercase();
                if lt == "schedule" {
                    match (sched.take(), block.as_mut()) {
                        (Some(s), Some(b)) => b.schedules.push(s),
                        (Some(_), None) => {}
                        (None, _) => {
                            errors.push(err(line, "</Schedule> without <Schedule>".into()))
                        }
                    }
                    continue;
                }
                if lt == "exec" {
                    errors.push(err(line, "</Exec> without <Exec>".into()));
                    continue;
                }
                match block.take() {
                    Some(b) if b.kind.name().eq_ignore_ascii_case(tag) => {
                        if let Some(s) = sched.take() {
                            errors.push(Diagnostic::new(
                                &s.loc,
                                &s.raw,
                                "<Schedule> is not closed (expected </Schedule>)",
                            ));
                        }
                        st.blocks.push(b);
                    }
                    Some(b) => {
                        errors.push(err(
                            line,
                            format!(
                                "</{tag}> does not match <{} {}> (expected </{}>)",
                                b.kind.name(),
                                b.name,
                                b.kind.name()
                            ),
                        ));
                        block = Some(b);
                    }
                    None => errors.push(err(
                        line,
                        format!("</{tag}> without a matching opening tag"),
                    )),
                }
            }
            None => {
                let rd = match directive_of(line) {
                    Ok(d) => d,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                if let Some(s) = sched.as_mut() {
                    if rd.d.name.eq_ignore_ascii_case("exec") {
                        s.execs.push(exec_from_directive(&rd));
                    } else {
                        s.directives.push(rd);
                    }
                } else if let Some(b) = block.as_mut() {
                    if rd.d.name.eq_ignore_ascii_case("exec") && b.kind != BlockKind::Route {
                        b.execs.push(exec_from_directive(&rd));
                    } else {
                        b.directives.push(rd);
                    }
                } else {
                    st.globals.push(rd);
                }
            }
        }
    }
    if let Some((_, loc, raw)) = exec {
        errors.push(Diagnostic::new(
            &loc,
            &raw,
            "<Exec> is not closed (expected </Exec>)",
        ));
    }
    if let Some(s) = sched {
        errors.push(Diagnostic::new(
            &s.loc,
            &s.raw,
            "<Schedule> is not closed (expected </Schedule>)",
        ));
    }
    if let Some(b) = block {
        errors.push(Diagnostic::new(
            &b.loc,
            &b.raw,
            format!(
                "<{} {}> is not closed (expected </{}>)",
                b.kind.name(),
                b.name,
                b.kind.name()
            ),
        ));
        st.blocks.push(b);
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Reader;
    use std::path::Path;

    fn structure(text: &str) -> (Structure, Vec<Diagnostic>) {
        let mut r = Reader::new();
        r.read_text(text, "t.conf", Path::new(""));
        let mut errors = r.errors;
        let st = parse_structure(&r.lines, &mut errors);
        (st, errors)
    }

    #[test]
    fn text_blocks_are_directives_of_their_block() {
        let (st, errors) = structure(concat!(
            "<Input Windows event log>\n",
            "  Module im_msvistalog\n",
            "  <QueryXML>\n",
            "    <QueryList><Query Id=\"0\"><Select Path=\"System\">*</Select></Query></QueryList>\n",
            "  </QueryXML>\n",
            "</Input>\n",
            "<QueryXML>x</QueryXML>\n",
        ));
        let msgs: Vec<String> = errors.iter().map(|e| e.headline()).collect();
        assert_eq!(msgs, ["t.conf:7: <QueryXML> outside a module block"]);
        let b = &st.blocks[0];
        assert_eq!(b.name, "Windows event log");
        let q = &b.directives[1].d;
        assert_eq!(q.name, "QueryXML");
        assert_eq!(
            q.value,
            "    <QueryList><Query Id=\"0\"><Select Path=\"System\">*</Select></Query></QueryList>"
        );
        assert_eq!((q.location.line, q.line_text.as_str()), (3, "<QueryXML>"));
    }

    #[test]
    fn names_are_the_rest_of_the_tag() {
        let (st, errors) = structure(
            "<Extension File operations>\n</Extension>\n<Input in-1>\n</Input>\n<Output\tout.2 >\n</Output>\n<Route 1>\n</Route>\n<Input>\n</Input>\n",
        );
        let names: Vec<&str> = st.blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["File operations", "in-1", "out.2", "1", ""]);
        let msgs: Vec<String> = errors.iter().map(|e| e.headline()).collect();
        assert_eq!(msgs, ["t.conf:9: expected a name: <Input NAME>"]);
    }
}
