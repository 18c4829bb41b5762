//! HTML read with the `html5gum` tokenizer.
//!
//! Text extraction needs no DOM: a WHATWG tokenizer gives tags and entity-decoded text in
//! document order, and a little state (which element we are skipping, whether a heading or `<pre>`
//! is open) is enough to cut the text into blocks. `h1`–`h6` become headings; the text between
//! block-level tags (`p`, `li`, `div`, `pre`, `blockquote`, …) becomes paragraphs; a table row
//! becomes one paragraph with its cells separated by " | ". `script`, `style`, `nav`, `noscript`,
//! `template`, `svg` and the like are dropped, and so is the `head` apart from its `<title>`.
//! Right-to-left pages need nothing special: their text is just text in logical order.

use html5gum::{DefaultEmitter, Token, Tokenizer};

use super::{normalize_block, normalize_line, Block};

/// The page's title (`<title>`, else the first `<h1>`) and blocks.
pub(super) fn parse(source: &str) -> (Option<String>, Vec<Block>) {
    let mut emitter = DefaultEmitter::default();
    // Switches to raw-text states after <script>, <style>, <title>, … so their contents are not
    // read as tags.
    emitter.naively_switch_states(true);
    let mut walker = Walker::default();
    for token in Tokenizer::new_with_emitter(source, emitter) {
        match token {
            Ok(Token::StartTag(tag)) => walker.start(&tag.name, tag.self_closing),
            Ok(Token::EndTag(tag)) => walker.end(&tag.name),
            Ok(Token::String(text)) => walker.text(&String::from_utf8_lossy(&text.value)),
            Ok(_) => {}
        }
    }
    walker.end_heading();
    walker.flush();
    let title = Some(normalize_line(&walker.title))
        .filter(|t| !t.is_empty())
        .or(walker.first_h1);
    (title, walker.blocks)
}

/// Elements whose content is never text for the knowledge base.
const SKIPPED: &[&[u8]] = &[
    b"script",
    b"style",
    b"nav",
    b"noscript",
    b"template",
    b"svg",
    b"math",
    b"iframe",
    b"object",
    b"canvas",
    b"select",
];

/// Elements that end the paragraph before them and start a new one.
const BLOCKS: &[&[u8]] = &[
    b"p",
    b"div",
    b"li",
    b"ul",
    b"ol",
    b"dl",
    b"dt",
    b"dd",
    b"pre",
    b"blockquote",
    b"section",
    b"article",
    b"aside",
    b"header",
    b"footer",
    b"main",
    b"body",
    b"table",
    b"thead",
    b"tbody",
    b"tfoot",
    b"tr",
    b"caption",
    b"figure",
    b"figcaption",
    b"form",
    b"fieldset",
    b"legend",
    b"details",
    b"summary",
    b"address",
    b"hr",
    b"center",
];

#[derive(Default)]
struct Walker {
    blocks: Vec<Block>,
    title: String,
    first_h1: Option<String>,
    /// Text of the paragraph or heading being read.
    buf: String,
    /// The level of the open heading, if any; block tags inside a heading do not split it.
    heading: Option<u8>,
    /// The skipped element we are inside, and how many of its kind are open inside it.
    skipping: Option<(Vec<u8>, usize)>,
    in_head: bool,
    in_title: bool,
    /// Open `<pre>` elements: inside one, line breaks in the source are kept.
    pre: usize,
    /// Cells seen so far in the current table row, to place the " | " separators.
    cells: usize,
}

impl Walker {
    fn start(&mut self, name: &[u8], self_closing: bool) {
        if let Some((skipped, depth)) = &mut self.skipping {
            if name == skipped.as_slice() && !self_closing {
                *depth += 1;
            }
            return;
        }
        if SKIPPED.contains(&name) {
            if !self_closing {
                self.skipping = Some((name.to_vec(), 0));
            }
            return;
        }
        match name {
            b"head" => self.in_head = true,
            b"title" => self.in_title = !self_closing,
            b"br" => self.buf.push('\n'),
            b"td" | b"th" => {
                if self.cells > 0 {
                    self.buf.push_str(" | ");
                }
                self.cells += 1;
            }
            _ => {
                if let Some(level) = heading_level(name) {
                    self.in_head = false;
                    // An unclosed heading ends where the next one starts.
                    self.end_heading();
                    self.flush();
                    self.heading = Some(level);
                } else if BLOCKS.contains(&name) {
                    // Content tags end an unclosed <head>, as they do in a browser.
                    self.in_head = false;
                    self.flush();
                    if name == b"pre" {
                        self.pre += 1;
                    }
                    if name == b"tr" {
                        self.cells = 0;
                    }
                }
            }
        }
    }

    fn end(&mut self, name: &[u8]) {
        if let Some((skipped, depth)) = &mut self.skipping {
            if name == skipped.as_slice() {
                if *depth == 0 {
                    self.skipping = None;
                } else {
                    *depth -= 1;
                }
            }
            return;
        }
        match name {
            b"head" => self.in_head = false,
            b"title" => self.in_title = false,
            b"br" => self.buf.push('\n'),
            _ => {
                if heading_level(name).is_some() {
                    self.end_heading();
                } else if BLOCKS.contains(&name) {
                    self.flush();
                    if name == b"pre" {
                        self.pre = self.pre.saturating_sub(1);
                    }
                }
            }
        }
    }

    fn text(&mut self, text: &str) {
        if self.skipping.is_some() {
            return;
        }
        if self.in_title {
            self.title.push_str(text);
        } else if self.in_head {
            // Only white space lives here in a well-formed page; stray text is not content.
        } else if self.pre > 0 {
            self.buf.push_str(text);
        } else {
            // Outside <pre>, HTML white space (line breaks included) is just a space.
            self.buf.extend(
                text.chars()
                    .map(|c| if c.is_whitespace() { ' ' } else { c }),
            );
        }
    }

    fn end_heading(&mut self) {
        let Some(level) = self.heading.take() else {
            return;
        };
        let text = normalize_line(&self.buf);
        self.buf.clear();
        if text.is_empty() {
            return;
        }
        if level == 1 && self.first_h1.is_none() {
            self.first_h1 = Some(text.clone());
        }
        self.blocks.push(Block::Heading { level, text });
    }

    /// Ends the current paragraph, if it has text; inside a heading, does nothing.
    fn flush(&mut self) {
        if self.heading.is_some() {
            return;
        }
        let text = normalize_block(&self.buf);
        self.buf.clear();
        if !text.is_empty() {
            self.blocks.push(Block::Paragraph(text));
        }
    }
}

fn heading_level(name: &[u8]) -> Option<u8> {
    match name {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}
