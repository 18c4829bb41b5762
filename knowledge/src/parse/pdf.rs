//! PDF text read with `lopdf`.
//!
//! lopdf parses the file, decrypts it when it opens with an empty password (owner-password
//! "protection" only), and decodes font encodings (standard encodings, `Differences` and
//! `ToUnicode` maps). The walk over each page's content stream is ours, because lopdf's own
//! `extract_text` glues text positioned by `Td`/`Tm` together without a space or line break: we
//! track the text position through `cm`, `Tm`, `Td`, `TD`, `T*` and `TJ` offsets, and turn a move
//! to another line into a line break, a large vertical gap or a jump upwards into a paragraph
//! break, and a move along the line or a wide `TJ` gap into a space. Text inside form XObjects
//! (`Do`) is not read, and text a PDF stores in visual rather than logical order (some
//! right-to-left writers do) comes out in that order.
//!
//! A hostile file must not take the process down: the whole read runs under `catch_unwind`, a
//! panic becomes [`ParseError::Malformed`] (its message still goes to the panic hook, which is
//! how it gets logged), and decompression is bounded per stream. lopdf also bounds the nesting
//! depth of objects, so deep nesting cannot overflow the stack, which `catch_unwind` could not
//! catch.

use std::collections::BTreeMap;
use std::panic::catch_unwind;

use lopdf::content::Content;
use lopdf::{Document, Encoding, LoadOptions, Object, ObjectId};
use unicode_normalization::UnicodeNormalization;

use super::{normalize_block, Block, Format, ParseError};

/// The most any one stream may decompress to: far above real pages and fonts, far below what a
/// small crafted file could otherwise inflate to.
const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// The document's title (from its metadata) and one paragraph per block of text on each page.
pub(super) fn parse(
    file_name: &str,
    bytes: &[u8],
) -> Result<(Option<String>, Vec<Block>), ParseError> {
    let outcome = catch_unwind(|| read(bytes)).unwrap_or_else(|_| {
        Err(Failure::Malformed(
            "the PDF reader could not make sense of its structure".to_owned(),
        ))
    });
    outcome.map_err(|failure| match failure {
        Failure::Encrypted => ParseError::Encrypted {
            file_name: file_name.to_owned(),
        },
        Failure::NoText => ParseError::NoTextLayer {
            file_name: file_name.to_owned(),
        },
        Failure::Malformed(reason) => ParseError::Malformed {
            file_name: file_name.to_owned(),
            format: Format::Pdf,
            reason,
        },
    })
}

enum Failure {
    Encrypted,
    NoText,
    Malformed(String),
}

fn read(bytes: &[u8]) -> Result<(Option<String>, Vec<Block>), Failure> {
    if !bytes.starts_with(b"%PDF") && !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Err(Failure::Malformed(
            "it does not start like a PDF".to_owned(),
        ));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_DECOMPRESSED),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| match e {
        lopdf::Error::InvalidPassword
        | lopdf::Error::Decryption(_)
        | lopdf::Error::UnsupportedSecurityHandler(_) => Failure::Encrypted,
        other => Failure::Malformed(other.to_string()),
    })?;
    // Loading succeeds without decrypting when the file needs a password to open.
    if doc.trailer.has(b"Encrypt") && !doc.was_encrypted() {
        return Err(Failure::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(Failure::Malformed("it has no pages".to_owned()));
    }
    let mut blocks = Vec::new();
    let mut first_error = None;
    for page_id in pages.into_values() {
        match page_text(&doc, page_id) {
            Ok(text) => blocks.extend(
                // NFKC turns the presentation forms Arabic text often comes out in (one code
                // point per shaped glyph) back into letters, and ligatures like "ﬁ" into "fi",
                // so the text matches what people type.
                text.nfkc()
                    .collect::<String>()
                    .split("\n\n")
                    .map(normalize_block)
                    .filter(|p| !p.is_empty())
                    .map(Block::Paragraph),
            ),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if blocks.is_empty() {
        return Err(match first_error {
            Some(e) => Failure::Malformed(e.to_string()),
            None => Failure::NoText,
        });
    }
    Ok((title(&doc), blocks))
}

/// The `/Title` of the document information dictionary.
fn title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let (_, title) = doc.dereference(title).ok()?;
    lopdf::decode_text_string(title).ok()
}

/// The text of one page: lines separated by `\n`, blocks of lines by `\n\n`.
fn page_text(doc: &Document, page_id: ObjectId) -> Result<String, lopdf::Error> {
    // A font whose encoding cannot be read leaves its text out rather than failing the page.
    let encodings: BTreeMap<Vec<u8>, Encoding> = doc
        .get_page_fonts(page_id)?
        .into_iter()
        .filter_map(|(name, font)| {
            let encoding = font.get_font_encoding_with_limit(doc, MAX_DECOMPRESSED);
            encoding.ok().map(|e| (name, e))
        })
        .collect();
    let content = doc.get_page_content_with_limit(page_id, MAX_DECOMPRESSED)?;
    let content = Content::decode(&content)?;
    let mut walker = TextWalker::new(&encodings);
    for op in &content.operations {
        walker.operation(&op.operator, &op.operands);
    }
    Ok(walker.out)
}

/// An affine transformation `[a b c d e f]`, as PDF writes them.
type Matrix = [f32; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `m` then `n`: the matrix product `m × n` in PDF's row-vector convention.
fn multiply(m: &Matrix, n: &Matrix) -> Matrix {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

/// Follows a content stream's text state far enough to tell where lines and words break.
struct TextWalker<'a> {
    encodings: &'a BTreeMap<Vec<u8>, Encoding<'a>>,
    encoding: Option<&'a Encoding<'a>>,
    out: String,
    ctm: Matrix,
    saved: Vec<Matrix>,
    /// Text matrix and text line matrix.
    tm: Matrix,
    tlm: Matrix,
    font_size: f32,
    leading: f32,
    /// Where the last text shown sat: its baseline in device space and its font size there.
    last_line: Option<(f32, f32)>,
    /// Whether the position moved since text was last shown, so the next text is a new word.
    moved: bool,
}

impl<'a> TextWalker<'a> {
    fn new(encodings: &'a BTreeMap<Vec<u8>, Encoding<'a>>) -> Self {
        Self {
            encodings,
            encoding: None,
            out: String::new(),
            ctm: IDENTITY,
            saved: Vec::new(),
            tm: IDENTITY,
            tlm: IDENTITY,
            font_size: 1.0,
            leading: 0.0,
            last_line: None,
            moved: false,
        }
    }

    fn operation(&mut self, operator: &str, operands: &[Object]) {
        let num = |i: usize| operands.get(i).and_then(|o| o.as_float().ok());
        match operator {
            "q" => self.saved.push(self.ctm),
            "Q" => self.ctm = self.saved.pop().unwrap_or(IDENTITY),
            "cm" => {
                if let Some(m) = matrix(operands) {
                    self.ctm = multiply(&m, &self.ctm);
                }
            }
            "BT" => {
                self.tm = IDENTITY;
                self.tlm = IDENTITY;
                self.moved = true;
            }
            "Tf" => {
                self.encoding = operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|name| self.encodings.get(name));
                if let Some(size) = num(1) {
                    self.font_size = size;
                }
            }
            "TL" => self.leading = num(0).unwrap_or(self.leading),
            "Td" | "TD" => {
                let (tx, ty) = (num(0).unwrap_or(0.0), num(1).unwrap_or(0.0));
                if operator == "TD" {
                    self.leading = -ty;
                }
                self.move_line(tx, ty);
            }
            "Tm" => {
                if let Some(m) = matrix(operands) {
                    self.tm = m;
                    self.tlm = m;
                    self.moved = true;
                }
            }
            "T*" => self.move_line(0.0, -self.leading),
            "Tj" => self.show(operands.first()),
            "'" => {
                self.move_line(0.0, -self.leading);
                self.show(operands.first());
            }
            "\"" => {
                self.move_line(0.0, -self.leading);
                self.show(operands.get(2));
            }
            "TJ" => {
                let Some(Object::Array(items)) = operands.first() else {
                    return;
                };
                for item in items {
                    match item {
                        Object::String(..) => self.show(Some(item)),
                        // Offsets are in thousandths of the font size; a gap of a fifth of it
                        // or more is a word space that the text itself does not carry.
                        other if other.as_float().is_ok_and(|gap| gap < -200.0) => {
                            self.moved = true
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn move_line(&mut self, tx: f32, ty: f32) {
        self.tlm = multiply(&[1.0, 0.0, 0.0, 1.0, tx, ty], &self.tlm);
        self.tm = self.tlm;
        self.moved = true;
    }

    fn show(&mut self, operand: Option<&Object>) {
        let (Some(encoding), Some(Object::String(bytes, _))) = (self.encoding, operand) else {
            return;
        };
        let Ok(text) = encoding.bytes_to_string(bytes) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let device = multiply(&self.tm, &self.ctm);
        let baseline = device[5];
        let size = (self.font_size * device[2].hypot(device[3])).abs().max(1.0);
        if let Some((last_baseline, last_size)) = self.last_line {
            let drop = last_baseline - baseline;
            let size = size.max(last_size);
            if drop > 1.7 * size || drop < -0.5 * size {
                // A wide gap between lines, or a jump back up (a new column): a new block.
                self.out.push_str("\n\n");
            } else if drop > 0.5 * size {
                self.out.push('\n');
            } else if self.moved
                && !self.out.ends_with(char::is_whitespace)
                && !text.starts_with(char::is_whitespace)
            {
                self.out.push(' ');
            }
        }
        self.out.push_str(&text);
        self.last_line = Some((baseline, size));
        self.moved = false;
    }
}

/// Six numbers as a matrix, when the operands are that.
fn matrix(operands: &[Object]) -> Option<Matrix> {
    let mut m = IDENTITY;
    if operands.len() != 6 {
        return None;
    }
    for (slot, operand) in m.iter_mut().zip(operands) {
        *slot = operand.as_float().ok()?;
    }
    Some(m)
}
