//! PDF uploads to the knowledge base: `parse::parse` (lopdf, then our walk over each page's
//! content stream) and `chunk::chunk_document`, as the indexer does.
//!
//! The input is the file. Asserted for every input: a document that reads keeps every promise
//! of the readers and of the chunker (`switchboard_knowledge::promises`); libFuzzer's time and
//! memory limits assert that no file takes long or much memory to read. The reader contains
//! panics of the PDF library by design (a hostile file is refused, not fatal), so they are
//! allowed here; any other panic is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{chunk_config, contain_library_panics};
use switchboard_knowledge::parse::parse;
use switchboard_knowledge::promises::{check_chunks, check_document};

fuzz_target!(
    init: contain_library_panics(),
    |data: &[u8]| {
        let Ok(doc) = parse("upload.pdf", Some("application/pdf"), data) else {
            return;
        };
        check_document(&doc);
        check_chunks(&doc, &chunk_config(data));
    }
);
