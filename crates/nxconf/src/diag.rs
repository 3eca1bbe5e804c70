//! Diagnostics: every configuration error names `file:line[:column]`, says what
//! was expected and quotes the offending line, so a user can fix it without
//! guessing. Several errors are collected into one [`Errors`] value.

use std::fmt;

/// A place in a configuration file (1-based line number; 0 for the file as
/// a whole, shown without a line).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file as it was named (the path given to `load`, or joined with an
    /// include directive), so messages show what the user wrote.
    pub file: String,
    pub line: usize,
}

impl Location {
    pub fn new(file: impl Into<String>, line: usize) -> Self {
        Location {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// One configuration error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    /// 1-based column, given where it helps (Exec syntax errors).
    pub column: Option<usize>,
    /// The offending line, trimmed; empty when there is no line (a missing file).
    pub line_text: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(loc: &Location, line_text: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: loc.file.clone(),
            line: loc.line,
            column: None,
            line_text: line_text.trim().to_string(),
            message: message.into(),
        }
    }

    pub fn with_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    pub fn location(&self) -> Location {
        Location::new(self.file.clone(), self.line)
    }

    /// The first line of the Display form (`file:line: message`), handy in tests.
    pub fn headline(&self) -> String {
        match self.column {
            Some(c) => format!("{}:{}:{}: {}", self.file, self.line, c, self.message),
            None => format!("{}: {}", self.location(), self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if !self.line_text.is_empty() {
            write!(f, "\n    {}", self.line_text)?;
        }
        Ok(())
    }
}

/// All errors found in a configuration, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<Diagnostic>);

impl Errors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
}

impl From<Diagnostic> for Errors {
    fn from(d: Diagnostic) -> Self {
        Errors(vec![d])
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}
impl std::error::Error for Diagnostic {}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A non-fatal message produced while loading (accepted-but-inert directives,
/// unused inputs): the host logs these at the given level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub level: LogLevel,
    pub location: Location,
    pub message: String,
}

/// Log levels, as NXLog names them (`LogLevel` global, log_* procedures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARNING" | "WARN" => Some(LogLevel::Warning),
            "ERROR" => Some(LogLevel::Error),
            "CRITICAL" => Some(LogLevel::Critical),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that cannot be read (a DateFormat, a schedule, JSON text), found
/// where its place in the configuration is not known. The caller that knows
/// the directive or Exec position makes it a [`Diagnostic`]; the message is
/// the text printed there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl PartialEq<&str> for Invalid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Messages are built from it where it is printed.
impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.0
    }
}
