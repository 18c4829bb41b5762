//! What an admin's template may do, and the limits its rendering runs under.
//!
//! Prompt templates are written by tenant admins and rendered by the platform, at save time
//! and on every turn, for every tenant in the same process: no template may take unbounded time
//! or memory. minijinja's whole language can — `range` loops inside `range` loops, `"x" *
//! 99999999`, a string doubled by `{% set %}` inside a loop, `join`s nested in `join`s, lists
//! of lists turned into text again and again — and fuel does not bound memory, since one
//! instruction can allocate without limit. So admin templates are held to a subset in which no
//! value is larger than the template and the variables make it, checked on the syntax tree
//! before a template renders ([`check`]):
//! - statements: text, `{{ … }}`, `{% if %}`/`{% elif %}`/`{% else %}`, and `{% for x in
//!   name %}` over a variable or its attribute (optionally `if …`; not `recursive`);
//! - expressions: variables, their attributes and items and slices, literal strings and
//!   numbers, comparisons, `and`/`or`/`not`, `in`, `+ - / // %`, `~`, `… if … else …`, tests,
//!   and the filters of [`environment`];
//! - nothing else: no `set`, `with`, `filter` or `autoescape` blocks, no `*` or `**`, no list,
//!   tuple or map literals, no calls (there are no functions).
//!
//! Each render also runs on [`FUEL`] (minijinja's instruction budget, which bounds loops) and
//! writes into a buffer that stops at [`MAX_OUTPUT_BYTES`].

use std::fmt::Write as _;
use std::io;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// Instructions one render of an admin field may run: far above what a prompt with loops over
/// its few variables needs, far below what loops inside loops would take.
pub const FUEL: u64 = 50_000;
/// The most bytes a render writes before it is cut: more than the longest rendered field
/// ([`MAX_FIELD_CHARS`](super::MAX_FIELD_CHARS) characters) in four-byte characters.
pub const MAX_OUTPUT_BYTES: usize = 4 * (super::MAX_FIELD_CHARS + 1);
/// The longest text `join` makes.
const MAX_JOINED_BYTES: usize = 16 * 1024;

/// The environment admin templates render in: no globals, the allowed filters and tests only,
/// undefined variables are errors, and every render runs on [`FUEL`].
pub fn environment() -> Environment<'static> {
    use minijinja::{filters, tests};
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.add_filter("lower", filters::lower);
    env.add_filter("upper", filters::upper);
    env.add_filter("title", filters::title);
    env.add_filter("capitalize", filters::capitalize);
    env.add_filter("trim", filters::trim);
    env.add_filter("default", filters::default);
    env.add_filter("d", filters::default);
    env.add_filter("length", filters::length);
    env.add_filter("count", filters::length);
    env.add_filter("first", filters::first);
    env.add_filter("last", filters::last);
    env.add_filter("reverse", filters::reverse);
    env.add_filter("int", filters::int);
    env.add_filter("round", filters::round);
    env.add_filter("abs", filters::abs);
    env.add_filter("join", join);
    env.add_test("defined", tests::is_defined);
    env.add_test("undefined", tests::is_undefined);
    env.add_test("none", tests::is_none);
    env.add_test("true", tests::is_true);
    env.add_test("false", tests::is_false);
    env.add_test("string", tests::is_string);
    env.add_test("number", tests::is_number);
    env.add_test("sequence", tests::is_sequence);
    env.add_test("mapping", tests::is_mapping);
    env.add_test("odd", tests::is_odd);
    env.add_test("even", tests::is_even);
    env.add_test("eq", tests::is_eq);
    env.add_test("ne", tests::is_ne);
    env.add_test("in", tests::is_in);
    env.add_test("startingwith", tests::is_startingwith);
    env.add_test("endingwith", tests::is_endingwith);
    env
}

/// `join` of a list (not of a string's characters), at most [`MAX_JOINED_BYTES`] long.
fn join(value: &Value, separator: Option<&str>) -> Result<String, Error> {
    if value.kind() != ValueKind::Seq {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "join takes a list, such as knowledge_titles",
        ));
    }
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.push_str(separator.unwrap_or(""));
        }
        match item.as_str() {
            Some(s) => out.push_str(s),
            None => {
                let _ = write!(out, "{item}");
            }
        }
        if out.len() > MAX_JOINED_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "join makes a text that is too long",
            ));
        }
    }
    Ok(out)
}

/// Checks that `source` parses and keeps to the subset in the module doc; the error names what
/// is not allowed and where.
pub fn check(env: &Environment<'_>, source: &str) -> Result<(), String> {
    let tree = minijinja::machinery::parse(source, "<field>", env.syntax().clone())
        .map_err(|e| describe(&e))?;
    statement(&tree)
}

/// An error as admins read it: what went wrong, and on which line.
pub fn describe(e: &Error) -> String {
    let what = match e.kind() {
        ErrorKind::OutOfFuel => "the template does too much work (loops inside loops?)".to_owned(),
        _ => e
            .detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
    };
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

fn refuse<T>(what: &str, line: u16) -> Result<T, String> {
    Err(format!(
        "{what} is not available in prompt templates (line {line})"
    ))
}

fn statements(body: &[Stmt<'_>]) -> Result<(), String> {
    body.iter().try_for_each(statement)
}

fn statement(stmt: &Stmt<'_>) -> Result<(), String> {
    match stmt {
        Stmt::Template(t) => statements(&t.children),
        Stmt::EmitRaw(_) => Ok(()),
        Stmt::EmitExpr(e) => expression(&e.expr),
        Stmt::IfCond(c) => {
            expression(&c.expr)?;
            statements(&c.true_body)?;
            statements(&c.false_body)
        }
        Stmt::ForLoop(f) => {
            let line = f.span().start_line;
            if f.recursive {
                return refuse("a recursive loop", line);
            }
            loop_target(&f.target, line)?;
            if !is_name(&f.iter) {
                return refuse(
                    "a loop over anything but a variable (such as knowledge_titles)",
                    line,
                );
            }
            if let Some(condition) = &f.filter_expr {
                expression(condition)?;
            }
            statements(&f.body)?;
            statements(&f.else_body)
        }
        Stmt::WithBlock(s) => refuse("`with`", s.span().start_line),
        Stmt::Set(s) => refuse("`set`", s.span().start_line),
        Stmt::SetBlock(s) => refuse("`set`", s.span().start_line),
        Stmt::AutoEscape(s) => refuse("`autoescape`", s.span().start_line),
        Stmt::FilterBlock(s) => refuse("a `filter` block", s.span().start_line),
        Stmt::Do(s) => refuse("`do`", s.span().start_line),
        // Statements of minijinja features this crate does not enable (templates, macros, loop
        // controls) exist only when another crate enables them.
        #[allow(unreachable_patterns)]
        _ => Err("this statement is not available in prompt templates".to_owned()),
    }
}

/// A loop variable, or several (`for a, b in …`).
fn loop_target(target: &Expr<'_>, line: u16) -> Result<(), String> {
    match target {
        Expr::Var(_) => Ok(()),
        Expr::Tuple(t) if t.items.iter().all(|i| matches!(i, Expr::Var(_))) => Ok(()),
        Expr::List(l) if l.items.iter().all(|i| matches!(i, Expr::Var(_))) => Ok(()),
        _ => refuse("this loop variable", line),
    }
}

/// A variable or an attribute of one: `knowledge_titles`, `tenant.name`.
fn is_name(expr: &Expr<'_>) -> bool {
    match expr {
        Expr::Var(_) => true,
        Expr::GetAttr(a) => is_name(&a.expr),
        _ => false,
    }
}

fn expression(expr: &Expr<'_>) -> Result<(), String> {
    match expr {
        Expr::Var(_) => Ok(()),
        Expr::Const(c) => match c.value.kind() {
            ValueKind::String
            | ValueKind::Number
            | ValueKind::Bool
            | ValueKind::None
            | ValueKind::Undefined => Ok(()),
            _ => refuse("this constant", c.span().start_line),
        },
        Expr::Slice(s) => {
            expression(&s.expr)?;
            [&s.start, &s.stop, &s.step]
                .into_iter()
                .flatten()
                .try_for_each(expression)
        }
        Expr::UnaryOp(u) => expression(&u.expr),
        Expr::BinOp(b) => match b.op {
            BinOpKind::Mul => refuse("`*`", b.span().start_line),
            BinOpKind::Pow => refuse("`**`", b.span().start_line),
            _ => {
                expression(&b.left)?;
                expression(&b.right)
            }
        },
        Expr::Compare(c) => {
            expression(&c.expr)?;
            c.ops.iter().try_for_each(|op| expression(&op.expr))
        }
        Expr::IfExpr(i) => {
            expression(&i.test_expr)?;
            expression(&i.true_expr)?;
            i.false_expr.as_ref().map_or(Ok(()), expression)
        }
        Expr::Filter(f) => {
            if let Some(e) = &f.expr {
                expression(e)?;
            }
            arguments(&f.args)
        }
        Expr::Test(t) => {
            expression(&t.expr)?;
            arguments(&t.args)
        }
        Expr::GetAttr(a) => expression(&a.expr),
        Expr::GetItem(i) => {
            expression(&i.expr)?;
            expression(&i.subscript_expr)
        }
        Expr::Call(c) => refuse("a call", c.span().start_line),
        Expr::List(l) => refuse("a list literal", l.span().start_line),
        Expr::Tuple(t) => refuse("a tuple literal", t.span().start_line),
        Expr::Map(m) => refuse("a map literal", m.span().start_line),
    }
}

fn arguments(args: &[CallArg<'_>]) -> Result<(), String> {
    args.iter().try_for_each(|arg| match arg {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) => expression(e),
        CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
            refuse("`*` or `**` arguments", e.span().start_line)
        }
    })
}

/// A render's output, cut at [`MAX_OUTPUT_BYTES`]: writing past it fails, which stops the
/// render, and [`Bounded::full`] tells that failure from others.
#[derive(Default)]
pub struct Bounded {
    pub bytes: Vec<u8>,
    pub full: bool,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = MAX_OUTPUT_BYTES - self.bytes.len();
        if buf.len() > room {
            self.bytes.extend_from_slice(&buf[..room]);
            self.full = true;
            return Err(io::Error::other("the output limit is reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
