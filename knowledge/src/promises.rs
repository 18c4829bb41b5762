//! The promises of the document readers and of the chunker, as assertions: the unit tests and
//! the fuzz targets (`fuzz/`) check every document they make against them. Compiled for tests
//! and with the `promises` feature only; nothing in the product calls it.

use std::collections::BTreeSet;

use unicode_segmentation::UnicodeSegmentation;

use crate::chunk::{chunk_document, plain_text, Chunk, ChunkConfig};
use crate::parse::{normalize_block, normalize_line, Block, ParsedDocument};

/// Checks what [`parse`](crate::parse::parse) promises of a document it returned: at least
/// one block that is not a heading, no block without text, block text already normalised (a
/// fixed point of the normalisation the chunker applies again), a title on one line, and no
/// control character but the line feeds between the lines of a block.
pub fn check_document(d: &ParsedDocument) {
    assert!(
        d.blocks.iter().any(|b| !matches!(b, Block::Heading { .. })),
        "a document of headings alone"
    );
    let line = |text: &str| {
        assert!(!text.is_empty(), "a block without text");
        assert_eq!(normalize_line(text), text, "not normalised");
    };
    let lines = |text: &str| {
        assert_eq!(normalize_block(text), text, "not normalised");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in {text:?}"
        );
    };
    for block in &d.blocks {
        match block {
            Block::Heading { level, text } => {
                assert!((1..=6).contains(level), "heading level {level}");
                line(text);
            }
            Block::Paragraph(text) => {
                assert!(!text.is_empty(), "an empty paragraph");
                lines(text);
            }
            Block::Faq { question, answer } => {
                assert!(
                    !question.is_empty() && !answer.is_empty(),
                    "half an FAQ pair"
                );
                line(question);
                lines(answer);
            }
        }
    }
    if let Some(title) = &d.title {
        line(title);
    }
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// Character ranges of the pieces of `text` that start at the given byte offsets.
fn pieces(text: &str, starts: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = starts.map(|b| len(&text[..b])).collect();
    bounds.push(len(text));
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Chunks `d` and checks every promise that holds for any document:
/// - positions count up from 0; no chunk is empty or starts or ends with white space;
/// - a chunk's text is its span of the plain text, or, for the later parts of an oversized FAQ
///   pair, the question, a newline and the span;
/// - no chunk is longer than `max_chars` except FAQ chunks, which are at most 4 × `max_chars`
///   when whole and `max_chars` (or the question and half of `max_chars`) when split;
/// - spans start and end on grapheme cluster boundaries, and on Unicode word boundaries unless
///   the word is too long for any chunk;
/// - spans cover every non-space character of the plain text outside headings, and no heading.
pub fn check_chunks(d: &ParsedDocument, config: &ChunkConfig) -> Vec<Chunk> {
    let chunks = chunk_document(d, config);
    let plain = plain_text(d);
    let chars: Vec<char> = plain.chars().collect();
    let graphemes: BTreeSet<usize> = pieces(&plain, plain.grapheme_indices(true).map(|(b, _)| b))
        .into_iter()
        .flat_map(|(s, e)| [s, e])
        .collect();
    let words = pieces(&plain, plain.split_word_bound_indices().map(|(b, _)| b));
    let max = config.max_chars;
    let window = max - config.overlap_chars;
    let faqs: Vec<(String, String)> = d
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Faq { question, answer } => {
                Some((normalize_line(question), normalize_block(answer)))
            }
            _ => None,
        })
        .collect();
    let mut covered = vec![false; chars.len()];
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.position, i);
        assert!(!chunk.text.is_empty(), "empty chunk {i}");
        assert_eq!(chunk.text.trim(), chunk.text, "untrimmed chunk {i}");
        assert!(chunk.char_start < chunk.char_end && chunk.char_end <= chars.len());
        let span: String = chars[chunk.char_start..chunk.char_end].iter().collect();
        let faq = faqs.iter().find(|(q, a)| {
            chunk.text == format!("{q}\n{a}") || chunk.text.starts_with(&format!("{q}\n"))
        });
        if chunk.text != span {
            let (question, _) = faq.unwrap_or_else(|| panic!("chunk {i} is not its span"));
            assert_eq!(chunk.text, format!("{question}\n{span}"), "chunk {i}");
        }
        let size = len(&chunk.text);
        match faq {
            Some((q, a)) if chunk.text == format!("{q}\n{a}") => {
                assert!(size <= 4 * max, "whole FAQ chunk {i} has {size} chars")
            }
            Some((q, _)) => assert!(
                size <= max.max(len(q) + 1 + max / 2),
                "FAQ part {i} has {size} chars"
            ),
            None => assert!(size <= max, "chunk {i} has {size} chars, over {max}"),
        }
        for at in [chunk.char_start, chunk.char_end] {
            assert!(graphemes.contains(&at), "chunk {i} cuts a grapheme at {at}");
            if let Some(&(s, e)) = words.iter().find(|(s, e)| *s < at && at < *e) {
                assert!(
                    e - s >= window,
                    "chunk {i} cuts a short word at {at}: {span:?}"
                );
            }
        }
        covered[chunk.char_start..chunk.char_end].fill(true);
    }
    // Every non-space character outside headings is in some chunk; heading text in none.
    let mut offset = 0;
    for block in &d.blocks {
        let (text, is_heading) = match block {
            Block::Heading { text, .. } => (normalize_line(text), true),
            Block::Paragraph(text) => (normalize_block(text), false),
            Block::Faq { question, answer } => {
                let (q, a) = (normalize_line(question), normalize_block(answer));
                let text = if q.is_empty() || a.is_empty() {
                    q + &a
                } else {
                    format!("{q}\n{a}")
                };
                (text, false)
            }
        };
        if text.is_empty() {
            continue;
        }
        if offset > 0 {
            offset += 2;
        }
        for (k, c) in text.chars().enumerate() {
            let at = offset + k;
            assert_eq!(chars[at], c);
            if is_heading {
                assert!(!covered[at], "heading text at {at} is in a chunk");
            } else if !c.is_whitespace() {
                assert!(covered[at], "character {at} ({c:?}) is in no chunk");
            }
        }
        offset += len(&text);
    }
    assert_eq!(offset, chars.len());
    chunks
}
