//! Markdown (CommonMark with tables) read with `pulldown-cmark`.
//!
//! Headings become heading blocks; everything else with text becomes paragraphs: each paragraph,
//! code block and block-quoted paragraph is one, and each whole list or table is one (list items
//! on lines starting with "- ", table rows on lines with cells separated by " | "), so a list is
//! never torn from its items. Inline markup is dropped and link and image text kept; raw HTML and
//! front matter are dropped.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::{normalize_block, normalize_line, Block};

/// The document's title (its first level-1 heading) and blocks.
pub(super) fn parse(source: &str) -> (Option<String>, Vec<Block>) {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS;
    let mut collector = Collector::default();
    for event in Parser::new_ext(source, options) {
        collector.event(event);
    }
    collector.flush();
    (collector.title, collector.blocks)
}

#[derive(Default)]
struct Collector {
    blocks: Vec<Block>,
    title: Option<String>,
    /// Text of the block being read.
    buf: String,
    /// The level of the heading being read, when one is open outside any list or table.
    heading: Option<u8>,
    /// How many lists and tables are open; while any is, all text goes to one paragraph.
    containers: usize,
    /// Cells seen so far in the current table row, to place the " | " separators.
    cells: usize,
    /// Inside front matter, whose text is not content.
    metadata: bool,
}

impl Collector {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) | Event::Code(text) | Event::InlineMath(text) => {
                if !self.metadata {
                    self.buf.push_str(&text);
                }
            }
            Event::DisplayMath(text) => {
                self.buf.push('\n');
                self.buf.push_str(&text);
                self.buf.push('\n');
            }
            Event::SoftBreak => self.buf.push(' '),
            Event::HardBreak => self.buf.push('\n'),
            Event::Html(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::Rule
            | Event::TaskListMarker(_) => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } if self.containers == 0 => {
                self.flush();
                self.heading = Some(level as u8);
            }
            Tag::List(_) | Tag::Table(_) => {
                if self.containers == 0 {
                    self.flush();
                }
                self.containers += 1;
            }
            Tag::Item => self.buf.push_str("\n- "),
            Tag::TableHead | Tag::TableRow => {
                self.buf.push('\n');
                self.cells = 0;
            }
            Tag::TableCell => {
                if self.cells > 0 {
                    self.buf.push_str(" | ");
                }
                self.cells += 1;
            }
            Tag::MetadataBlock(_) => self.metadata = true,
            // Inside a list or table, blocks only separate text; outside, each is its own block.
            Tag::Heading { .. } | Tag::CodeBlock(_) if self.containers > 0 => self.buf.push('\n'),
            Tag::Paragraph | Tag::BlockQuote(_) | Tag::CodeBlock(_) | Tag::HtmlBlock => {
                if self.containers > 0 {
                    self.buf.push(' ');
                } else {
                    self.flush();
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) if self.heading.is_some() => {
                let level = self.heading.take().unwrap_or(1);
                let text = normalize_line(&self.buf);
                self.buf.clear();
                if !text.is_empty() {
                    if level == 1 && self.title.is_none() {
                        self.title = Some(text.clone());
                    }
                    self.blocks.push(Block::Heading { level, text });
                }
            }
            TagEnd::List(_) | TagEnd::Table => {
                self.containers = self.containers.saturating_sub(1);
                if self.containers == 0 {
                    self.flush();
                }
            }
            TagEnd::MetadataBlock(_) => self.metadata = false,
            TagEnd::Heading(_) | TagEnd::CodeBlock if self.containers > 0 => self.buf.push('\n'),
            TagEnd::Paragraph | TagEnd::BlockQuote(_) | TagEnd::CodeBlock | TagEnd::HtmlBlock => {
                if self.containers > 0 {
                    self.buf.push(' ');
                } else {
                    self.flush();
                }
            }
            _ => {}
        }
    }

    /// Ends the current paragraph, if it has text.
    fn flush(&mut self) {
        let text = normalize_block(&self.buf);
        self.buf.clear();
        if !text.is_empty() {
            self.blocks.push(Block::Paragraph(text));
        }
    }
}
