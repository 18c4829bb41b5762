//! `switchboard-prompts` decides what the agent says.
//!
//! Every tenant's assistant needs the same language-level building blocks,
//! whether or not a language model is available: telling English from
//! Arabic, recognising what a customer wants, turning a question into terms
//! for full-text retrieval, and composing a sensible reply from retrieved
//! knowledge when no model is configured. This crate owns those pieces. It
//! performs no IO and holds no state, so every function here is a pure,
//! deterministic transformation of its inputs that other crates can call from
//! anywhere.
//!
//! * [`detect_language`] and [`normalize_arabic`] handle the two supported
//!   languages ([`Lang`]).
//! * [`detect_intent`] classifies a message into an [`Intent`].
//! * [`search_terms`] and [`normalize_for_index`] are the two halves of the
//!   retrieval contract: queries and documents normalised the same way.
//! * [`offline_reply`] composes the deterministic responder's reply.
//! * [`agent`] renders the model-backed agent's system prompt from a prompt version
//!   (`minijinja` templates inside a fixed, injection-aware frame); [`diff`] compares versions.

pub mod agent;
pub mod booking;
pub mod diff;
pub mod handoff;
mod intent;
mod lang;
pub mod lead;
mod reply;
mod terms;
mod text;

#[cfg(test)]
mod demo_corpus_tests;

pub use intent::{detect_intent, Intent};
pub use lang::{detect_language, normalize_arabic, Lang};
pub use reply::{offline_reply, OfflineReply, ReplyContext, Snippet};
pub use terms::{normalize_for_index, search_terms};

pub use agent::{PromptBody, PromptContext, RenderedPrompt};
