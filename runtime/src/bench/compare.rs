//! `bench --compare FILE`: this run against a baseline of the same shape, every figure with a
//! known direction checked, any more than 20 % worse flagged.
//!
//! Which way is better is read from a figure's name, so new figures are compared without
//! changes here: `*_per_sec` and everything under `ratios` — higher is better; everything under
//! `latency_ms` or `ack_latency_ms`, `*_seconds` and `*_ms_per_message` — lower is better. Other numbers (counts,
//! the harness's own send lag) are context, not figures. A figure present on one side only is
//! listed as skipped. Runs are only compared under the same configuration (suite, mode,
//! responder, channel, load, embedder, fsync): anything else would compare apples to oranges.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

/// A figure more than this much worse (as a fraction of the baseline) is a regression.
pub const THRESHOLD: f64 = 0.20;

/// Configuration that must be equal for two runs to be compared.
pub const COMPARABLE_KEYS: &[&str] = &[
    "suite",
    "mode",
    "responder",
    "channel",
    "conversations",
    "messages",
    "rate",
    "duration_secs",
    "debounce_ms",
    "embedder",
    "fsync",
];

/// Why a baseline cannot be compared with this run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Incomparable {
    #[error("the baseline has no `config` object (made by an older `switchboard bench`?): take a new baseline")]
    NoConfig,
    #[error("the baseline was measured under another configuration, so its figures say nothing about this run's ({}); run with the baseline's settings or take a new baseline", .0.join("; "))]
    Differs(Vec<String>),
}

/// Which way a figure improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }
}

/// One figure on both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Its path in the JSON, dot-separated (`round_trip.latency_ms.p99`).
    pub name: String,
    pub better: Better,
    pub baseline: f64,
    pub now: f64,
    /// Change from the baseline, in percent (positive: the number went up).
    pub change_pct: f64,
    pub regressed: bool,
}

/// A figure that could not be compared, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub name: String,
    pub reason: &'static str,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub figures: Vec<Figure>,
    pub skipped: Vec<Skipped>,
    /// Things a reader should know (another machine; the yardstick itself moved).
    pub notes: Vec<String>,
}

/// Checks that `config` (this run's, or the part of it known before the run) matches the
/// baseline's. Keys absent from `config` are not checked (not known yet).
pub fn check_comparable(baseline: &Value, config: &Value) -> Result<(), Incomparable> {
    let Some(theirs) = baseline.get("config").filter(|c| c.is_object()) else {
        return Err(Incomparable::NoConfig);
    };
    let differences: Vec<String> = COMPARABLE_KEYS
        .iter()
        .filter_map(|&key| {
            let ours = config.get(key)?;
            let base = theirs.get(key).unwrap_or(&Value::Null);
            (!same(base, ours)).then(|| format!("{key}: baseline {base}, this run {ours}"))
        })
        .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Incomparable::Differs(differences))
    }
}

/// Equal values, numbers compared by value (`200` and `200.0` are the same rate).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Compares `now` with `baseline` (both whole bench results).
pub fn compare(baseline: &Value, now: &Value) -> Result<Comparison, Incomparable> {
    check_comparable(baseline, &now["config"])?;
    let theirs = figures(baseline);
    let ours = figures(now);
    let mut out = Comparison::default();
    let names: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for name in names {
        let (b, n) = (theirs.get(name), ours.get(name));
        let better = b.or(n).expect("the name comes from one side").0;
        let reason = match (b, n) {
            (None, _) => Some("missing in the baseline"),
            (_, None) => Some("missing in this run"),
            (Some((_, b)), _) if !(b.is_finite() && *b > 0.0) => {
                Some("the baseline is zero, so a change has no size")
            }
            (_, Some((_, n))) if !n.is_finite() => Some("not a number in this run"),
            _ => None,
        };
        if let Some(reason) = reason {
            out.skipped.push(Skipped {
                name: name.clone(),
                reason,
            });
            continue;
        }
        let (baseline, now) = (b.expect("checked").1, n.expect("checked").1);
        let change_pct = (now - baseline) / baseline * 100.0;
        // A hair of tolerance, so exactly 20 % worse is not "more than 20 %" by rounding.
        let limit = THRESHOLD * 100.0 + 1e-9;
        let regressed = match better {
            Better::Higher => change_pct < -limit,
            Better::Lower => change_pct > limit,
        };
        out.figures.push(Figure {
            name: name.clone(),
            better,
            baseline,
            now,
            change_pct,
            regressed,
        });
    }
    if baseline["machine"] != now["machine"] {
        out.notes.push(format!(
            "the baseline was measured on another machine ({}), this run on {}",
            describe_machine(&baseline["machine"]),
            describe_machine(&now["machine"])
        ));
    }
    if out
        .regressions()
        .any(|f| f.name.starts_with("raw_postgres."))
    {
        out.notes.push(
            "the raw PostgreSQL commit rate, the yardstick, fell too: the machine is probably \
             busier or slower than when the baseline was taken"
                .into(),
        );
    }
    Ok(out)
}

fn describe_machine(m: &Value) -> String {
    format!(
        "{}, {} cores",
        m["cpu_model"].as_str().unwrap_or("unknown CPU"),
        m["cores"]
    )
}

/// Which way `path` improves, read from its name; `None` for numbers that are not figures.
pub fn better(path: &[&str]) -> Option<Better> {
    let (last, parents) = path.split_last()?;
    if parents
        .iter()
        .any(|p| *p == "latency_ms" || *p == "ack_latency_ms")
    {
        Some(Better::Lower)
    } else if last.ends_with("_per_sec") {
        Some(Better::Higher)
    } else if last.ends_with("_seconds") || last.ends_with("_ms_per_message") {
        Some(Better::Lower)
    } else if parents.first() == Some(&"ratios") {
        Some(Better::Higher)
    } else {
        None
    }
}

/// Every numeric figure of a result with a known direction, by dotted path. The description of
/// the run (`config`, `machine`, an earlier `comparison`) holds no figures.
fn figures(result: &Value) -> BTreeMap<String, (Better, f64)> {
    fn walk<'a>(v: &'a Value, path: &mut Vec<&'a str>, out: &mut BTreeMap<String, (Better, f64)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if path.is_empty() && matches!(k.as_str(), "config" | "machine" | "comparison")
                    {
                        continue;
                    }
                    path.push(k);
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Number(n) => {
                if let (Some(better), Some(x)) = (better(path), n.as_f64()) {
                    out.insert(path.join("."), (better, x));
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(result, &mut Vec::new(), &mut out);
    out
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Figure> {
        self.figures.iter().filter(|f| f.regressed)
    }

    /// The `comparison` object of the JSON result.
    pub fn to_json(&self) -> Value {
        let figure = |f: &Figure| {
            json!({
                "figure": f.name, "better": f.better.as_str(),
                "baseline": f.baseline, "now": f.now, "change_pct": f.change_pct,
            })
        };
        json!({
            "threshold_pct": THRESHOLD * 100.0,
            "compared": self.figures.len(),
            "regressions": self.regressions().map(figure).collect::<Vec<_>>(),
            "skipped": self.skipped.iter().map(|s| json!({"figure": s.name, "reason": s.reason})).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }

    /// A table for people: every figure, its baseline, now, the change, and a flag.
    pub fn table(&self) -> String {
        let width = self
            .figures
            .iter()
            .map(|f| f.name.len())
            .chain(self.skipped.iter().map(|s| s.name.len()))
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<width$}  {:>12}  {:>12}  {:>9}  flag",
            "figure", "baseline", "now", "change"
        );
        for f in &self.figures {
            let flag = if f.regressed {
                format!("REGRESSED ({} is better)", f.better.as_str())
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{:<width$}  {:>12.3}  {:>12.3}  {:>+8.1}%  {flag}",
                f.name, f.baseline, f.now, f.change_pct
            );
        }
        for k in &self.skipped {
            let _ = writeln!(s, "{:<width$}  skipped: {}", k.name, k.reason);
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        let regressed = self.regressions().count();
        let _ = writeln!(
            s,
            "{} figures compared, {regressed} more than {:.0} % worse than the baseline",
            self.figures.len(),
            THRESHOLD * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Value {
        json!({"suite": "pipeline", "mode": "closed", "responder": "echo", "channel": "webchat",
               "conversations": 50, "messages": 20, "rate": null, "duration_secs": null,
               "debounce_ms": 0, "embedder": "minilm+ngram", "fsync": "on"})
    }

    fn result(rate: f64, p99: f64) -> Value {
        json!({
            "suite": "pipeline",
            "commit": "abc1234",
            "machine": {"cpu_model": "AMD EPYC", "cores": 2},
            "config": config(),
            "round_trip": {"messages": 1000, "seconds": 4.0, "messages_per_sec": rate,
                           "latency_ms": {"p50": 10.0, "p99": p99}},
            "ratios": {"round_trip_vs_raw_commits": 0.1},
        })
    }

    fn figure<'a>(c: &'a Comparison, name: &str) -> &'a Figure {
        c.figures.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn directions_are_read_from_the_names() {
        assert_eq!(
            better(&["round_trip", "messages_per_sec"]),
            Some(Better::Higher)
        );
        assert_eq!(
            better(&["ingest", "accepted_per_sec"]),
            Some(Better::Higher)
        );
        assert_eq!(
            better(&["open_loop", "latency_ms", "p99.9"]),
            Some(Better::Lower)
        );
        assert_eq!(
            better(&["ingest", "ack_latency_ms", "p50"]),
            Some(Better::Lower)
        );
        assert_eq!(
            better(&["ingest", "all_answered_seconds"]),
            Some(Better::Lower)
        );
        assert_eq!(
            better(&["ratios", "ingest_vs_raw_commits"]),
            Some(Better::Higher)
        );
        // Counts and the harness's own lag are context, not figures.
        assert_eq!(better(&["round_trip", "messages"]), None);
        assert_eq!(better(&["round_trip", "seconds"]), None);
        assert_eq!(better(&["open_loop", "send_lag_ms", "p99"]), None);
        assert_eq!(
            better(&["round_trip", "cpu", "cpu_ms_per_message"]),
            Some(Better::Lower)
        );
        assert_eq!(better(&["round_trip", "cpu", "steal_ms"]), None);
        assert_eq!(better(&["open_loop", "unanswered"]), None);
    }

    #[test]
    fn only_figures_with_a_direction_are_compared_and_the_description_never() {
        let c = compare(&result(100.0, 50.0), &result(100.0, 50.0)).unwrap();
        let names: Vec<&str> = c.figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "ratios.round_trip_vs_raw_commits",
                "round_trip.latency_ms.p50",
                "round_trip.latency_ms.p99",
                "round_trip.messages_per_sec",
            ]
        );
        assert_eq!(c.regressions().count(), 0);
        assert!(c.notes.is_empty());
        assert_eq!(c.to_json()["compared"], 4);
    }

    #[test]
    fn more_than_twenty_percent_worse_is_flagged_in_both_directions() {
        // Throughput: 19.9 % lower passes, 20.1 % lower is a regression.
        let c = compare(&result(1000.0, 50.0), &result(801.0, 50.0)).unwrap();
        assert!(!figure(&c, "round_trip.messages_per_sec").regressed);
        let c = compare(&result(1000.0, 50.0), &result(799.0, 50.0)).unwrap();
        let f = figure(&c, "round_trip.messages_per_sec");
        assert!(f.regressed);
        assert!((f.change_pct + 20.1).abs() < 1e-9);
        // Latency: 19.9 % higher passes, 20.1 % higher is a regression.
        let c = compare(&result(1000.0, 100.0), &result(1000.0, 119.9)).unwrap();
        assert!(!figure(&c, "round_trip.latency_ms.p99").regressed);
        let c = compare(&result(1000.0, 100.0), &result(1000.0, 120.1)).unwrap();
        assert!(figure(&c, "round_trip.latency_ms.p99").regressed);
        // Exactly 20 % is not more than 20 %.
        let c = compare(&result(1000.0, 50.0), &result(800.0, 60.0)).unwrap();
        assert_eq!(c.regressions().count(), 0);
        // Improvements, however large, are never flagged.
        let c = compare(&result(100.0, 100.0), &result(1000.0, 5.0)).unwrap();
        assert_eq!(c.regressions().count(), 0);
        assert!((figure(&c, "round_trip.messages_per_sec").change_pct - 900.0).abs() < 1e-9);
    }

    #[test]
    fn regressions_are_listed_in_the_json_and_the_table() {
        let c = compare(&result(1000.0, 100.0), &result(500.0, 300.0)).unwrap();
        let v = c.to_json();
        let names: Vec<&str> = v["regressions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["figure"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["round_trip.latency_ms.p99", "round_trip.messages_per_sec"]
        );
        assert_eq!(v["regressions"][0]["better"], "lower");
        assert_eq!(v["regressions"][0]["change_pct"], 200.0);
        let table = c.table();
        assert!(table.contains("REGRESSED (higher is better)"), "{table}");
        assert!(table.contains("2 more than 20 % worse"), "{table}");
    }

    #[test]
    fn figures_missing_on_either_side_are_skipped_not_fatal() {
        let mut baseline = result(100.0, 50.0);
        baseline["ingest"] = json!({"accepted_per_sec": 900.0});
        baseline["ratios"]["gone"] = json!(0.0);
        let mut now = result(100.0, 50.0);
        now["round_trip"]["latency_ms"] = Value::Null; // no samples this time
        now["open_loop"] = json!({"achieved_per_sec": 10.0});
        let c = compare(&baseline, &now).unwrap();
        let skipped: Vec<(&str, &str)> = c
            .skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("ingest.accepted_per_sec", "missing in this run"),
                ("open_loop.achieved_per_sec", "missing in the baseline"),
                ("ratios.gone", "missing in this run"),
                ("round_trip.latency_ms.p50", "missing in this run"),
                ("round_trip.latency_ms.p99", "missing in this run"),
            ]
        );
        // A zero baseline gives no percentage: skipped too.
        let mut zero = result(0.0, 50.0);
        zero["round_trip"]["messages_per_sec"] = json!(0.0);
        let c = compare(&zero, &result(10.0, 50.0)).unwrap();
        assert_eq!(c.skipped[0].name, "round_trip.messages_per_sec");
        assert_eq!(c.to_json()["skipped"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn another_configuration_is_refused_with_every_difference_named() {
        let baseline = result(100.0, 50.0);
        let mut now = result(100.0, 50.0);
        now["config"]["responder"] = json!("offline");
        now["config"]["conversations"] = json!(5);
        let err = compare(&baseline, &now).unwrap_err();
        assert_eq!(
            err,
            Incomparable::Differs(vec![
                "responder: baseline \"echo\", this run \"offline\"".into(),
                "conversations: baseline 50, this run 5".into(),
            ])
        );
        assert!(err.to_string().contains("another configuration"));
        for (key, other) in [
            ("suite", json!("knowledge")),
            ("mode", json!("open")),
            ("messages", json!(200)),
            ("channel", json!("whatsapp")),
            ("rate", json!(100.0)),
        ] {
            let mut now = result(100.0, 50.0);
            now["config"][key] = other;
            assert!(compare(&baseline, &now).is_err(), "{key} must match");
        }
        // A baseline without a configuration cannot be trusted to match.
        let mut old = result(100.0, 50.0);
        old.as_object_mut().unwrap().remove("config");
        assert_eq!(compare(&old, &now).unwrap_err(), Incomparable::NoConfig);
    }

    #[test]
    fn the_check_before_a_run_looks_only_at_what_is_known() {
        // Before the run the embedder and fsync are not known yet: they are not checked.
        let mut planned = config();
        planned.as_object_mut().unwrap().remove("embedder");
        planned.as_object_mut().unwrap().remove("fsync");
        assert_eq!(check_comparable(&result(1.0, 1.0), &planned), Ok(()));
        // Numbers compare by value.
        let mut planned = config();
        planned["conversations"] = json!(50.0);
        assert_eq!(check_comparable(&result(1.0, 1.0), &planned), Ok(()));
    }

    #[test]
    fn another_machine_or_a_slower_yardstick_is_noted() {
        let mut baseline = result(100.0, 50.0);
        baseline["raw_postgres"] = json!({"commits_per_sec": 20000.0});
        let mut now = result(100.0, 50.0);
        now["machine"]["cores"] = json!(8);
        now["raw_postgres"] = json!({"commits_per_sec": 9000.0});
        let c = compare(&baseline, &now).unwrap();
        assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
        assert!(c.notes[0].contains("another machine"));
        assert!(c.notes[1].contains("yardstick"));
    }
}
