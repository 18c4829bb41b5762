//! FAQ files: question-and-answer pairs from CSV (one row each) or JSON (one object each).
//!
//! Column and key names are matched case-insensitively against short lists in English and
//! Arabic. A pair with only one half is an error naming its row or item, not a silent skip: an
//! unanswered question in the knowledge base is worse than a rejected upload.

use serde_json::{Map, Value};

use super::{normalize_block, normalize_line, Block, Format, ParseError};

/// Names accepted for the question column or key, compared after trimming and lowercasing.
const QUESTION_NAMES: &[&str] = &["question", "questions", "q", "سؤال", "السؤال"];
/// Names accepted for the answer column or key.
const ANSWER_NAMES: &[&str] = &[
    "answer",
    "answers",
    "a",
    "جواب",
    "الجواب",
    "إجابة",
    "الإجابة",
];
/// Keys under which a JSON object may hold its list of pairs.
const LIST_KEYS: &[&str] = &["faq", "faqs", "items"];

/// One FAQ block per row of a CSV file with a header row.
pub(super) fn parse_csv(file_name: &str, text: &str) -> Result<Vec<Block>, ParseError> {
    let malformed = |reason: String| ParseError::Malformed {
        file_name: file_name.to_owned(),
        format: Format::Csv,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(text))
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(e.to_string()))?
        .iter()
        .map(|h| {
            h.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .to_owned()
        })
        .collect();
    let column = |names: &[&str]| headers.iter().position(|h| is_one_of(h, names));
    let (Some(q), Some(a)) = (column(QUESTION_NAMES), column(ANSWER_NAMES)) else {
        return Err(ParseError::MissingColumns {
            file_name: file_name.to_owned(),
            found: headers.into_iter().filter(|h| !h.is_empty()).collect(),
        });
    };
    // Rows as a spreadsheet numbers them: the header is row 1, a blank line is an empty row,
    // and a quoted cell over several lines is still one row.
    let mut row: usize = 1;
    let mut next_line = 2 + line_breaks(reader.headers().ok());
    let mut blocks = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| malformed(e.to_string()))?;
        let line = record.position().map_or(next_line, |p| {
            // The position is where reading started, which is before any blank lines skipped.
            let skipped = text.as_bytes().get(to_usize(p.byte())..).map_or(0, |rest| {
                rest.iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .filter(|b| **b == b'\n')
                    .count()
            });
            p.line() + skipped as u64
        });
        row = row
            .saturating_add(1)
            .saturating_add(to_usize(line.saturating_sub(next_line)));
        next_line = line.saturating_add(1 + line_breaks(Some(&record)));
        let question = record.get(q).unwrap_or("");
        let answer = record.get(a).unwrap_or("");
        if let Some(block) =
            pair(question, answer).map_err(|half| malformed(format!("row {row} has {half}")))?
        {
            blocks.push(block);
        }
    }
    Ok(blocks)
}

/// One FAQ block per object of a JSON list, which is the whole document or sits under `faq`,
/// `faqs` or `items` of an object that may also have a `title`.
pub(super) fn parse_json(
    file_name: &str,
    text: &str,
) -> Result<(Option<String>, Vec<Block>), ParseError> {
    let malformed = |reason: String| ParseError::Malformed {
        file_name: file_name.to_owned(),
        format: Format::Json,
        reason,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "invalid JSON at line {}, column {}",
            e.line(),
            e.column()
        ))
    })?;
    let (title, items) = match &value {
        Value::Array(items) => (None, items),
        Value::Object(object) => {
            let Some(list) = get(object, LIST_KEYS) else {
                let keys = object
                    .keys()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>();
                return Err(malformed(format!(
                    "the object has no \"faq\", \"faqs\" or \"items\" list (keys found: {})",
                    if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    }
                )));
            };
            let Value::Array(items) = list else {
                return Err(malformed(format!(
                    "the FAQ list is {}, not a list",
                    kind(list)
                )));
            };
            let title = match get(object, &["title"]) {
                None | Some(Value::Null) => None,
                Some(Value::String(title)) => Some(title.clone()),
                Some(other) => {
                    return Err(malformed(format!("\"title\" is {}, not text", kind(other))))
                }
            };
            (title, items)
        }
        other => {
            return Err(malformed(format!(
                "the file holds {}, not a list or an object",
                kind(other)
            )))
        }
    };
    let mut blocks = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let n = index + 1;
        let Value::Object(object) = item else {
            return Err(malformed(format!(
                "item {n} is {}, not an object with \"question\" and \"answer\"",
                kind(item)
            )));
        };
        let text_of = |names: &[&str], what: &str| match get(object, names) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(malformed(format!(
                "item {n}: the {what} is {}, not text",
                kind(other)
            ))),
        };
        let question = text_of(QUESTION_NAMES, "question")?;
        let answer = text_of(ANSWER_NAMES, "answer")?;
        if let Some(block) =
            pair(question, answer).map_err(|half| malformed(format!("item {n} has {half}")))?
        {
            blocks.push(block);
        }
    }
    Ok((title.filter(|t| !t.trim().is_empty()), blocks))
}

/// A normalised FAQ block; `None` when both halves are blank, and an error naming the missing
/// half when only one is.
fn pair(question: &str, answer: &str) -> Result<Option<Block>, &'static str> {
    let question = normalize_line(question);
    let answer = normalize_block(answer);
    match (question.is_empty(), answer.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err("a question but no answer"),
        (true, false) => Err("an answer but no question"),
        (false, false) => Ok(Some(Block::Faq { question, answer })),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// How many line breaks the cells of a record hold.
fn line_breaks(record: Option<&csv::StringRecord>) -> u64 {
    record.map_or(0, |r| {
        r.iter().map(|cell| cell.matches('\n').count() as u64).sum()
    })
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    let name = name.trim().to_lowercase();
    names.contains(&name.as_str())
}

/// The value of the first key of `object` that is one of `names`.
fn get<'a>(object: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    object
        .iter()
        .find(|(key, _)| is_one_of(key, names))
        .map(|(_, value)| value)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The field separator, guessed from the header line: spreadsheets in many locales export CSV
/// with semicolons, and some tools use tabs.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    // `max_by_key` keeps the last of equals, so a tie goes to the comma.
    [b'\t', b';', b',']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .filter(|d| header.as_bytes().contains(d))
        .unwrap_or(b',')
}
