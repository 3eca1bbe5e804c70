//! xm_rewrite: `Keep`, `Delete`, `Rename` and its own `Exec`, applied to an
//! event when Exec code calls `instance->process()`: Keep first, then
//! Delete, then Rename (each in file order), then the instance's Exec.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::block::RawBlock;
use crate::diag::Diagnostic;
use crate::directive::Directive;
use crate::extension::RewriteFields;
use crate::lang::scope::ExecApi;

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::many("Keep", V::Special),
    DirectiveSpec::many("Delete", V::Special),
    DirectiveSpec::many("Rename", V::Special),
];

/// process() is resolved by the Exec parser from the scope's xm_rewrite
/// instances (it changes the event, which host procedures cannot).
pub(crate) const EXEC: ExecApi = ExecApi::NONE;

/// xm_rewrite settings.
#[derive(Clone, Debug, Default)]
pub struct XmRewrite {
    pub fields: RewriteFields,
}

/// Field names of a Keep/Delete/Rename value: comma-separated, `$`
/// optional.
fn names(d: &Directive) -> Result<Vec<String>, Diagnostic> {
    let mut out = Vec::new();
    for part in d.value.split(',') {
        let n = part.trim().trim_start_matches('$');
        if n.is_empty() || n.chars().any(char::is_whitespace) {
            return Err(d.err(format!(
                "{}: expected field names separated by commas, e.g. {} $EventID, $Message",
                d.name, d.name
            )));
        }
        out.push(n.to_string());
    }
    Ok(out)
}

/// The field operations of an xm_rewrite block; problems are appended.
pub(crate) fn rewrite_fields(b: &RawBlock, errors: &mut Vec<Diagnostic>) -> RewriteFields {
    let mut f = RewriteFields::default();
    for rd in &b.directives {
        let d = &rd.d;
        let r: Result<(), Diagnostic> = (|| {
            match d.name.to_ascii_lowercase().as_str() {
                "keep" => f.keep.extend(names(d)?),
                "delete" => f.delete.extend(names(d)?),
                "rename" => match names(d)?.as_slice() {
                    [a, b] => f.rename.push((a.clone(), b.clone())),
                    _ => {
                        return Err(d.err(
                            "Rename takes two field names: the old and the new, e.g. Rename $EventType, $Action",
                        ))
                    }
                },
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = r {
            errors.push(e);
        }
    }
    f
}

/// Check an `<Extension>` block's xm_rewrite directives into [`XmRewrite`].
pub(crate) fn build(cx: &mut Build) -> Option<XmRewrite> {
    let before = cx.errors.len();
    let fields = rewrite_fields(cx.block, cx.errors);
    // The instance's Exec runs inside process(), where calling process()
    // again (of any xm_rewrite instance) could recurse without end.
    for src in &cx.block.execs {
        if let Ok(stmts) = crate::lang::parser::parse_program(src, cx.scope) {
            if stmts.iter().any(calls_process) {
                cx.errors.push(src.diag(
                    0,
                    "an xm_rewrite instance's Exec cannot call process() (it runs inside process())"
                        .into(),
                ));
            }
        }
    }
    (cx.errors.len() == before).then_some(XmRewrite { fields })
}

fn calls_process(s: &crate::lang::ast::Stmt) -> bool {
    use crate::lang::ast::{Proc, Stmt};
    match s {
        Stmt::Call {
            proc: Proc::Rewrite(_),
            ..
        } => true,
        Stmt::If {
            arms, otherwise, ..
        } => {
            arms.iter().any(|a| calls_process(&a.then))
                || otherwise.as_deref().is_some_and(calls_process)
        }
        Stmt::Block(b) => b.iter().any(calls_process),
        _ => false,
    }
}
