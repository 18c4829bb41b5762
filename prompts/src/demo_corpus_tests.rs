//! Retrieval checks against excerpts of the demo tenant's documents.
//!
//! The demo tenant (`runtime/demo/tenant.json`) is what a new installation
//! shows first, so its documents must be findable by the questions people
//! actually ask. These tests copy short excerpts from two of its documents
//! (kept in sync by hand) and check that questions in each language share
//! terms with the right document after [`normalize_for_index`], and that the
//! offline responder quotes and cites it.

use std::collections::HashSet;

use crate::{normalize_for_index, offline_reply, search_terms, Lang, ReplyContext, Snippet};

fn demo_snippets() -> Vec<Snippet> {
    vec![
        Snippet {
            title: "Opening Hours and Showrooms".to_owned(),
            text: "Our Dubai showroom in Al Quoz Industrial Area 3 is open Saturday to \
                   Thursday from 8:30 am to 6:30 pm. The Abu Dhabi office on Musaffah \
                   Street 14 keeps the same opening hours but closes at 5:00 pm on \
                   Thursdays. Both locations are closed on Fridays and public holidays."
                .to_owned(),
            lang: Lang::En,
        },
        Snippet {
            title: "ساعات العمل والفروع".to_owned(),
            text: "يستقبلكم معرضنا في دبي، في منطقة القوز الصناعية 3، من السبت إلى الخميس \
                   من الساعة 8:30 صباحاً حتى 6:30 مساءً. ويعمل مكتبنا في أبوظبي، في شارع \
                   المصفح 14، بساعات العمل نفسها، إلا أنه يغلق أبوابه يوم الخميس عند الساعة \
                   الخامسة مساءً."
                .to_owned(),
            lang: Lang::Ar,
        },
        Snippet {
            title: "Battery Storage FAQ".to_owned(),
            text: "Do I need a battery? Most homes on net metering do not: the grid acts as \
                   your battery."
                .to_owned(),
            lang: Lang::En,
        },
    ]
}

/// Indexes of documents sharing at least one term with the question.
fn matching_documents(question: &str, docs: &[Snippet]) -> Vec<usize> {
    let terms = search_terms(question);
    docs.iter()
        .enumerate()
        .filter(|(_, doc)| {
            let indexed = normalize_for_index(&format!("{} {}", doc.title, doc.text));
            let words: HashSet<&str> = indexed.split(' ').collect();
            terms.iter().any(|t| words.contains(t.as_str()))
        })
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn english_question_finds_english_hours_document() {
    let docs = demo_snippets();
    assert_eq!(
        search_terms("What are your opening hours?"),
        ["opening", "hour"]
    );
    assert_eq!(
        matching_documents("What are your opening hours?", &docs),
        [0]
    );
}

#[test]
fn arabic_question_finds_arabic_hours_document() {
    let docs = demo_snippets();
    assert_eq!(search_terms("ما هي ساعات العمل؟"), ["ساعات", "عمل"]);
    assert_eq!(matching_documents("ما هي ساعات العمل؟", &docs), [1]);
    // Diacritics, a different alef and a glued conjunction still match.
    assert_eq!(matching_documents("وَمَتى تُغلِقونَ يومَ الخَميس؟", &docs), [1]);
    assert_eq!(matching_documents("عندكم فرع في ابوظبي؟", &docs), [1]);
}

#[test]
fn offline_reply_quotes_the_matching_demo_document() {
    let docs = demo_snippets();
    for (question, cited, source) in [
        (
            "What are your opening hours?",
            0,
            "Source: Opening Hours and Showrooms",
        ),
        ("ما هي ساعات العمل؟", 1, "المصدر: ساعات العمل والفروع"),
    ] {
        let reply = offline_reply(&ReplyContext {
            business_name: "Sahara Solar",
            customer_text: question,
            snippets: &docs,
        });
        assert_eq!(reply.cited.first(), Some(&cited), "{question}");
        assert!(reply.text.ends_with(source), "{}", reply.text);
    }
}
