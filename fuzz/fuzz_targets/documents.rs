//! Knowledge-base uploads in the text formats — plain text, Markdown, HTML, CSV and JSON FAQ
//! files — read by `parse::parse` and cut by `chunk::chunk_document`, as the indexer does.
//!
//! The input is a name line and the file's bytes; the line is passed as both the file name and
//! the content type, so the format is detected from an extension (`faq.csv`) or a MIME type
//! (`text/html; charset=utf-8`). Asserted for every input: a document that reads keeps every
//! promise of the readers and of the chunker (`switchboard_knowledge::promises`), with chunk
//! sizes that vary with the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{chunk_config, first_line};
use switchboard_knowledge::parse::parse;
use switchboard_knowledge::promises::{check_chunks, check_document};

fuzz_target!(|data: &[u8]| {
    let (name, bytes) = first_line(data);
    let Ok(doc) = parse(name, Some(name), bytes) else {
        return;
    };
    check_document(&doc);
    check_chunks(&doc, &chunk_config(data));
});
