//! The prompt template renderer: an admin's prompt version (persona, instructions, guardrails,
//! a channel style — `minijinja` templates) rendered into the system prompt with a turn's
//! customer name, knowledge passages and summary, as `agent::validate` does when a version is
//! saved and `agent::render_system_prompt` on every turn.
//!
//! The input is a list of fields separated by the byte 0x1E: persona, instructions,
//! guardrails, the channel's style, the channel kind (`webchat` unless it names another), the
//! business name, the customer's name, the summary, flags (`ar`: Arabic; `u`: unverified
//! sender), then knowledge titles and texts by pairs. Missing fields are empty. Asserted for every input (libFuzzer's time and memory
//! limits assert the rest: whatever the templates, rendering is quick and small):
//! - the system prompt is no longer than the admin fields' cap allows around the frame and
//!   the turn's data, and begins with the instruction part that leak detection compares;
//! - when the admin's templates hold no `<`, `>` or `\` (so cannot write tags themselves),
//!   every knowledge passage, title, summary and customer name stays inside its block: after
//!   the instructions, one `<untrusted_knowledge>` block with one `<passage>` per passage, at
//!   most one summary block, and nothing else that looks like them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use switchboard_prompts::agent::{
    leaks_system_prompt, render_system_prompt, validate, KnowledgeItem, PromptBody, PromptContext,
    CHANNEL_KINDS,
};
use switchboard_prompts::Lang;

/// The most characters one rendered admin field keeps (`agent::MAX_FIELD_CHARS`).
const MAX_FIELD_CHARS: usize = 16_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\u{1e}');
    let mut next = || fields.next().unwrap_or("");
    let (persona, instructions, guardrails, style) = (next(), next(), next(), next());
    let channel = next();
    // The channel comes from the channel's kind, never from a customer or an admin.
    let channel = CHANNEL_KINDS
        .iter()
        .find(|k| **k == channel)
        .copied()
        .unwrap_or("webchat");
    let (tenant_name, customer_name, summary, flags) = (next(), next(), next(), next());
    let mut knowledge = Vec::new();
    loop {
        let (title, text) = (next(), next());
        if title.is_empty() && text.is_empty() {
            break;
        }
        knowledge.push(KnowledgeItem {
            title: title.to_owned(),
            text: text.to_owned(),
        });
    }
    let body = PromptBody {
        persona: persona.to_owned(),
        instructions: instructions.to_owned(),
        guardrails: guardrails.to_owned(),
        channel_styles: BTreeMap::from([(channel.to_owned(), style.to_owned())]),
    };
    let _ = validate(&body);
    let canary = "sb-0123456789abcdef0123456789abcdef";
    let local_time = "2026-12-07 19:30 (Monday)";
    let ctx = PromptContext {
        tenant_name,
        customer_name: (!customer_name.is_empty()).then_some(customer_name),
        channel,
        local_time,
        language: if flags.contains("ar") {
            Lang::Ar
        } else {
            Lang::En
        },
        knowledge: &knowledge,
        summary: (!summary.is_empty()).then_some(summary),
        canary,
        unverified_sender: flags.contains('u'),
    };
    let Ok(prompt) = render_system_prompt(&body, &ctx) else {
        return;
    };
    let chars = |s: &str| s.chars().count();
    let data_chars: usize = knowledge
        .iter()
        .map(|k| chars(&k.title) + chars(&k.text) + 64)
        .sum::<usize>()
        + chars(summary)
        + chars(channel)
        + 2 * 200
        + 64;
    let bound = 4 * MAX_FIELD_CHARS + 4_000 + data_chars;
    let size = chars(&prompt.system);
    assert!(
        size <= bound,
        "a system prompt of {size} characters (bound {bound})"
    );
    assert!(prompt.system.starts_with(&prompt.instructions));
    assert!(leaks_system_prompt(&prompt.system, &prompt, canary));
    let _ = leaks_system_prompt(summary, &prompt, canary);

    let admin = [persona, instructions, guardrails, style];
    if admin.iter().any(|t| t.contains(['<', '>', '\\'])) {
        return;
    }
    // The data part: what follows the instructions (whose rules name the blocks).
    let data = &prompt.system[prompt.instructions.len()..];
    let count = |needle: &str| data.matches(needle).count();
    assert_eq!(count("<untrusted_knowledge>"), 1, "{data}");
    assert_eq!(count("</untrusted_knowledge>"), 1, "{data}");
    assert_eq!(count("<passage "), knowledge.len(), "{data}");
    assert_eq!(count("</passage>"), knowledge.len(), "{data}");
    let summaries = usize::from(!summary.is_empty());
    assert_eq!(count("<conversation_summary>"), summaries, "{data}");
    assert_eq!(count("</conversation_summary>"), summaries, "{data}");
    assert!(
        !prompt.instructions.contains("<passage "),
        "data among the instructions"
    );
});
