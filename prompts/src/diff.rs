//! Differences between two prompt versions: one unified text diff per changed field.

use serde::Serialize;
use similar::TextDiff;

use crate::agent::PromptBody;

/// The diff of one field; `unified` is empty when the field did not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldDiff {
    pub field: String,
    pub changed: bool,
    pub unified: String,
}

/// Diffs every field of `from` against `to` (channel styles one per channel), labelling the
/// sides `from_label` and `to_label`.
pub fn diff_bodies(
    from: &PromptBody,
    to: &PromptBody,
    from_label: &str,
    to_label: &str,
) -> Vec<FieldDiff> {
    let mut fields = vec![
        ("persona".to_owned(), &from.persona, &to.persona),
        (
            "instructions".to_owned(),
            &from.instructions,
            &to.instructions,
        ),
        ("guardrails".to_owned(), &from.guardrails, &to.guardrails),
    ];
    let empty = String::new();
    let mut channels: Vec<&String> = from
        .channel_styles
        .keys()
        .chain(to.channel_styles.keys())
        .collect();
    channels.sort();
    channels.dedup();
    for c in channels {
        fields.push((
            format!("channel_styles.{c}"),
            from.channel_styles.get(c).unwrap_or(&empty),
            to.channel_styles.get(c).unwrap_or(&empty),
        ));
    }
    fields
        .into_iter()
        .map(|(field, a, b)| {
            let changed = a != b;
            let unified = if changed {
                let (a, b) = (with_newline(a), with_newline(b));
                TextDiff::from_lines(&a, &b)
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{from_label}/{field}"),
                        &format!("{to_label}/{field}"),
                    )
                    .to_string()
            } else {
                String::new()
            };
            FieldDiff {
                field,
                changed,
                unified,
            }
        })
        .collect()
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_per_changed_field() {
        let a = PromptBody {
            persona: "You are helpful.".into(),
            instructions: "Line one\nLine two\n".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        b.instructions = "Line one\nLine 2\n".into();
        b.channel_styles.insert("sms".into(), "Short.".into());
        let d = diff_bodies(&a, &b, "v1", "v2");
        let by = |f: &str| d.iter().find(|x| x.field == f).unwrap().clone();
        assert!(!by("persona").changed && by("persona").unified.is_empty());
        let i = by("instructions");
        assert!(i.changed);
        assert!(i.unified.contains("--- v1/instructions"));
        assert!(i.unified.contains("-Line two\n+Line 2\n"), "{}", i.unified);
        assert!(by("channel_styles.sms").unified.contains("+Short."));
    }
}
