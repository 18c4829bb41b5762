use lopdf::{
    dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream,
};

use super::*;

fn para(text: &str) -> Block {
    Block::Paragraph(text.to_owned())
}

fn heading(level: u8, text: &str) -> Block {
    Block::Heading {
        level,
        text: text.to_owned(),
    }
}

fn faq(question: &str, answer: &str) -> Block {
    Block::Faq {
        question: question.to_owned(),
        answer: answer.to_owned(),
    }
}

/// Parses a file that must read, and checks the readers' promises on it.
fn parse_ok(file_name: &str, bytes: &[u8]) -> ParsedDocument {
    let doc =
        parse(file_name, None, bytes).unwrap_or_else(|e| panic!("{file_name} did not parse: {e}"));
    crate::promises::check_document(&doc);
    doc
}

fn parse_err(file_name: &str, bytes: &[u8]) -> ParseError {
    match parse(file_name, None, bytes) {
        Ok(doc) => panic!("{file_name} parsed: {:?}", doc.blocks),
        Err(e) => e,
    }
}

#[test]
fn formats_are_detected_from_extension_then_mime_type() {
    let cases = [
        ("notes.txt", None, Some(Format::Text)),
        ("NOTES.TEXT", None, Some(Format::Text)),
        ("docs/guide.md", None, Some(Format::Markdown)),
        ("guide.markdown", None, Some(Format::Markdown)),
        ("page.HTM", None, Some(Format::Html)),
        ("page.html", None, Some(Format::Html)),
        ("report.pdf", None, Some(Format::Pdf)),
        ("faq.csv", None, Some(Format::Csv)),
        ("faq.json", None, Some(Format::Json)),
        // The extension wins over the MIME type.
        ("faq.csv", Some("text/plain"), Some(Format::Csv)),
        (
            "upload",
            Some("text/html; charset=utf-8"),
            Some(Format::Html),
        ),
        ("upload", Some("Application/PDF"), Some(Format::Pdf)),
        (
            "upload.bin",
            Some("text/csv;charset=UTF-8"),
            Some(Format::Csv),
        ),
        ("upload", Some("application/json"), Some(Format::Json)),
        ("upload", Some("text/markdown"), Some(Format::Markdown)),
        ("upload", Some("text/plain"), Some(Format::Text)),
        ("upload", Some("image/png"), None),
        ("report.docx", None, None),
        ("no-extension", None, None),
    ];
    for (name, mime, expected) in cases {
        assert_eq!(Format::detect(name, mime), expected, "{name} {mime:?}");
    }
    assert_eq!(Format::Markdown.as_str(), "markdown");
    assert_eq!(serde_json::to_string(&Format::Pdf).unwrap(), "\"pdf\"");
    let back: Format = serde_json::from_str("\"csv\"").unwrap();
    assert_eq!(back, Format::Csv);
}

#[test]
fn unsupported_files_are_refused_with_a_hint() {
    let err = parse_err("contract.docx", b"PK\x03\x04");
    assert!(matches!(err, ParseError::Unsupported { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("contract.docx: unsupported file type"),
        "{message}"
    );
    assert!(message.contains("PDF or plain text"), "{message}");
    assert!(parse_err("archive.zip", b"x")
        .to_string()
        .contains(".txt, .md"));
}

#[test]
fn text_is_split_into_paragraphs_on_blank_lines() {
    let doc = parse_ok(
        "notes.txt",
        "\u{feff}First   line\r\ncontinues here.\r\n\r\n  \t \nSecond\tparagraph.\n\n\n".as_bytes(),
    );
    assert_eq!(doc.format, Format::Text);
    assert_eq!(doc.title, None);
    assert_eq!(
        doc.blocks,
        [
            para("First line\ncontinues here."),
            para("Second paragraph.")
        ]
    );
}

#[test]
fn text_must_be_utf8_or_utf16_with_a_byte_order_mark() {
    let err = parse_err("latin1.txt", b"caf\xe9 au lait");
    assert!(matches!(err, ParseError::NotUtf8 { .. }));
    assert!(err.to_string().contains("save it as UTF-8"), "{err}");

    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("مرحبا\n\nhello".encode_utf16().flat_map(u16::to_le_bytes));
    let doc = parse_ok("windows.txt", &utf16);
    assert_eq!(doc.blocks, [para("مرحبا"), para("hello")]);

    assert!(matches!(
        parse_err("odd.txt", b"\xFF\xFEa"),
        ParseError::NotUtf8 { .. }
    ));
}

#[test]
fn empty_documents_are_an_error() {
    for (name, bytes) in [
        ("empty.txt", &b""[..]),
        ("blank.txt", b" \n\n \t"),
        ("headings.md", b"# Only a title\n\n## And a section"),
        (
            "empty.html",
            b"<html><head><title>T</title></head><body> </body></html>",
        ),
        ("empty.json", b"[]"),
        ("empty.csv", b"question,answer\n,\n"),
    ] {
        let err = parse_err(name, bytes);
        assert!(matches!(err, ParseError::Empty { .. }), "{name}: {err}");
        assert!(err.to_string().starts_with(name), "{err}");
    }
}

#[test]
fn markdown_keeps_headings_and_flattens_everything_else() {
    let source = r#"---
title: front matter is not content
---

# Solar   Guide

Intro with **bold**, _emphasis_, `code` and a [link text](https://example.com).
Soft wrapped line.

Setext section
--------------

- first item
- second item with [a link](x)
  - nested item

1. ordered one
2. ordered two

> Quoted advice.

```
fn main() {
    println!("hi");
}
```

| Panel | Price |
|-------|-------|
| 5 kWp | AED 17,900 |

<div>raw html is dropped</div>

### Deeper
Text under deeper.

# Second top level
"#;
    let doc = parse_ok("guide.md", source.as_bytes());
    assert_eq!(doc.format, Format::Markdown);
    assert_eq!(doc.title.as_deref(), Some("Solar Guide"));
    assert_eq!(
        doc.blocks,
        [
            heading(1, "Solar Guide"),
            para("Intro with bold, emphasis, code and a link text. Soft wrapped line."),
            heading(2, "Setext section"),
            para("- first item\n- second item with a link\n- nested item"),
            para("- ordered one\n- ordered two"),
            para("Quoted advice."),
            para("fn main() {\nprintln!(\"hi\");\n}"),
            para("Panel | Price\n5 kWp | AED 17,900"),
            heading(3, "Deeper"),
            para("Text under deeper."),
            heading(1, "Second top level"),
        ]
    );
}

#[test]
fn markdown_without_a_level_one_heading_has_no_title() {
    let doc = parse_ok("notes.md", b"## Section\n\nText.");
    assert_eq!(doc.title, None);
    assert_eq!(doc.blocks, [heading(2, "Section"), para("Text.")]);
}

#[test]
fn html_keeps_content_and_drops_chrome() {
    let page = r##"<!DOCTYPE html>
<html>
<head>
  <title>Solar &amp; Storage</title>
  <style>body { color: red; }</style>
  <script>var x = "<p>not text</p>";</script>
  <meta charset="utf-8">
</head>
<body>
  <nav><ul><li>Home</li><li>About</li></ul></nav>
  <h1>Install <em>guide</em></h1>
  <p>Panels cost &lt;AED&nbsp;20,000&gt; &mdash; installed.
     Line two of the same paragraph.</p>
  <div>Loose div text<br>after a break</div>
  <ul><li>First point</li><li>Second <a href="#">point</a></li></ul>
  <table><tr><th>Size</th><th>Price</th></tr><tr><td>5 kWp</td><td>17,900</td></tr></table>
  <pre>line one
  line two</pre>
  <blockquote>A quote.</blockquote>
  <noscript>Enable JavaScript</noscript>
  <h2>Questions</h2>
  <p>Unclosed paragraph
  <p>Another one
  <footer>Footer text</footer>
</body>
</html>"##;
    let doc = parse_ok("page.html", page.as_bytes());
    assert_eq!(doc.format, Format::Html);
    assert_eq!(doc.title.as_deref(), Some("Solar & Storage"));
    assert_eq!(
        doc.blocks,
        [
            heading(1, "Install guide"),
            para("Panels cost <AED 20,000> — installed. Line two of the same paragraph."),
            para("Loose div text\nafter a break"),
            para("First point"),
            para("Second point"),
            para("Size | Price"),
            para("5 kWp | 17,900"),
            para("line one\nline two"),
            para("A quote."),
            heading(2, "Questions"),
            para("Unclosed paragraph"),
            para("Another one"),
            para("Footer text"),
        ]
    );
}

#[test]
fn html_in_arabic_right_to_left_is_just_text() {
    let page = r#"<html dir="rtl" lang="ar"><head><meta charset="utf-8"></head><body>
<h1>دليل الطاقة الشمسية</h1>
<p dir="rtl">نقدم خدمات تركيب الألواح الشمسية للمنازل والشركات&#x61F; نعم&#1567;</p>
<h2>الأسعار</h2><p>تبدأ الأسعار من ١٧٬٩٠٠ درهم.</p>
</body></html>"#;
    let doc = parse_ok("ar.html", page.as_bytes());
    // No <title>: the first <h1> is the title.
    assert_eq!(doc.title.as_deref(), Some("دليل الطاقة الشمسية"));
    assert_eq!(
        doc.blocks,
        [
            heading(1, "دليل الطاقة الشمسية"),
            para("نقدم خدمات تركيب الألواح الشمسية للمنازل والشركات؟ نعم؟"),
            heading(2, "الأسعار"),
            para("تبدأ الأسعار من ١٧٬٩٠٠ درهم."),
        ]
    );
}

#[test]
fn html_garbage_never_panics() {
    for page in [
        "<<<>>><p<<h1>></h1",
        "<script>never closed",
        "<h3>unclosed heading <p>text",
        "&#xFFFFFFFF; &#0; &bogus; <p>x</p>",
        "</p></div></h2><nav></nav></nav>after",
        "<svg><svg></svg>still hidden</svg>shown",
    ] {
        let _ = parse("page.html", None, page.as_bytes());
    }
    let doc = parse_ok(
        "page.html",
        b"<svg><svg></svg>hidden</svg>shown<h3>open heading",
    );
    assert_eq!(doc.blocks, [para("shown"), heading(3, "open heading")]);
}

/// A PDF with one page per content stream, with the font resources `fonts` adds.
fn pdf(
    pages: &[Vec<u8>],
    title: Option<&str>,
    fonts: impl FnOnce(&mut Document) -> lopdf::Dictionary,
) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let fonts = fonts(&mut doc);
    let resources_id = doc.add_object(dictionary! { "Font" => fonts });
    let mut kids = Vec::new();
    for content in pages {
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.clone()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    if let Some(title) = title {
        let info_id = doc.add_object(dictionary! { "Title" => Object::string_literal(title) });
        doc.trailer.set("Info", info_id);
    }
    save(doc)
}

fn helvetica(doc: &mut Document) -> lopdf::Dictionary {
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    dictionary! { "F1" => font_id }
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// Two pages of English in the ways PDF writers position text.
fn english_pdf() -> Vec<u8> {
    let page1 = b"BT /F1 12 Tf 72 760 Td (Solar panels) Tj 0 -14 Td (save money.) Tj \
        0 -40 Td (A new paragraph after a gap.) Tj ET \
        BT /F1 12 Tf 72 600 Td [(Kerned) -300 (words)] TJ 60 0 Td (and) Tj ( more) Tj ET"
        .to_vec();
    let page2 = b"BT 12 0 0 12 72 760 Tm /F1 1 Tf (Page two,) Tj T* (same) Tj ET \
        BT /F1 12 Tf 14 TL 72 700 Td (Leading) Tj T* (next line) Tj (\\050escaped\\051) ' ET"
        .to_vec();
    pdf(&[page1, page2], Some("Solar guide"), helvetica)
}

#[test]
fn pdf_text_is_read_per_page_with_line_and_paragraph_breaks() {
    let doc = parse_ok("report.pdf", &english_pdf());
    assert_eq!(doc.format, Format::Pdf);
    assert_eq!(doc.title.as_deref(), Some("Solar guide"));
    assert_eq!(
        doc.blocks,
        [
            para("Solar panels\nsave money."),
            para("A new paragraph after a gap."),
            para("Kerned words and more"),
            // "Tm" scales the text space: T* with no leading stays on the line.
            para("Page two, same"),
            para("Leading\nnext line\n(escaped)"),
        ]
    );
}

/// A one-page PDF showing `text` in a Type0 font whose only key to Unicode is its `ToUnicode`
/// map, as PDF writers embed Arabic fonts.
fn to_unicode_pdf(text: &str) -> Vec<u8> {
    let mut unique: Vec<char> = text.chars().collect();
    unique.sort_unstable();
    unique.dedup();
    let code = |c: char| unique.iter().position(|u| *u == c).unwrap() + 1;
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CMapName /Test def\n\
         /CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    cmap.push_str(&format!("{} beginbfchar\n", unique.len()));
    for c in &unique {
        cmap.push_str(&format!("<{:04X}> <{:04X}>\n", code(*c), *c as u32));
    }
    cmap.push_str("endbfchar\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    let glyphs: String = text.chars().map(|c| format!("{:04X}", code(c))).collect();
    let content = format!("BT /F2 14 Tf 500 760 Td <{glyphs}> Tj ET").into_bytes();
    pdf(&[content], None, |doc| {
        let to_unicode = doc.add_object(Stream::new(dictionary! {}, cmap.into_bytes()));
        let descendant = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType2",
            "BaseFont" => "ArabicTest",
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
        });
        let font = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "ArabicTest",
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![descendant.into()],
            "ToUnicode" => to_unicode,
        });
        dictionary! { "F2" => font }
    })
}

#[test]
fn pdf_arabic_text_is_read_through_its_to_unicode_map() {
    let text = "مرحبا بكم في الطاقة الشمسية";
    let bytes = to_unicode_pdf(text);
    let parsed = parse_ok("arabic.pdf", &bytes);
    assert_eq!(parsed.title, None);
    assert_eq!(parsed.blocks, [para(text)]);
}

#[test]
fn pdf_presentation_forms_and_ligatures_become_plain_letters() {
    // Shaped glyphs mapped to Arabic presentation forms, and a Latin "fi" ligature.
    let parsed = parse_ok("shaped.pdf", &to_unicode_pdf("ﻣﺮﺣﺒﺎ ﺑﻜﻢ ﬁne"));
    assert_eq!(parsed.blocks, [para("مرحبا بكم fine")]);
}

#[test]
fn pdf_without_text_has_no_text_layer() {
    // A "scanned" page: only drawing operators, no text.
    let content = b"q 100 0 0 100 50 50 cm 0 0 1 1 re f Q".to_vec();
    let bytes = pdf(&[content], None, |_| dictionary! {});
    let err = parse_err("scan.pdf", &bytes);
    assert!(matches!(err, ParseError::NoTextLayer { .. }), "{err}");
    assert!(err.to_string().contains("no text layer"), "{err}");
}

fn encrypted_pdf(user_password: &str) -> Vec<u8> {
    let mut doc = Document::load_mem(&english_pdf()).unwrap();
    doc.trailer.set(
        "ID",
        Object::Array(vec![
            Object::string_literal(b"0123456789abcdef".to_vec()),
            Object::string_literal(b"fedcba9876543210".to_vec()),
        ]),
    );
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: Permissions::all(),
    })
    .unwrap();
    doc.encrypt(&state).unwrap();
    save(doc)
}

#[test]
fn pdf_with_a_password_is_refused_clearly() {
    let err = parse_err("secret.pdf", &encrypted_pdf("user"));
    assert!(matches!(err, ParseError::Encrypted { .. }), "{err}");
    assert!(err.to_string().contains("password-protected"), "{err}");
}

#[test]
fn pdf_protected_only_by_an_owner_password_is_read() {
    let doc = parse_ok("restricted.pdf", &encrypted_pdf(""));
    assert_eq!(doc.blocks[0], para("Solar panels\nsave money."));
}

#[test]
fn broken_pdfs_are_malformed_errors_not_panics() {
    let good = english_pdf();
    let mut inputs: Vec<Vec<u8>> =
        vec![
        Vec::new(),
        b"%PDF-1.7".to_vec(),
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>"
            .to_vec(),
        b"not a pdf at all".to_vec(),
        vec![0xFF; 4096],
        b"%PDF-1.4\n".iter().chain([b'['; 5000].iter()).copied().collect(),
    ];
    for cut in [10, good.len() / 4, good.len() / 2, good.len() - 30] {
        inputs.push(good[..cut].to_vec());
    }
    for input in &inputs {
        match parse("broken.pdf", None, input) {
            Err(ParseError::Malformed { format, .. }) => assert_eq!(format, Format::Pdf),
            Err(ParseError::NoTextLayer { .. }) => {}
            // A cut that only loses the trailer can still be recovered by lopdf's repair.
            Ok(doc) => assert!(!doc.blocks.is_empty()),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    let err = parse_err("report.pdf", b"garbage");
    assert!(
        err.to_string()
            .starts_with("report.pdf: not a readable PDF ("),
        "{err}"
    );
    assert!(err
        .to_string()
        .ends_with("export it again or upload the text"));
}

#[test]
fn corrupted_pdfs_never_panic_out_of_parse() {
    let good = english_pdf();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..300 {
        let mut bytes = good.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % bytes.len() as u64) as usize;
            bytes[at] = (seed >> 32) as u8;
        }
        // Whatever the outcome, it comes back as a value.
        let _ = parse("fuzz.pdf", None, &bytes);
    }
}

#[test]
fn csv_rows_become_faq_pairs() {
    let csv = "\u{feff}Question,Answer,Category\n\
        How much does it cost?,\"From AED 17,900.\nFinancing available.\",price\n\
        ,,\n\
        Do you install on villas?,Yes.,install\n";
    let doc = parse_ok("faq.csv", csv.as_bytes());
    assert_eq!(doc.format, Format::Csv);
    assert_eq!(doc.title, None);
    assert_eq!(
        doc.blocks,
        [
            faq(
                "How much does it cost?",
                "From AED 17,900.\nFinancing available."
            ),
            faq("Do you install on villas?", "Yes."),
        ]
    );
}

#[test]
fn csv_accepts_short_and_arabic_headers_and_semicolons() {
    let doc = parse_ok("q.csv", b"Q;A\nWhy?;Because.\n");
    assert_eq!(doc.blocks, [faq("Why?", "Because.")]);
    let doc = parse_ok(
        "ar.csv",
        "السؤال,الجواب\nكم التكلفة؟,تبدأ من ١٧٬٩٠٠ درهم.\n".as_bytes(),
    );
    assert_eq!(doc.blocks, [faq("كم التكلفة؟", "تبدأ من ١٧٬٩٠٠ درهم.")]);
    let doc = parse_ok("ar2.csv", " سؤال , جواب \nهل؟,نعم\n".as_bytes());
    assert_eq!(doc.blocks, [faq("هل؟", "نعم")]);
}

#[test]
fn csv_errors_name_the_headers_or_the_row() {
    let err = parse_err("faq.csv", b"Title,Body\nx,y\n");
    assert!(matches!(err, ParseError::MissingColumns { .. }));
    let message = err.to_string();
    assert!(message.contains("\"Title\", \"Body\""), "{message}");
    assert!(message.contains("\"question\" and \"answer\""), "{message}");

    let err = parse_err("faq.csv", b"question,answer\nA?,yes\n\nB?,\n");
    let message = err.to_string();
    assert!(matches!(err, ParseError::Malformed { .. }));
    // Row numbers count the blank line, as a spreadsheet shows it.
    assert!(
        message.contains("row 4 has a question but no answer"),
        "{message}"
    );

    // A quoted answer over two lines is one row.
    let err = parse_err(
        "faq.csv",
        b"question,answer\n\"Q1\",\"line1\nline2\"\nQ2,\n",
    );
    assert!(err.to_string().contains("row 3 has a question"), "{err}");

    let err = parse_err("faq.csv", b"question,answer\n,orphan answer\n");
    assert!(err
        .to_string()
        .contains("row 2 has an answer but no question"));
}

#[test]
fn json_faq_in_both_shapes() {
    let doc = parse_ok(
        "faq.json",
        br#"[{"question": "Price?", "answer": "From  AED 17,900."}, {"q": "Warranty?", "a": "25 years."}]"#,
    );
    assert_eq!(doc.title, None);
    assert_eq!(
        doc.blocks,
        [
            faq("Price?", "From AED 17,900."),
            faq("Warranty?", "25 years.")
        ]
    );

    let doc = parse_ok(
        "faq.json",
        r#"{"title": "أسئلة شائعة", "faqs": [{"Question": "كم؟", "Answer": "كثير."}]}"#.as_bytes(),
    );
    assert_eq!(doc.title.as_deref(), Some("أسئلة شائعة"));
    assert_eq!(doc.blocks, [faq("كم؟", "كثير.")]);

    let doc = parse_ok("faq.json", br#"{"items": [{"q": "a?", "a": "b"}]}"#);
    assert_eq!(doc.blocks, [faq("a?", "b")]);
}

#[test]
fn json_in_other_shapes_is_refused_clearly() {
    let cases: [(&[u8], &str); 7] = [
        (b"{not json", "invalid JSON at line 1"),
        (
            b"\"just text\"",
            "the file holds text, not a list or an object",
        ),
        (
            br#"{"questions": []}"#,
            "no \"faq\", \"faqs\" or \"items\" list (keys found: \"questions\")",
        ),
        (
            br#"{"faq": {"q": "a"}}"#,
            "the FAQ list is an object, not a list",
        ),
        (
            br#"[{"question": "a?", "answer": "b"}, 3]"#,
            "item 2 is a number",
        ),
        (
            br#"[{"question": "a?", "answer": 42}]"#,
            "item 1: the answer is a number, not text",
        ),
        (
            br#"[{"question": "a?"}]"#,
            "item 1 has a question but no answer",
        ),
    ];
    for (input, expected) in cases {
        let err = parse_err("faq.json", input);
        assert!(
            matches!(
                err,
                ParseError::Malformed {
                    format: Format::Json,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(expected), "{message}");
        assert!(
            message.starts_with("faq.json: not a readable JSON file"),
            "{message}"
        );
    }
    // Deep nesting is an error from serde_json's recursion limit, not a stack overflow.
    let deep = "[".repeat(100_000);
    assert!(matches!(
        parse_err("deep.json", deep.as_bytes()),
        ParseError::Malformed { .. }
    ));
}

#[test]
fn normalisation_is_idempotent() {
    for text in [
        "  a \t b \r\n\r\n c\u{a0}\u{a0}d \u{2028} e\u{0}f ",
        "",
        "\n\n\n",
        "مرحبا   بكم\n\n\nفي",
    ] {
        let block = normalize_block(text);
        assert_eq!(normalize_block(&block), block);
        assert!(!block.contains("\n\n") && !block.contains("  "));
        let line = normalize_line(text);
        assert_eq!(normalize_line(&line), line);
        assert!(!line.contains('\n'));
    }
    assert_eq!(normalize_block(" a \t b \r\n\r\n c "), "a b\nc");
}

#[test]
fn parsing_random_bytes_never_panics() {
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    for round in 0..200 {
        let len = (round * 37) % 700;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly markup-ish ASCII, with some high bytes.
                let alphabet = b"<>/\"'&;#[]{}:,\n -|*`=abcq\xd8\xa7\xff";
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        for name in ["x.txt", "x.md", "x.html", "x.csv", "x.json", "x.pdf"] {
            let _ = parse(name, None, &bytes);
        }
    }
}
