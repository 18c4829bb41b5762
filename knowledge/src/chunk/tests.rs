use super::*;
use crate::parse::{Format, ParsedDocument};
use crate::promises::check_chunks as check;

fn doc(blocks: Vec<Block>) -> ParsedDocument {
    ParsedDocument {
        format: Format::Text,
        title: None,
        blocks,
    }
}

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

fn cfg(max_chars: usize, overlap_chars: usize) -> ChunkConfig {
    ChunkConfig::new(max_chars, overlap_chars).unwrap()
}

fn len(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn config_is_validated() {
    let default = ChunkConfig::default();
    assert_eq!((default.max_chars, default.overlap_chars), (1000, 150));
    assert!(ChunkConfig::new(100, 49).is_ok());
    assert_eq!(
        ChunkConfig::new(99, 0).unwrap_err(),
        ChunkConfigError::TooSmall { max_chars: 99 }
    );
    let err = ChunkConfig::new(200, 100).unwrap_err();
    assert_eq!(
        err,
        ChunkConfigError::OverlapTooLarge {
            max_chars: 200,
            overlap_chars: 100
        }
    );
    assert!(err.to_string().contains("under half"));
    assert!(ChunkConfig::new(usize::MAX, usize::MAX).is_err());
}

#[test]
fn out_of_range_fields_are_clamped_not_fatal() {
    let d = doc(vec![para(
        "one two three four five six seven eight nine ten",
    )]);
    for config in [
        ChunkConfig {
            max_chars: 0,
            overlap_chars: 0,
        },
        ChunkConfig {
            max_chars: 3,
            overlap_chars: 10,
        },
        ChunkConfig {
            max_chars: 12,
            overlap_chars: 12,
        },
    ] {
        let chunks = chunk_document(&d, &config);
        assert!(!chunks.is_empty());
        let plain: Vec<char> = plain_text(&d).chars().collect();
        for c in &chunks {
            let span: String = plain[c.char_start..c.char_end].iter().collect();
            assert_eq!(c.text, span);
        }
    }
}

#[test]
fn plain_text_joins_normalised_blocks() {
    let d = doc(vec![
        heading(1, "  Guide "),
        para("First  paragraph\n\n\nstill first"),
        faq("Price?", "From AED 17,900.\nFinancing too."),
        para("   "),
        heading(2, "Next"),
        para("Last."),
    ]);
    assert_eq!(
        plain_text(&d),
        "Guide\n\nFirst paragraph\nstill first\n\nPrice?\nFrom AED 17,900.\nFinancing too.\n\n\
         Next\n\nLast."
    );
    assert_eq!(plain_text(&doc(vec![])), "");
    assert!(chunk_document(&doc(vec![]), &ChunkConfig::default()).is_empty());
}

#[test]
fn headings_form_the_path_and_are_not_chunks() {
    let d = doc(vec![
        para("Before any heading."),
        heading(1, "Installation"),
        para("Intro."),
        heading(2, "Roof types"),
        para("Flat roofs."),
        heading(3, "Tiles"),
        para("Clay tiles."),
        heading(2, "Wiring"),
        para("Inverters."),
        heading(1, "Pricing"),
        para("From AED 17,900."),
        heading(3, "Skipped level"),
        para("Deep."),
    ]);
    let chunks = check(&d, &ChunkConfig::default());
    let got: Vec<(&str, Vec<&str>)> = chunks
        .iter()
        .map(|c| {
            (
                c.text.as_str(),
                c.heading_path.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Before any heading.", vec![]),
            ("Intro.", vec!["Installation"]),
            ("Flat roofs.", vec!["Installation", "Roof types"]),
            ("Clay tiles.", vec!["Installation", "Roof types", "Tiles"]),
            ("Inverters.", vec!["Installation", "Wiring"]),
            ("From AED 17,900.", vec!["Pricing"]),
            ("Deep.", vec!["Pricing", "Skipped level"]),
        ]
    );
}

#[test]
fn paragraphs_of_a_section_are_packed_up_to_the_limit() {
    let sentence = "Panels last twenty five years.";
    let paragraphs: Vec<Block> = (0..10).map(|_| para(sentence)).collect();
    let mut blocks = vec![heading(1, "A")];
    blocks.extend(paragraphs.clone());
    blocks.push(heading(1, "B"));
    blocks.extend(paragraphs);
    let d = doc(blocks);
    let chunks = check(&d, &cfg(200, 0));
    // 30 characters a paragraph plus 2 between: six fit in 200.
    let counts: Vec<usize> = chunks
        .iter()
        .map(|c| c.text.split("\n\n").count())
        .collect();
    assert_eq!(counts, [6, 4, 6, 4]);
    assert!(chunks[..2].iter().all(|c| c.heading_path == ["A"]));
    assert!(chunks[2..].iter().all(|c| c.heading_path == ["B"]));
}

#[test]
fn oversized_paragraphs_split_at_sentences_then_words() {
    let text = "Solar panels turn light into power. Inverters convert it for the home! \
                Batteries store the surplus? Net metering sells the rest back to the grid. "
        .repeat(8);
    let d = doc(vec![para(&text)]);
    let chunks = check(&d, &cfg(150, 0));
    assert!(chunks.len() > 4);
    for c in &chunks {
        assert!(
            c.text.ends_with(['.', '!', '?']),
            "not cut at a sentence end: {:?}",
            c.text
        );
    }
    // One run-on sentence has only word boundaries.
    let words = "word ".repeat(100) + "end";
    let chunks = check(&doc(vec![para(&words)]), &cfg(100, 0));
    for c in &chunks {
        assert!(
            c.text.split(' ').all(|w| w == "word" || w == "end"),
            "{:?}",
            c.text
        );
    }
}

#[test]
fn arabic_is_cut_only_between_words_and_fully_covered() {
    let text = "نقدم خدمات تركيب الألواح الشمسية للمنازل والشركات. هل تريد عرض سعر؟ \
                نعم، نقدم التمويل بالتقسيط على ستين شهراً۔ تبدأ الأسعار من ١٧٬٩٠٠ درهم. "
        .repeat(12);
    let d = doc(vec![heading(1, "الطاقة الشمسية"), para(&text)]);
    for config in [
        cfg(100, 0),
        cfg(100, 30),
        cfg(250, 60),
        ChunkConfig::default(),
    ] {
        let chunks = check(&d, &config);
        let plain: Vec<char> = plain_text(&d).chars().collect();
        for c in &chunks {
            assert_eq!(c.heading_path, ["الطاقة الشمسية"]);
            // Whole words: white space (or the text's edge) on both sides of every chunk.
            assert!(plain[c.char_start - 1].is_whitespace(), "{:?}", c.text);
            assert!(
                c.char_end == plain.len() || plain[c.char_end].is_whitespace(),
                "{:?}",
                c.text
            );
        }
        // Without overlap the chunks, joined, are the text.
        if config.overlap_chars == 0 {
            let joined = chunks
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(
                joined.split_whitespace().collect::<Vec<_>>(),
                text.split_whitespace().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn chunks_overlap_at_sentence_or_word_starts() {
    let text = (1..=40)
        .map(|i| format!("Sentence number {i} is here."))
        .collect::<Vec<_>>()
        .join(" ");
    let d = doc(vec![para(&text)]);
    let config = cfg(200, 60);
    let chunks = check(&d, &config);
    assert!(chunks.len() > 3);
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.char_start < a.char_end, "no overlap: {a:?} {b:?}");
        assert!(a.char_end - b.char_start <= 60);
        assert!(b.char_start > a.char_start);
        // Sentences are about 28 characters, so one always starts inside the window.
        assert!(b.text.starts_with("Sentence"), "{:?}", b.text);
    }
    // Overlap never crosses a heading.
    let d = doc(vec![para(&text), heading(2, "Next"), para(&text)]);
    let chunks = check(&d, &config);
    let first_next = chunks
        .iter()
        .position(|c| c.heading_path == ["Next"])
        .unwrap();
    assert_eq!(chunks[first_next].text, chunks[0].text);
}

#[test]
fn faq_pairs_stay_whole_and_alone() {
    let long_answer = "Yes, we install on villas and warehouses. ".repeat(6);
    let d = doc(vec![
        para("Short intro."),
        faq("Do you install?", &long_answer),
        faq("Price?", "From AED 17,900."),
        para("Short outro."),
    ]);
    let config = cfg(100, 20);
    let chunks = check(&d, &config);
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Short intro.",
            format!("Do you install?\n{}", long_answer.trim()).as_str(),
            "Price?\nFrom AED 17,900.",
            "Short outro.",
        ]
    );
    // Longer than max_chars, within 4 × max_chars: still one chunk.
    assert!(len(texts[1]) > 100 && len(texts[1]) <= 400);
}

#[test]
fn oversized_faq_pairs_split_with_the_question_repeated() {
    let answer = (1..=60)
        .map(|i| format!("Step {i} of the process."))
        .collect::<Vec<_>>()
        .join(" ");
    let question = "How is a system installed?";
    let d = doc(vec![heading(1, "FAQ"), faq(question, &answer)]);
    let chunks = check(&d, &cfg(200, 40));
    assert!(chunks.len() > 6);
    let plain: Vec<char> = plain_text(&d).chars().collect();
    let answer_start = len("FAQ\n\n") + len(question) + 1;
    for (i, c) in chunks.iter().enumerate() {
        assert!(c.text.starts_with(&format!("{question}\n")));
        assert!(len(&c.text) <= 200);
        assert_eq!(c.heading_path, ["FAQ"]);
        let span: String = plain[c.char_start..c.char_end].iter().collect();
        if i == 0 {
            assert_eq!(c.text, span);
        } else {
            assert!(c.char_start >= answer_start);
            assert_eq!(c.text, format!("{question}\n{span}"));
            assert!(span.starts_with("Step"), "{span:?}");
        }
    }
    // The parts cover the answer without overlap.
    for pair in chunks.windows(2) {
        assert!(pair[1].char_start >= pair[0].char_end);
    }
    assert_eq!(chunks.last().unwrap().char_end, plain.len());
}

#[test]
fn text_without_spaces_is_cut_between_graphemes() {
    // Chinese has no spaces but Unicode word boundaries between ideographs.
    let chinese = "太阳能电池板把光变成电。".repeat(40);
    check(&doc(vec![para(&chinese)]), &cfg(100, 20));
    // An emoji family is one grapheme of seven characters.
    let family = "👩‍👩‍👧‍👦".repeat(60);
    let chunks = check(&doc(vec![para(&family)]), &cfg(100, 20));
    assert!(chunks.len() > 1);
    // A long URL is one word: it is cut, but not inside a character or grapheme.
    let url = format!("See https://example.com/{} now.", "abc".repeat(100));
    check(&doc(vec![para(&url)]), &cfg(100, 0));
    // Letters with many combining marks.
    let marked = "بِسْمِ ".repeat(50) + &"e\u{301}\u{302}".repeat(80);
    check(&doc(vec![para(&marked)]), &cfg(100, 10));
}

#[test]
fn hand_built_documents_are_normalised_consistently() {
    let d = doc(vec![
        heading(1, "  Title\nwith break "),
        para("  lots   of\t\tspace \r\n\r\n\r\n and lines  "),
        faq("  Q? ", "  "),
        faq("", " just an answer "),
        para(""),
    ]);
    let chunks = check(&d, &cfg(100, 10));
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["lots of space\nand lines", "Q?", "just an answer"]);
    assert_eq!(chunks[0].heading_path, ["Title with break"]);
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "solar",
    "panel",
    "inverter",
    "kWp",
    "17,900",
    "AED",
    "e.g.",
    "(roof)",
    "«quote»",
    "مرحبا",
    "بكم",
    "الطاقة",
    "الشمسية",
    "للمنازل",
    "بِسْمِ",
    "١٧٬٩٠٠",
    "👍",
    "👩‍👩‍👧‍👦",
    "🇦🇪",
    "naïve",
    "café",
    "x",
    "👋hi",
    "日本語",
];
const ENDS: &[&str] = &["", "", "", "", ".", "!", "?", "؟", "۔", ",", "…", "\n"];

fn random_text(rng: &mut Rng, words: usize) -> String {
    let mut text = String::new();
    for _ in 0..words {
        text.push_str(rng.pick(WORDS));
        text.push_str(rng.pick(ENDS));
        text.push_str(rng.pick(&[" ", " ", " ", "  ", "\t", " \u{a0}"]));
    }
    text
}

#[test]
fn random_documents_keep_every_promise() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for round in 0..300 {
        let mut blocks = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            blocks.push(match rng.below(6) {
                0 => heading(rng.below(4) as u8 + 1, &random_text(&mut rng, 3)),
                1 => {
                    let (q, a) = (rng.below(8) + 1, rng.below(300));
                    faq(&random_text(&mut rng, q), &random_text(&mut rng, a))
                }
                _ => {
                    let words = if rng.below(4) == 0 {
                        rng.below(800)
                    } else {
                        rng.below(60)
                    };
                    para(&random_text(&mut rng, words))
                }
            });
        }
        let d = doc(blocks);
        let max = 100 + rng.below(400);
        let overlap = rng.below(max / 2);
        let config = cfg(max, overlap);
        let chunks = check(&d, &config);
        // Within a section, consecutive chunks move forward and overlap by at most the limit.
        for pair in chunks.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(b.char_start > a.char_start, "round {round}");
            if a.heading_path == b.heading_path && b.char_start < a.char_end {
                assert!(a.char_end - b.char_start <= overlap, "round {round}");
            }
        }
    }
}

#[test]
fn chunking_is_linear_in_practice() {
    // 2 MB of text in one paragraph: a quadratic step would take minutes.
    let text = "نقدم خدمات تركيب الألواح الشمسية. Solar panels save money! ".repeat(35_000);
    let d = doc(vec![para(&text)]);
    let started = std::time::Instant::now();
    let chunks = chunk_document(&d, &ChunkConfig::default());
    assert!(chunks.len() > 2_000);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn a_space_that_belongs_to_the_cluster_before_it_is_never_the_end_of_a_chunk() {
    // U+0602 (an Arabic prepended mark) joins the character after it into one grapheme
    // cluster, even a space: trimming that space off a chunk's end would cut the cluster (found
    // by the `documents` fuzz target).
    let text = "word di\u{602} بكم ".repeat(40);
    let doc = ParsedDocument {
        format: Format::Text,
        title: None,
        blocks: vec![Block::Paragraph(text)],
    };
    for max in ChunkConfig::MIN_MAX_CHARS..ChunkConfig::MIN_MAX_CHARS + 40 {
        for overlap in [0, max / 3] {
            check(&doc, &ChunkConfig::new(max, overlap).unwrap());
        }
    }
}
