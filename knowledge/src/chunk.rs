//! Structure-aware chunking of a [`ParsedDocument`] into retrieval passages.
//!
//! The rules, in order of importance:
//!
//! 1. **A chunk belongs to one section.** Its `heading_path` is the stack of headings enclosing
//!    it (`["Installation", "Roof types"]`); text is never packed across a heading, and headings
//!    are not chunks themselves.
//! 2. **A FAQ pair is one chunk** ("question\nanswer"), never packed with anything else, and kept
//!    whole up to 4 × `max_chars`. Only a longer pair is split: its answer is cut at sentence
//!    (then word) boundaries into parts, and every part's text starts with the question and a
//!    newline (see [`Chunk`] for what the offsets then cover). This is the one case where a chunk
//!    may be longer than `max_chars`.
//! 3. **Otherwise a chunk has at most `max_chars` characters.** The paragraphs of a section are
//!    packed up to that; a cut goes at the strongest boundary that fits — between paragraphs,
//!    then between sentences (`.`, `!`, `?`, `؟`, `۔`, `…` followed by white space, `。！？`, or a
//!    line break), then between words (white space, or Unicode word boundaries for scripts
//!    written without spaces), then between grapheme clusters. A boundary that would leave a chunk
//!    shorter than a fifth of `max_chars` gives way to a later sentence end. So no word, no
//!    Arabic letter with its marks and no emoji sequence is ever cut, unless a single one is
//!    longer than a chunk.
//! 4. **Overlap.** A chunk after the first of its section starts up to `overlap_chars` earlier
//!    than where the previous one ended, at the earliest sentence (else word) boundary in that
//!    window, and its length including the overlap still respects `max_chars`.
//!
//! Offsets are in characters (Unicode scalar values), not bytes, into [`plain_text`], and a
//! chunk's text is exactly that span; whitespace inside it is already normalised because
//! [`plain_text`] is built from normalised blocks.

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use crate::parse::{is_line_break, normalize_block, normalize_line, Block, ParsedDocument};

/// How large chunks are. Build it with [`ChunkConfig::new`], which validates; the fields are
/// public for reading, and [`chunk_document`] clamps values that were set out of range instead
/// of failing (`max_chars` to at least 1, `overlap_chars` to below half of it).
#[derive(Clone, Copy, Debug)]
pub struct ChunkConfig {
    /// The most characters a chunk may have (FAQ pairs excepted, see the module doc).
    pub max_chars: usize,
    /// How many characters a chunk may repeat from the end of the previous one.
    pub overlap_chars: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_chars: 1000,
            overlap_chars: 150,
        }
    }
}

/// Why a [`ChunkConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkConfigError {
    #[error("chunks must allow at least {min} characters, not {max_chars}", min = ChunkConfig::MIN_MAX_CHARS)]
    TooSmall { max_chars: usize },
    #[error(
        "chunk overlap must be under half the chunk size: {overlap_chars} is too much for chunks \
         of {max_chars} characters"
    )]
    OverlapTooLarge {
        max_chars: usize,
        overlap_chars: usize,
    },
}

impl ChunkConfig {
    /// The smallest `max_chars` [`ChunkConfig::new`] accepts.
    pub const MIN_MAX_CHARS: usize = 100;

    /// A validated configuration: `max_chars` at least [`Self::MIN_MAX_CHARS`] and
    /// `overlap_chars` under half of `max_chars`.
    pub fn new(max_chars: usize, overlap_chars: usize) -> Result<Self, ChunkConfigError> {
        if max_chars < Self::MIN_MAX_CHARS {
            return Err(ChunkConfigError::TooSmall { max_chars });
        }
        if overlap_chars.saturating_mul(2) >= max_chars {
            return Err(ChunkConfigError::OverlapTooLarge {
                max_chars,
                overlap_chars,
            });
        }
        Ok(Self {
            max_chars,
            overlap_chars,
        })
    }

    /// The values actually used: out-of-range fields clamped so chunking always progresses.
    fn clamped(&self) -> (usize, usize) {
        let max = self.max_chars.max(1);
        let overlap = self.overlap_chars.min(max.saturating_sub(1) / 2);
        (max, overlap)
    }
}

/// A passage of a document, ready to be indexed.
///
/// `char_start..char_end` is a range of character (not byte) offsets into
/// [`plain_text`]`(doc)`, and `text` is exactly the characters in that range — with one
/// documented exception: the later parts of a FAQ pair too long to keep whole (over 4 ×
/// `max_chars`), whose range covers their part of the answer only, while their `text` is the
/// question, a newline, and that part (so `text` always ends with the range's characters).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chunk {
    /// 0-based order of the chunk in the document.
    pub position: usize,
    pub text: String,
    /// The enclosing headings, outermost first; empty before the first heading.
    pub heading_path: Vec<String>,
    pub char_start: usize,
    pub char_end: usize,
}

/// The canonical plain text of a document (blocks joined: headings and paragraphs separated by
/// blank lines, FAQ as "question\nanswer"); Chunk offsets are CHARACTER (not byte) offsets into
/// this string, so text[char_start..char_end] (in chars) == chunk.text for every chunk.
///
/// Block text is normalised again here (idempotently), so the promise holds for documents built
/// by hand too; blocks without text are left out.
pub fn plain_text(doc: &ParsedDocument) -> String {
    Layout::of(doc).text
}

/// Cuts a document into chunks following the rules in the module doc.
pub fn chunk_document(doc: &ParsedDocument, cfg: &ChunkConfig) -> Vec<Chunk> {
    let (max, overlap) = cfg.clamped();
    let layout = Layout::of(doc);
    let mut out = Chunks {
        text: &layout.text,
        chunks: Vec::new(),
        path: Vec::new(),
    };
    // The paragraphs of the current section not yet chunked, as a range of items.
    let mut run: Option<(usize, usize)> = None;
    for (i, item) in layout.items.iter().enumerate() {
        match &item.kind {
            Kind::Paragraph => {
                run = Some(run.map_or((i, i), |(first, _)| (first, i)));
            }
            Kind::Heading { level, text } => {
                if let Some((first, last)) = run.take() {
                    out.section(&layout.items[first], &layout.items[last], max, overlap);
                }
                while out.path.last().is_some_and(|(l, _)| l >= level) {
                    out.path.pop();
                }
                out.path.push((*level, text.clone()));
            }
            Kind::Faq { question } => {
                if let Some((first, last)) = run.take() {
                    out.section(&layout.items[first], &layout.items[last], max, overlap);
                }
                out.faq(item, question, max);
            }
        }
    }
    if let Some((first, last)) = run {
        out.section(&layout.items[first], &layout.items[last], max, overlap);
    }
    out.chunks
}

/// The plain text of a document and where each block sits in it.
struct Layout {
    text: String,
    items: Vec<Item>,
}

struct Item {
    kind: Kind,
    /// Where the block's text starts, in bytes and in characters.
    byte_start: usize,
    char_start: usize,
    byte_len: usize,
}

enum Kind {
    Heading {
        level: u8,
        text: String,
    },
    Paragraph,
    /// `question` is empty unless the pair has both halves, and so a question to repeat.
    Faq {
        question: String,
    },
}

impl Layout {
    fn of(doc: &ParsedDocument) -> Self {
        let mut layout = Layout {
            text: String::new(),
            items: Vec::with_capacity(doc.blocks.len()),
        };
        let mut chars = 0;
        for block in &doc.blocks {
            let (kind, body) = match block {
                Block::Heading { level, text } => {
                    let text = normalize_line(text);
                    let kind = Kind::Heading {
                        level: *level,
                        text: text.clone(),
                    };
                    (kind, text)
                }
                Block::Paragraph(text) => (Kind::Paragraph, normalize_block(text)),
                Block::Faq { question, answer } => {
                    let question = normalize_line(question);
                    let answer = normalize_block(answer);
                    if question.is_empty() || answer.is_empty() {
                        // Half a pair is just text; there is no question to repeat.
                        let body = question + &answer;
                        let kind = Kind::Faq {
                            question: String::new(),
                        };
                        (kind, body)
                    } else {
                        let body = format!("{question}\n{answer}");
                        (Kind::Faq { question }, body)
                    }
                }
            };
            if body.is_empty() {
                continue;
            }
            if !layout.text.is_empty() {
                layout.text.push_str("\n\n");
                chars += 2;
            }
            layout.items.push(Item {
                kind,
                byte_start: layout.text.len(),
                char_start: chars,
                byte_len: body.len(),
            });
            layout.text.push_str(&body);
            chars += body.chars().count();
        }
        layout
    }
}

/// Chunks being produced, with the heading path in force.
struct Chunks<'a> {
    text: &'a str,
    chunks: Vec<Chunk>,
    path: Vec<(u8, String)>,
}

impl Chunks<'_> {
    fn push(&mut self, text: String, char_start: usize, char_end: usize) {
        self.chunks.push(Chunk {
            position: self.chunks.len(),
            text,
            heading_path: self.path.iter().map(|(_, h)| h.clone()).collect(),
            char_start,
            char_end,
        });
    }

    /// Packs and splits the paragraphs from `first` to `last`, which follow each other in the
    /// plain text separated by blank lines only.
    fn section(&mut self, first: &Item, last: &Item, max: usize, overlap: usize) {
        let text = &self.text[first.byte_start..last.byte_start + last.byte_len];
        let segmenter = Segmenter::new(text);
        for (start, end) in segmenter.spans(max, overlap) {
            self.push(
                segmenter.slice(start, end).to_owned(),
                first.char_start + start,
                first.char_start + end,
            );
        }
    }

    /// One chunk for a FAQ pair, or parts of it when it is longer than 4 × `max`.
    fn faq(&mut self, item: &Item, question: &str, max: usize) {
        let text = &self.text[item.byte_start..item.byte_start + item.byte_len];
        let chars = text.chars().count();
        if chars <= max.saturating_mul(4) {
            self.push(text.to_owned(), item.char_start, item.char_start + chars);
            return;
        }
        // The answer follows the question and its newline; without a question, it is all.
        let (prefix_bytes, prefix_chars) = if question.is_empty() {
            (0, 0)
        } else {
            (question.len() + 1, question.chars().count() + 1)
        };
        let answer = Segmenter::new(&text[prefix_bytes..]);
        let budget = max.saturating_sub(prefix_chars).max(max / 2).max(1);
        let answer_start = item.char_start + prefix_chars;
        for (i, (start, end)) in answer.spans(budget, 0).into_iter().enumerate() {
            if i == 0 {
                // The first part starts with the question already: an exact span.
                let text = format!("{}{}", &text[..prefix_bytes], answer.slice(start, end));
                self.push(text, item.char_start, answer_start + end);
            } else if question.is_empty() {
                let text = answer.slice(start, end).to_owned();
                self.push(text, answer_start + start, answer_start + end);
            } else {
                let text = format!("{question}\n{}", answer.slice(start, end));
                self.push(text, answer_start + start, answer_start + end);
            }
        }
    }
}

/// How good a place to cut is, weakest first. A cut at index `i` ends a chunk before the
/// white space preceding character `i` and starts the next at `i`.
const CHAR: u8 = 0;
const GRAPHEME: u8 = 1;
/// A Unicode (UAX #29) word boundary not next to white space, as between CJK ideographs.
const WORD: u8 = 2;
const SPACE: u8 = 3;
const SENTENCE: u8 = 4;
const PARAGRAPH: u8 = 5;
const END: u8 = 6;

/// Characters that end a sentence when white space follows (possibly after closing quotes or
/// brackets).
const TERMINATORS: &[char] = &['.', '!', '?', '؟', '۔', '…', '。', '！', '？'];
/// Terminators that end a sentence even with no space after them, as in Chinese and Japanese.
const FULL_WIDTH_TERMINATORS: &[char] = &['。', '！', '？'];
const CLOSERS: &[char] = &[
    '"', '\'', ')', ']', '}', '»', '”', '’', '›', '」', '』', '）',
];

/// A text with the quality of every possible cut position, indexed by character.
struct Segmenter<'a> {
    text: &'a str,
    chars: Vec<char>,
    /// Byte offset of each character, and the text's length at the end.
    byte_at: Vec<usize>,
    /// `level[i]` rates a cut before character `i`; `level[len]` is [`END`].
    level: Vec<u8>,
}

impl<'a> Segmenter<'a> {
    fn new(text: &'a str) -> Self {
        let (byte_at, chars): (Vec<usize>, Vec<char>) = text.char_indices().unzip();
        let n = chars.len();
        let mut byte_at = byte_at;
        byte_at.push(text.len());
        let mut level = vec![CHAR; n + 1];

        let mut cursor = 0;
        for (b, _) in text.grapheme_indices(true) {
            level[char_index(&byte_at, &mut cursor, b)] = GRAPHEME;
        }
        let mut cursor = 0;
        for (b, _) in text.split_word_bound_indices() {
            let i = char_index(&byte_at, &mut cursor, b);
            if level[i] == GRAPHEME {
                level[i] = WORD;
            }
        }
        let mut i = 0;
        while i < n {
            if chars[i].is_whitespace() {
                let run_start = i;
                let mut line_breaks = 0;
                while i < n && chars[i].is_whitespace() {
                    line_breaks += usize::from(is_line_break(chars[i]));
                    i += 1;
                }
                if i < n && level[i] >= GRAPHEME {
                    let before = chars[..run_start]
                        .iter()
                        .rev()
                        .find(|c| !CLOSERS.contains(c));
                    level[i] = if line_breaks >= 2 {
                        PARAGRAPH
                    } else if line_breaks == 1 || before.is_some_and(|c| TERMINATORS.contains(c)) {
                        SENTENCE
                    } else {
                        SPACE
                    };
                }
            } else {
                if i > 0 && FULL_WIDTH_TERMINATORS.contains(&chars[i - 1]) && level[i] >= GRAPHEME {
                    level[i] = SENTENCE;
                }
                i += 1;
            }
        }
        level[n] = END;
        Self {
            text,
            chars,
            byte_at,
            level,
        }
    }

    fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.text[self.byte_at[start]..self.byte_at[end]]
    }

    fn is_space(&self, i: usize) -> bool {
        self.chars[i].is_whitespace()
    }

    /// Character ranges of the chunks: each at most `max` long and trimmed of white space, each
    /// after the first starting up to `overlap` characters before the previous one ended.
    /// Requires `overlap < max`; callers keep it under half.
    fn spans(&self, max: usize, overlap: usize) -> Vec<(usize, usize)> {
        let n = self.chars.len();
        let Some(mut start) = (0..n).find(|&i| !self.is_space(i)) else {
            return Vec::new();
        };
        let end = (0..n)
            .rev()
            .find(|&i| !self.is_space(i))
            .map_or(n, |i| i + 1);
        let mut spans = Vec::new();
        // Where new text starts: the next chunk must reach past it.
        let mut fresh = start;
        loop {
            if end - start <= max {
                spans.push((start, end));
                return spans;
            }
            let cut = self.best_cut(start, fresh, start + max);
            spans.push((start, self.end_before(cut)));
            if cut >= end {
                return spans;
            }
            start = self.overlap_start(start, cut, overlap);
            fresh = cut;
        }
    }

    /// The best cut after `fresh` that keeps the chunk from `start` within `limit`: the
    /// strongest boundary, the furthest of its kind; but one that leaves a chunk shorter than a
    /// fifth of the allowed length only if no sentence end (or nothing as strong) leaves a
    /// longer one.
    fn best_cut(&self, start: usize, fresh: usize, limit: usize) -> usize {
        let n = self.chars.len();
        let min_len = (limit - start) / 5;
        let mut best: Option<(u8, usize)> = None;
        let mut best_long_enough: Option<(u8, usize)> = None;
        // End of the chunk if it were cut at `c`: after the last non-space before `c`.
        let mut chunk_end = fresh + 1;
        for c in fresh + 1..=n {
            if !self.is_space(c - 1) {
                chunk_end = c;
            }
            if chunk_end > limit {
                break;
            }
            if c < n && self.is_space(c) {
                continue;
            }
            // Trimmed of its trailing white space, the chunk must still end between grapheme
            // clusters: a space can belong to the cluster before it (after a prepended mark
            // such as U+0602), and trimming it would then cut that cluster.
            if self.level[chunk_end] < GRAPHEME {
                continue;
            }
            let candidate = (self.level[c], c);
            if best.is_none_or(|(level, _)| candidate.0 >= level) {
                best = Some(candidate);
            }
            if chunk_end - start >= min_len
                && best_long_enough.is_none_or(|(level, _)| candidate.0 >= level)
            {
                best_long_enough = Some(candidate);
            }
        }
        match (best_long_enough, best) {
            // A longer chunk wins when its cut is as strong as the best one, or at least a
            // sentence end: a short paragraph then joins the start of the next one, but a word
            // is never cut to avoid a short chunk.
            (Some(long), Some(any)) if long.0 >= any.0.min(SENTENCE) => long.1,
            (_, Some(any)) => any.1,
            _ => fresh + 1,
        }
    }

    /// The end of the text before a cut at `cut`, white space excluded.
    fn end_before(&self, cut: usize) -> usize {
        let mut end = cut;
        while end > 0 && self.is_space(end - 1) {
            end -= 1;
        }
        end
    }

    /// Where the chunk after a cut at `cut` starts: the earliest sentence start within
    /// `overlap` characters before the cut, else the earliest word start (after white space, or
    /// a Unicode word boundary before a letter or digit, as between CJK ideographs), else the cut
    /// itself. Always after `previous`, the previous chunk's start, so chunks move forward.
    fn overlap_start(&self, previous: usize, cut: usize, overlap: usize) -> usize {
        let from = cut.saturating_sub(overlap).max(previous + 1);
        let starts_sentence = |i: usize| self.level[i] >= SENTENCE;
        let starts_word = |i: usize| {
            self.level[i] >= SPACE || (self.level[i] == WORD && self.chars[i].is_alphanumeric())
        };
        (from..cut)
            .find(|&i| !self.is_space(i) && starts_sentence(i))
            .or_else(|| (from..cut).find(|&i| !self.is_space(i) && starts_word(i)))
            .unwrap_or(cut)
    }
}

/// The index of the character at byte offset `byte`, moving `cursor` forward: offsets asked for
/// in increasing order cost linear time in all.
fn char_index(byte_at: &[usize], cursor: &mut usize, byte: usize) -> usize {
    while *cursor + 1 < byte_at.len() && byte_at[*cursor] < byte {
        *cursor += 1;
    }
    *cursor
}

#[cfg(test)]
mod tests;
