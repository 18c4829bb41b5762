//! Turning an uploaded file into structured text: headings, paragraphs and FAQ pairs.
//!
//! [`parse`] picks a reader from the file name or MIME type ([`Format::detect`]), and every reader
//! produces the same [`ParsedDocument`], so chunking ([`crate::chunk`]) never knows where the text
//! came from. Block text is normalised as it is built (runs of white space become one space, lines
//! are trimmed, blank lines disappear inside a block), which is what lets chunks be exact spans of
//! [`crate::chunk::plain_text`].
//!
//! This module does no IO and never panics on any input: size limits are the caller's job, every
//! reader is linear in its input, and the PDF reader, the one that walks untrusted object graphs,
//! runs behind `catch_unwind`. Errors are written for the administrator who uploaded the file:
//! each names the file, says what is wrong and what to do about it.

mod faq;
mod html;
mod markdown;
mod pdf;

use serde::{Deserialize, Serialize};

/// The kinds of document the knowledge base reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
    Csv,
    Json,
}

impl Format {
    /// From a file name's extension (.txt/.text, .md/.markdown, .html/.htm, .pdf, .csv, .json) or,
    /// failing that, a MIME type (text/plain, text/markdown, text/html, application/pdf, text/csv,
    /// application/json; parameters like charset ignored). Both are matched case-insensitively.
    pub fn detect(file_name: &str, content_type: Option<&str>) -> Option<Format> {
        extension(file_name)
            .and_then(|ext| Self::from_extension(&ext))
            .or_else(|| content_type.and_then(Self::from_mime))
    }

    /// The lowercase name, as serialised: `text`, `markdown`, `html`, `pdf`, `csv`, `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext {
            "txt" | "text" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "pdf" => Format::Pdf,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => return None,
        })
    }

    fn from_mime(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "text/plain" => Format::Text,
            "text/markdown" | "text/x-markdown" => Format::Markdown,
            "text/html" | "application/xhtml+xml" => Format::Html,
            "application/pdf" => Format::Pdf,
            "text/csv" | "application/csv" => Format::Csv,
            "application/json" => Format::Json,
            _ => return None,
        })
    }

    /// The name an administrator knows the format by, for error messages.
    fn label(self) -> &'static str {
        match self {
            Format::Text => "text file",
            Format::Markdown => "Markdown file",
            Format::Html => "HTML page",
            Format::Pdf => "PDF",
            Format::Csv => "CSV file",
            Format::Json => "JSON file",
        }
    }

    /// What to do about a malformed file of this format.
    fn advice(self) -> &'static str {
        match self {
            Format::Text | Format::Markdown | Format::Html => "save it again and upload it",
            Format::Pdf => "export it again or upload the text",
            Format::Csv => "fix it in a spreadsheet and export it again as CSV",
            Format::Json => {
                "expected a list of {\"question\": …, \"answer\": …} objects, or an object with \
                 such a list under \"faq\""
            }
        }
    }
}

/// One structural unit of a document. Text is normalised: no leading or trailing white space,
/// single spaces inside lines, and (in paragraphs and answers) single newlines between lines.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A heading; `level` is 1 for the top level, as in `<h1>` or `#`.
    Heading {
        level: u8,
        text: String,
    },
    Paragraph(String),
    /// A question and its answer, kept together by the chunker.
    Faq {
        question: String,
        answer: String,
    },
}

/// A document as read from a file, before chunking.
#[derive(Clone, Debug)]
pub struct ParsedDocument {
    pub format: Format,
    /// The document's own title when it has one (HTML `<title>` or first `<h1>`, Markdown's first
    /// level-1 heading, JSON's `title`, PDF metadata); `None` lets the caller use the file name.
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

/// Why a file could not be read. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{file_name}: unsupported file type: {hint}")]
    Unsupported { file_name: String, hint: String },
    #[error(
        "{file_name}: not UTF-8 text: save it as UTF-8 (or UTF-16 with a byte-order mark) and \
         upload it again"
    )]
    NotUtf8 { file_name: String },
    #[error("{file_name}: not a readable {} ({reason}): {}", .format.label(), .format.advice())]
    Malformed {
        file_name: String,
        format: Format,
        reason: String,
    },
    #[error(
        "{file_name}: no question and answer columns (headers found: {}): name the columns \
         \"question\" and \"answer\" (or \"سؤال\" and \"جواب\")",
        list_or_none(.found)
    )]
    MissingColumns {
        file_name: String,
        found: Vec<String>,
    },
    #[error(
        "{file_name}: the PDF is password-protected: remove the password (print or export it \
         again without protection) and upload it again"
    )]
    Encrypted { file_name: String },
    #[error(
        "{file_name}: the PDF has no text layer (it looks like a scan or images of text): upload \
         a PDF with selectable text, or the text itself"
    )]
    NoTextLayer { file_name: String },
    #[error(
        "{file_name}: no text found in the {} (headings alone are not enough): upload a file \
         with content",
        .format.label()
    )]
    Empty { file_name: String, format: Format },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads `bytes` as the format detected from `file_name` or `content_type`.
///
/// Fails with [`ParseError::Empty`] when the file holds no text besides headings, so a successful
/// result always has at least one paragraph or FAQ pair, and no block without text.
pub fn parse(
    file_name: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ParsedDocument, ParseError> {
    let Some(format) = Format::detect(file_name, content_type) else {
        return Err(ParseError::Unsupported {
            file_name: file_name.to_owned(),
            hint: unsupported_hint(file_name),
        });
    };
    let (title, blocks) = match format {
        Format::Pdf => pdf::parse(file_name, bytes)?,
        Format::Text => (None, paragraphs(&decode_text(file_name, bytes)?)),
        Format::Markdown => markdown::parse(&decode_text(file_name, bytes)?),
        Format::Html => html::parse(&decode_text(file_name, bytes)?),
        Format::Csv => (
            None,
            faq::parse_csv(file_name, &decode_text(file_name, bytes)?)?,
        ),
        Format::Json => faq::parse_json(file_name, &decode_text(file_name, bytes)?)?,
    };
    // Readers normalise as they go; dropping blocks left empty keeps the promise above.
    let blocks: Vec<Block> = blocks.into_iter().filter(has_text).collect();
    // Headings alone produce no chunks, so a document of nothing else is as good as empty.
    if blocks.iter().all(|b| matches!(b, Block::Heading { .. })) {
        return Err(ParseError::Empty {
            file_name: file_name.to_owned(),
            format,
        });
    }
    let title = title.map(|t| normalize_line(&t)).filter(|t| !t.is_empty());
    Ok(ParsedDocument {
        format,
        title,
        blocks,
    })
}

fn has_text(block: &Block) -> bool {
    match block {
        Block::Heading { text, .. } | Block::Paragraph(text) => !text.is_empty(),
        Block::Faq { question, answer } => !question.is_empty() || !answer.is_empty(),
    }
}

/// The lowercase extension of the last path component, if it has one.
fn extension(file_name: &str) -> Option<String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (_, ext) = base.rsplit_once('.')?;
    Some(ext.trim().to_ascii_lowercase())
}

/// Advice for a file type the knowledge base does not read, naming the usual way out.
fn unsupported_hint(file_name: &str) -> String {
    const READ: &str = "upload .txt, .md, .html, .pdf, .csv or .json";
    match extension(file_name).as_deref() {
        Some("doc" | "docx" | "odt" | "rtf" | "pages") => {
            format!("save the document as PDF or plain text, then {READ}")
        }
        Some("xls" | "xlsx" | "ods" | "numbers") => {
            format!("export the sheet as CSV with \"question\" and \"answer\" columns, or {READ}")
        }
        Some("ppt" | "pptx" | "odp" | "key") => format!("export the slides as PDF, or {READ}"),
        Some("png" | "jpg" | "jpeg" | "gif" | "webp" | "tif" | "tiff" | "bmp" | "heic") => {
            format!("images are not read; {READ} with the text")
        }
        _ => READ.to_owned(),
    }
}

/// Decodes a text file: UTF-8 (a byte-order mark is dropped), or UTF-16 when it starts with a
/// UTF-16 byte-order mark, as Windows editors write it. Anything else is an error rather than a
/// lossy guess, so a mis-encoded upload is caught before its garbled text is indexed.
fn decode_text(file_name: &str, bytes: &[u8]) -> Result<String, ParseError> {
    let not_utf8 = || ParseError::NotUtf8 {
        file_name: file_name.to_owned(),
    };
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| not_utf8());
    }
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        let pairs = rest.chunks_exact(2);
        if !pairs.remainder().is_empty() {
            return Err(not_utf8());
        }
        let units = pairs.map(|p| from([p[0], p[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| not_utf8())
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| not_utf8())
}

/// Plain text split into paragraphs on blank lines.
fn paragraphs(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    // Joined first, or "\r\n" would read as two line breaks around an empty line.
    let text = text.replace("\r\n", "\n");
    for line in text.split(is_line_break) {
        if line.trim().is_empty() {
            push_paragraph(&mut blocks, &current);
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_paragraph(&mut blocks, &current);
    blocks
}

/// Appends `text` as a normalised paragraph unless it has no text.
fn push_paragraph(blocks: &mut Vec<Block>, text: &str) {
    let text = normalize_block(text);
    if !text.is_empty() {
        blocks.push(Block::Paragraph(text));
    }
}

/// Characters that end a line. `\r\n` splits twice, which only yields an empty line that
/// normalisation drops.
pub(crate) fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// White space, and control characters, which are treated like it.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Normalises multi-line text: each line's white space collapsed to single spaces and trimmed,
/// empty lines dropped, lines joined with `\n`. Idempotent.
pub(crate) fn normalize_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split(is_line_break) {
        let mut words = line.split(is_space).filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// Normalises text to one line: all white space, line breaks included, becomes single spaces.
/// Idempotent.
pub(crate) fn normalize_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(is_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests;
