//! Per-tenant analytics over a time range: conversations, messages, resolution and handoff,
//! response times of the bot and of humans, bookings, new leads by score band, and model tokens
//! with an estimated cost.
//!
//! Every figure is computed by PostgreSQL inside the caller's [`TenantTx`], so row-level
//! security decides what is counted: another tenant's rows cannot enter a sum. Each query
//! groups with `GROUPING SETS ((channel), ())`, so the totals are computed from the rows
//! themselves — medians and 90th percentiles (`percentile_cont`) of the totals are those of all
//! samples, never an average of the channels' medians.
//!
//! What is policy stays out of SQL and is unit-tested here: how a time range is read and
//! bounded ([`Range::resolve`]), the lead score bands ([`LeadBand`]), and the price arithmetic
//! ([`PriceTable`]).
//!
//! # Definitions
//!
//! The range is `[from, to)`. A conversation belongs to the channel it was opened on.
//!
//! - **conversations**: conversations with at least one `customer` message created in the range
//!   (customer activity). A conversation is one contact on one channel and may span months; it
//!   counts in every range in which the customer wrote.
//! - **messages**: `customer`, `agent` (the bot) and `human` messages created in the range, in
//!   any conversation (system notes are not counted).
//! - **handed_off**: counted conversations with at least one escalation created in the range (any
//!   trigger, an admin taking over included). `handoff_rate = handed_off / conversations`.
//! - **resolved** (by the bot, without a human): counted conversations where, during the range,
//!   no escalation was open (none created before `to` was still open after `from`) and no
//!   human wrote, and whose last customer message in the range was answered by the bot:
//!   the first `agent` or `human` message after it is an `agent` message that is not the
//!   technical holding message (an apology for a failure is not an answer). The answer may come
//!   after `to`. `resolution_rate = resolved / conversations`. Closing a conversation is not used:
//!   it leaves no timestamp to place it in a range.
//! - **bot_response**: one sample per *customer wait* that starts in the range — a customer
//!   message whose previous message in the conversation (customer, agent or human) is not a
//!   customer message, i.e. the first message of a burst. Its time is until the next `agent` or
//!   `human` message; it is a bot sample (`answered`) when that message is the bot's (a
//!   technical holding message counts: it is what the customer waited for), and `unanswered`
//!   when nothing followed yet. Waits a human answered first are neither. Median and 90th
//!   percentile in seconds (`percentile_cont`), `null` without samples.
//! - **human_response**: one sample per escalation created in the range, except those of
//!   trigger `admin` (a colleague stepping in unasked: nobody was waiting): the time from its
//!   creation to the first `human` message of the conversation at or after it, and no later than
//!   its resolution (`answered`); `unanswered` when no human wrote in that window.
//! - **bookings**: `made` — created in the range and not a reschedule; `rescheduled` — created in
//!   the range as the new booking of a move; `cancelled` — cancelled in the range, except the old
//!   booking of a move. A booking belongs to its conversation's channel; bookings made by an admin
//!   (no conversation) count in the totals only.
//! - **leads**: contacts that became leads in the range (`lead_created_at`), by the band of their
//!   current score: `cold` below 40, `warm` 40–69, `hot` 70 and above.
//! - **tokens**: `input` (prompt) and `output` (completion) tokens of model calls made in the
//!   range, every purpose (replies, summaries, previews); calls outside a conversation (prompt
//!   previews) count in the totals only. `cost_usd` prices each model with the price table;
//!   tokens of models it has no price for are in `cost_unknown_tokens` (and those models in
//!   `unpriced_models`), not in the cost.
//!
//! With a channel filter, the totals are that channel's figures (admin bookings and previews
//! are then left out). The queries run one after the other in one READ COMMITTED transaction:
//! under concurrent writes, two figures may disagree by what committed between them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::ChannelId;
use crate::store::handoff::TECHNICAL_HOLDING_EVENT;

/// The range when neither bound is given: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest range accepted: a year and some margin, so that the queries stay bounded.
pub const MAX_DAYS: i64 = 400;

/// A half-open time range `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("`{param}` must be an RFC 3339 time such as 2026-12-06T09:00:00Z or a date such as 2026-12-06 (midnight UTC)")]
    InvalidTime { param: &'static str },
    #[error("`from` must be before `to`")]
    Empty,
    #[error("the range is longer than {MAX_DAYS} days")]
    TooLong,
}

impl Range {
    /// Reads the bounds an admin gave: RFC 3339 times or `YYYY-MM-DD` dates (midnight UTC).
    /// `to` defaults to `now`, `from` to [`DEFAULT_DAYS`] before `to`. Refuses an empty or
    /// reversed range and one longer than [`MAX_DAYS`].
    pub fn resolve(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Range, RangeError> {
        let to = match to {
            Some(raw) => parse_instant(raw).ok_or(RangeError::InvalidTime { param: "to" })?,
            None => now,
        };
        let from = match from {
            Some(raw) => parse_instant(raw).ok_or(RangeError::InvalidTime { param: "from" })?,
            None => to - Duration::days(DEFAULT_DAYS),
        };
        if from >= to {
            return Err(RangeError::Empty);
        }
        if to - from > Duration::days(MAX_DAYS) {
            return Err(RangeError::TooLong);
        }
        Ok(Range { from, to })
    }
}

impl Range {
    /// The range at PostgreSQL's precision, so that the buckets the database computes from
    /// `from` are the instants computed here.
    fn in_microseconds(self) -> Range {
        use chrono::SubsecRound;
        Range {
            from: self.from.trunc_subsecs(6),
            to: self.to.trunc_subsecs(6),
        }
    }
}

/// An RFC 3339 time (any offset), or a `YYYY-MM-DD` date meaning its midnight in UTC.
pub fn parse_instant(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    // Exactly ten characters, so `2026-1-5` or a date with trailing text is refused.
    if raw.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Where a lead's score puts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadBand {
    /// Below [`LeadBand::WARM_FROM`].
    Cold,
    /// From [`LeadBand::WARM_FROM`] to below [`LeadBand::HOT_FROM`].
    Warm,
    /// [`LeadBand::HOT_FROM`] and above.
    Hot,
}

impl LeadBand {
    pub const WARM_FROM: i32 = 40;
    pub const HOT_FROM: i32 = 70;

    pub fn of(score: i32) -> LeadBand {
        if score >= Self::HOT_FROM {
            LeadBand::Hot
        } else if score >= Self::WARM_FROM {
            LeadBand::Warm
        } else {
            LeadBand::Cold
        }
    }
}

/// New leads per band.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadBands {
    pub cold: i64,
    pub warm: i64,
    pub hot: i64,
}

impl LeadBands {
    /// Counts `n` leads of score `score`.
    pub fn add(&mut self, score: i32, n: i64) {
        match LeadBand::of(score) {
            LeadBand::Cold => self.cold += n,
            LeadBand::Warm => self.warm += n,
            LeadBand::Hot => self.hot += n,
        }
    }
}

/// A model's list price in USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

/// A price that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the price of model `{0}` must be finite and not negative")]
pub struct PriceError(pub String);

/// Prices by model name, for cost estimates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceTable {
    /// Keys in lower case: model names are compared case-insensitively.
    prices: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// A table of `entries`; a later entry for the same model (any case) replaces an earlier one.
    pub fn new(
        entries: impl IntoIterator<Item = (String, ModelPrice)>,
    ) -> Result<PriceTable, PriceError> {
        let mut prices = BTreeMap::new();
        for (model, price) in entries {
            let valid = |x: f64| x.is_finite() && x >= 0.0;
            if !valid(price.input_per_million) || !valid(price.output_per_million) {
                return Err(PriceError(model));
            }
            prices.insert(model.to_lowercase(), price);
        }
        Ok(PriceTable { prices })
    }

    /// The price of `model`: its own entry, else that of the model it is a dated snapshot of
    /// (`gpt-4o-2024-08-06` → `gpt-4o`; providers report the snapshot that answered).
    pub fn price_of(&self, model: &str) -> Option<ModelPrice> {
        let model = model.to_lowercase();
        if let Some(p) = self.prices.get(&model) {
            return Some(*p);
        }
        snapshot_base(&model).and_then(|base| self.prices.get(base).copied())
    }

    /// Prices token counts per model: costs per model and in total, and what had no price.
    pub fn tokens(&self, usage: Vec<(String, i64, i64)>) -> Tokens {
        let mut t = Tokens::default();
        let mut total = 0.0;
        for (model, input, output) in usage {
            t.input += input;
            t.output += output;
            let cost = self.price_of(&model).map(|p| {
                (input as f64 * p.input_per_million + output as f64 * p.output_per_million)
                    / 1_000_000.0
            });
            match cost {
                Some(c) => total += c,
                None => {
                    t.cost_unknown_tokens += input + output;
                    t.unpriced_models.push(model.clone());
                }
            }
            t.by_model.push(ModelTokens {
                model,
                input,
                output,
                cost_usd: cost.map(micro_dollars),
            });
        }
        t.by_model.sort_by(|a, b| a.model.cmp(&b.model));
        t.unpriced_models.sort();
        t.unpriced_models.dedup();
        t.cost_usd = micro_dollars(total);
        t
    }
}

/// `base` when `model` is `base-YYYY-MM-DD`.
fn snapshot_base(model: &str) -> Option<&str> {
    let (base, date) = model.split_at_checked(model.len().checked_sub(11)?)?;
    let date = date.strip_prefix('-')?;
    let shaped = date.len() == 10
        && date.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    (shaped && !base.is_empty()).then_some(base)
}

/// Rounds dollars to the micro-dollar, so sums of floating-point products read cleanly.
fn micro_dollars(usd: f64) -> f64 {
    (usd * 1_000_000.0).round() / 1_000_000.0
}

/// Tokens of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelTokens {
    pub model: String,
    pub input: i64,
    pub output: i64,
    /// `null` when the model has no price.
    pub cost_usd: Option<f64>,
}

/// Model tokens and their estimated cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    /// Estimated cost in USD of the tokens of priced models (rounded to the micro-dollar).
    pub cost_usd: f64,
    /// Input plus output tokens of models without a price (not in `cost_usd`).
    pub cost_unknown_tokens: i64,
    pub unpriced_models: Vec<String>,
    pub by_model: Vec<ModelTokens>,
}

/// Messages by author.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageCounts {
    pub customer: i64,
    pub agent: i64,
    pub human: i64,
}

/// Response times: how many samples, and their median and 90th percentile in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseTimes {
    pub answered: i64,
    pub unanswered: i64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// Bookings by what happened to them in the range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookingCounts {
    pub made: i64,
    pub rescheduled: i64,
    pub cancelled: i64,
}

/// The figures of one scope (the tenant, or one channel). See the module docs for definitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    pub conversations: i64,
    pub messages: MessageCounts,
    pub resolved: i64,
    /// `resolved / conversations`; `null` without conversations.
    pub resolution_rate: Option<f64>,
    pub handed_off: i64,
    /// `handed_off / conversations`; `null` without conversations.
    pub handoff_rate: Option<f64>,
    pub bot_response: ResponseTimes,
    pub human_response: ResponseTimes,
    pub bookings: BookingCounts,
    pub leads: LeadBands,
    pub tokens: Tokens,
}

/// `n / of`, `None` when `of` is zero.
pub fn rate(n: i64, of: i64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// One channel's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelFigures {
    pub channel_id: ChannelId,
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The analytics of a tenant over a range.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AnalyticsReport))]
pub struct Report {
    pub range: Range,
    /// The channel filter, if any.
    pub channel: Option<ChannelId>,
    pub totals: Figures,
    /// Every channel of the tenant (only the filtered one with a filter), oldest first.
    pub by_channel: Vec<ChannelFigures>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("no channel {0} in this tenant")]
    UnknownChannel(ChannelId),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AnalyticsError {
    fn from(e: sqlx::Error) -> Self {
        AnalyticsError::Db(e.into())
    }
}

/// Figures being gathered, per bucket: the totals (channel `None`) and one entry per channel.
/// Rows of the per-channel grouping whose channel is NULL (bookings made by an admin,
/// previews) belong to no channel: they are in the totals' own row and dropped here.
#[derive(Default)]
struct Tally {
    figures: HashMap<Key, Figures>,
    tokens: HashMap<Key, Vec<ModelUsage>>,
}

/// A bucket's start and a channel (`None`: the totals).
type Key = (DateTime<Utc>, Option<Uuid>);
/// A model's input and output tokens.
type ModelUsage = (String, i64, i64);
/// A bucket, a channel, whether the row is the totals', and three counts.
type Counts = (DateTime<Utc>, Option<Uuid>, bool, i64, i64, i64);
/// A bucket, a channel, whether the row is the totals', a model and its tokens.
type TokenRow = (DateTime<Utc>, Option<Uuid>, bool, String, i64, i64);

impl Tally {
    fn at(
        &mut self,
        bucket: DateTime<Utc>,
        total: bool,
        channel: Option<Uuid>,
    ) -> Option<&mut Figures> {
        let key = if total { None } else { Some(channel?) };
        Some(self.figures.entry((bucket, key)).or_default())
    }

    /// The figures of one bucket and scope, with their rates and priced tokens.
    fn take(
        &mut self,
        bucket: DateTime<Utc>,
        channel: Option<Uuid>,
        prices: &PriceTable,
    ) -> Figures {
        let mut f = self.figures.remove(&(bucket, channel)).unwrap_or_default();
        let usage = self.tokens.remove(&(bucket, channel)).unwrap_or_default();
        finish(&mut f, usage, prices);
        f
    }
}

/// The tenant's channels (only `channel` with a filter), oldest first.
async fn channels_of(
    tx: &mut TenantTx,
    channel: Option<ChannelId>,
) -> Result<Vec<(Uuid, String, String)>, AnalyticsError> {
    let mut channels: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, kind, name FROM channels ORDER BY created_at, id")
            .fetch_all(tx.conn())
            .await?;
    if let Some(c) = channel {
        channels.retain(|(id, _, _)| *id == c.0);
        if channels.is_empty() {
            return Err(AnalyticsError::UnknownChannel(c));
        }
    }
    Ok(channels)
}

/// The analytics of the current tenant over `range`, of every channel or of `channel` only.
pub async fn report(
    tx: &mut TenantTx,
    range: Range,
    channel: Option<ChannelId>,
    prices: &PriceTable,
) -> Result<Report, AnalyticsError> {
    let range = range.in_microseconds();
    let mut channels = channels_of(tx, channel).await?;
    // One bucket, the whole range.
    let step = range.to - range.from;
    let mut tally = gather(tx, range, step, channel).await?;
    let (from, to, only) = (range.from, range.to, channel.map(|c| c.0));

    let rows: Vec<(Option<Uuid>, bool, i64, i64, i64)> = sqlx::query_as(BOOKINGS)
        .bind(from)
        .bind(to)
        .bind(only)
        .fetch_all(tx.conn())
        .await?;
    for (ch, total, made, rescheduled, cancelled) in rows {
        if let Some(f) = tally.at(from, total, ch) {
            f.bookings = BookingCounts {
                made,
                rescheduled,
                cancelled,
            };
        }
    }

    let rows: Vec<(Option<Uuid>, bool, i32, i64)> = sqlx::query_as(LEADS)
        .bind(from)
        .bind(to)
        .bind(only)
        .fetch_all(tx.conn())
        .await?;
    for (ch, total, score, n) in rows {
        if let Some(f) = tally.at(from, total, ch) {
            f.leads.add(score, n);
        }
    }

    let totals = tally.take(from, None, prices);
    let by_channel = channels
        .drain(..)
        .map(|(id, kind, name)| ChannelFigures {
            channel_id: ChannelId(id),
            kind,
            name,
            figures: tally.take(from, Some(id), prices),
        })
        .collect();
    Ok(Report {
        range,
        channel,
        totals,
        by_channel,
    })
}

/// The figures that have a time series, per bucket of `step` from `range.from` (the last
/// bucket ends at `range.to`), in total and per channel: messages, conversations with
/// resolution and handoff, response times and tokens. Each bucket's figures are those a
/// report over that bucket alone would give: the queries are the report's own.
async fn gather(
    tx: &mut TenantTx,
    range: Range,
    step: Duration,
    channel: Option<ChannelId>,
) -> Result<Tally, AnalyticsError> {
    let mut tally = Tally::default();
    let (from, to, only) = (range.from, range.to, channel.map(|c| c.0));
    let step = step.num_microseconds().unwrap_or(i64::MAX).max(1);

    let rows: Vec<Counts> = sqlx::query_as(MESSAGES)
        .bind(from)
        .bind(to)
        .bind(only)
        .bind(step)
        .fetch_all(tx.conn())
        .await?;
    for (bucket, ch, total, customer, agent, human) in rows {
        if let Some(f) = tally.at(bucket, total, ch) {
            f.messages = MessageCounts {
                customer,
                agent,
                human,
            };
        }
    }

    let rows: Vec<Counts> = sqlx::query_as(CONVERSATIONS)
        .bind(from)
        .bind(to)
        .bind(only)
        .bind(step)
        .bind(TECHNICAL_HOLDING_EVENT)
        .fetch_all(tx.conn())
        .await?;
    for (bucket, ch, total, conversations, handed_off, resolved) in rows {
        if let Some(f) = tally.at(bucket, total, ch) {
            f.conversations = conversations;
            f.handed_off = handed_off;
            f.resolved = resolved;
        }
    }

    type Times = (
        DateTime<Utc>,
        Option<Uuid>,
        bool,
        i64,
        i64,
        Option<f64>,
        Option<f64>,
    );
    for (sql, human) in [(BOT_RESPONSE, false), (HUMAN_RESPONSE, true)] {
        let rows: Vec<Times> = sqlx::query_as(sql)
            .bind(from)
            .bind(to)
            .bind(only)
            .bind(step)
            .fetch_all(tx.conn())
            .await?;
        for (bucket, ch, total, answered, unanswered, median, p90) in rows {
            if let Some(f) = tally.at(bucket, total, ch) {
                let times = ResponseTimes {
                    answered,
                    unanswered,
                    median_seconds: median.map(milliseconds),
                    p90_seconds: p90.map(milliseconds),
                };
                if human {
                    f.human_response = times;
                } else {
                    f.bot_response = times;
                }
            }
        }
    }

    let rows: Vec<TokenRow> = sqlx::query_as(TOKENS)
        .bind(from)
        .bind(to)
        .bind(only)
        .bind(step)
        .fetch_all(tx.conn())
        .await?;
    for (bucket, ch, total, model, input, output) in rows {
        let key = if total { None } else { ch };
        if total || ch.is_some() {
            tally
                .tokens
                .entry((bucket, key))
                .or_default()
                .push((model, input, output));
        }
    }
    Ok(tally)
}

/// The width of a series' buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    pub fn step(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }
}

/// The most buckets one series may have.
pub const MAX_BUCKETS: i64 = 400;

/// A series with more buckets than [`MAX_BUCKETS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the range holds {0} buckets; at most {MAX_BUCKETS} are answered (use a wider bucket or a shorter range)")]
pub struct TooManyBuckets(pub i64);

/// The starts of the buckets of `range`: every `bucket` from `range.from`, the last one cut at
/// `range.to`.
pub fn bucket_starts(range: Range, bucket: Bucket) -> Result<Vec<DateTime<Utc>>, TooManyBuckets> {
    let step = bucket.step();
    let span = (range.to - range.from)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    let width = step
        .num_microseconds()
        .expect("a bucket fits in microseconds");
    let n = span / width + i64::from(span % width != 0);
    if n > MAX_BUCKETS {
        return Err(TooManyBuckets(n));
    }
    Ok((0..n).map(|i| range.from + step * i as i32).collect())
}

/// One bucket of a series. Counts are zero in an empty bucket; rates and medians are `null`
/// without conversations or samples, as in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// The bucket is `[start, start + bucket)` (the last one ends at `to`).
    pub start: DateTime<Utc>,
    pub conversations: i64,
    pub customer_messages: i64,
    pub agent_messages: i64,
    pub human_messages: i64,
    pub resolution_rate: Option<f64>,
    pub handoff_rate: Option<f64>,
    /// The median of the bot's answered waits (`bot_response`), in milliseconds.
    pub bot_first_response_p50_ms: Option<f64>,
    /// The median of the humans' answered escalations (`human_response`), in milliseconds.
    pub human_first_response_p50_ms: Option<f64>,
    /// Input plus output tokens.
    pub tokens: i64,
    /// Estimated cost in USD of the priced tokens.
    pub cost: f64,
}

impl SeriesPoint {
    fn of(start: DateTime<Utc>, f: &Figures) -> Self {
        let ms = |s: Option<f64>| s.map(|s| (s * 1000.0).round());
        SeriesPoint {
            start,
            conversations: f.conversations,
            customer_messages: f.messages.customer,
            agent_messages: f.messages.agent,
            human_messages: f.messages.human,
            resolution_rate: f.resolution_rate,
            handoff_rate: f.handoff_rate,
            bot_first_response_p50_ms: ms(f.bot_response.median_seconds),
            human_first_response_p50_ms: ms(f.human_response.median_seconds),
            tokens: f.tokens.input + f.tokens.output,
            cost: f.tokens.cost_usd,
        }
    }
}

/// The analytics of a range over time.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub bucket: Bucket,
    pub range: Range,
    /// The channel filter, if any.
    pub channel: Option<ChannelId>,
    /// Every bucket of the range, oldest first, empty ones included.
    pub points: Vec<SeriesPoint>,
}

/// Why a series could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error(transparent)]
    TooManyBuckets(#[from] TooManyBuckets),
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
}

/// The current tenant's figures over `range` per `bucket` (in total, or of `channel` only).
pub async fn series(
    tx: &mut TenantTx,
    range: Range,
    bucket: Bucket,
    channel: Option<ChannelId>,
    prices: &PriceTable,
) -> Result<Series, SeriesError> {
    let range = range.in_microseconds();
    let starts = bucket_starts(range, bucket)?;
    channels_of(tx, channel).await?;
    let mut tally = gather(tx, range, bucket.step(), channel).await?;
    let points = starts
        .into_iter()
        .map(|start| SeriesPoint::of(start, &tally.take(start, None, prices)))
        .collect();
    Ok(Series {
        bucket,
        range,
        channel,
        points,
    })
}

/// Derived figures: rates and priced tokens.
fn finish(f: &mut Figures, usage: Vec<(String, i64, i64)>, prices: &PriceTable) {
    f.resolution_rate = rate(f.resolved, f.conversations);
    f.handoff_rate = rate(f.handed_off, f.conversations);
    f.tokens = prices.tokens(usage);
}

/// Seconds rounded to the millisecond.
fn milliseconds(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

// The queries with a time series take `$1` from, `$2` to (exclusive), `$3` an optional channel
// and `$4` the bucket width in microseconds (a report: the whole range, one bucket). Each returns the
// bucket's start (`date_bin` from `$1`), the channel, whether the row is the totals'
// (`GROUPING(...) = 1`), then its figures. A bucket's figures are computed over `[bucket,
// least(bucket + width, to))` exactly as a report's over its range. Bookings and leads have no
// series: they take `$1`–`$3` only.

const MESSAGES: &str = "
SELECT bucket, channel_id, GROUPING(channel_id) = 1,
       count(*) FILTER (WHERE role = 'customer')::bigint,
       count(*) FILTER (WHERE role = 'agent')::bigint,
       count(*) FILTER (WHERE role = 'human')::bigint
  FROM (SELECT date_bin($4::bigint * interval '1 microsecond', m.created_at, $1) AS bucket,
               c.channel_id, m.role
          FROM messages m
          JOIN conversations c ON c.id = m.conversation_id
         WHERE m.created_at >= $1 AND m.created_at < $2
           AND m.role IN ('customer', 'agent', 'human')
           AND ($3::uuid IS NULL OR c.channel_id = $3)) m
 GROUP BY GROUPING SETS ((bucket, channel_id), (bucket))";

/// `$5`: `metadata.event` of the technical holding message (not an answer).
const CONVERSATIONS: &str = "
WITH active AS (
    SELECT conversation_id, bucket, max(seq) AS last_customer_seq,
           bucket AS lo, LEAST(bucket + $4::bigint * interval '1 microsecond', $2) AS hi
      FROM (SELECT conversation_id, seq,
                   date_bin($4::bigint * interval '1 microsecond', created_at, $1) AS bucket
              FROM messages
             WHERE role = 'customer' AND created_at >= $1 AND created_at < $2) m
     GROUP BY conversation_id, bucket
), escalated_in AS (
    SELECT DISTINCT conversation_id,
           date_bin($4::bigint * interval '1 microsecond', created_at, $1) AS bucket
      FROM escalations
     WHERE created_at >= $1 AND created_at < $2
), escalation_open AS (
    SELECT DISTINCT a.conversation_id, a.bucket
      FROM active a
      JOIN escalations e ON e.conversation_id = a.conversation_id
     WHERE e.created_at < a.hi AND (e.resolved_at IS NULL OR e.resolved_at > a.lo)
), human_in AS (
    SELECT DISTINCT conversation_id,
           date_bin($4::bigint * interval '1 microsecond', created_at, $1) AS bucket
      FROM messages
     WHERE role = 'human' AND created_at >= $1 AND created_at < $2
), scored AS (
    SELECT a.bucket, c.channel_id,
           ei.conversation_id IS NOT NULL AS handed_off,
           eo.conversation_id IS NULL AND hi.conversation_id IS NULL
             AND COALESCE(reply.role = 'agent'
                          AND reply.metadata->>'event' IS DISTINCT FROM $5, false) AS resolved
      FROM active a
      JOIN conversations c ON c.id = a.conversation_id
      LEFT JOIN escalated_in ei
             ON ei.conversation_id = a.conversation_id AND ei.bucket = a.bucket
      LEFT JOIN escalation_open eo
             ON eo.conversation_id = a.conversation_id AND eo.bucket = a.bucket
      LEFT JOIN human_in hi ON hi.conversation_id = a.conversation_id AND hi.bucket = a.bucket
      LEFT JOIN LATERAL (
            SELECT r.role, r.metadata FROM messages r
             WHERE r.conversation_id = a.conversation_id AND r.seq > a.last_customer_seq
               AND r.role IN ('agent', 'human')
             ORDER BY r.seq LIMIT 1) reply ON true
     WHERE ($3::uuid IS NULL OR c.channel_id = $3)
)
SELECT bucket, channel_id, GROUPING(channel_id) = 1,
       count(*)::bigint,
       count(*) FILTER (WHERE handed_off)::bigint,
       count(*) FILTER (WHERE resolved)::bigint
  FROM scored
 GROUP BY GROUPING SETS ((bucket, channel_id), (bucket))";

const BOT_RESPONSE: &str = "
WITH waits AS (
    SELECT c.channel_id, m.conversation_id, m.seq, m.created_at,
           date_bin($4::bigint * interval '1 microsecond', m.created_at, $1) AS bucket
      FROM messages m
      JOIN conversations c ON c.id = m.conversation_id
     WHERE m.role = 'customer' AND m.created_at >= $1 AND m.created_at < $2
       AND ($3::uuid IS NULL OR c.channel_id = $3)
       AND (SELECT p.role FROM messages p
             WHERE p.conversation_id = m.conversation_id AND p.seq < m.seq
               AND p.role IN ('customer', 'agent', 'human')
             ORDER BY p.seq DESC LIMIT 1) IS DISTINCT FROM 'customer'
), replies AS (
    SELECT w.bucket, w.channel_id, reply.role,
           GREATEST(extract(epoch FROM reply.created_at - w.created_at), 0)::float8 AS secs
      FROM waits w
      LEFT JOIN LATERAL (
            SELECT r.role, r.created_at FROM messages r
             WHERE r.conversation_id = w.conversation_id AND r.seq > w.seq
               AND r.role IN ('agent', 'human')
             ORDER BY r.seq LIMIT 1) reply ON true
)
SELECT bucket, channel_id, GROUPING(channel_id) = 1,
       count(*) FILTER (WHERE role = 'agent')::bigint,
       count(*) FILTER (WHERE role IS NULL)::bigint,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE role = 'agent'),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) FILTER (WHERE role = 'agent')
  FROM replies
 GROUP BY GROUPING SETS ((bucket, channel_id), (bucket))";

const HUMAN_RESPONSE: &str = "
WITH waits AS (
    SELECT c.channel_id,
           date_bin($4::bigint * interval '1 microsecond', e.created_at, $1) AS bucket,
           extract(epoch FROM (
               SELECT min(h.created_at) FROM messages h
                WHERE h.conversation_id = e.conversation_id AND h.role = 'human'
                  AND h.created_at >= e.created_at
                  AND (e.resolved_at IS NULL OR h.created_at <= e.resolved_at)
           ) - e.created_at)::float8 AS secs
      FROM escalations e
      JOIN conversations c ON c.id = e.conversation_id
     WHERE e.created_at >= $1 AND e.created_at < $2 AND e.trigger <> 'admin'
       AND ($3::uuid IS NULL OR c.channel_id = $3)
)
SELECT bucket, channel_id, GROUPING(channel_id) = 1,
       count(secs)::bigint,
       (count(*) - count(secs))::bigint,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs)
  FROM waits
 GROUP BY GROUPING SETS ((bucket, channel_id), (bucket))";

/// A move cancels the old booking and creates a new one pointing at it (`rescheduled_from`):
/// the old one's cancellation is part of the move, not a cancellation.
const BOOKINGS: &str = "
SELECT c.channel_id, GROUPING(c.channel_id) = 1,
       count(*) FILTER (WHERE b.created_at >= $1 AND b.created_at < $2
                          AND b.rescheduled_from IS NULL)::bigint,
       count(*) FILTER (WHERE b.created_at >= $1 AND b.created_at < $2
                          AND b.rescheduled_from IS NOT NULL)::bigint,
       count(*) FILTER (WHERE b.cancelled_at >= $1 AND b.cancelled_at < $2
                          AND moved.id IS NULL)::bigint
  FROM bookings b
  LEFT JOIN conversations c ON c.id = b.conversation_id
  LEFT JOIN bookings moved ON moved.rescheduled_from = b.id
 WHERE ((b.created_at >= $1 AND b.created_at < $2)
        OR (b.cancelled_at >= $1 AND b.cancelled_at < $2))
   AND ($3::uuid IS NULL OR c.channel_id = $3)
 GROUP BY GROUPING SETS ((c.channel_id), ())";

/// Counts by exact score; the bands are applied by [`LeadBands::add`].
const LEADS: &str = "
SELECT k.channel_id, GROUPING(k.channel_id) = 1, k.lead_score, count(*)::bigint
  FROM contacts k
 WHERE k.lead_score IS NOT NULL AND k.lead_created_at >= $1 AND k.lead_created_at < $2
   AND ($3::uuid IS NULL OR k.channel_id = $3)
 GROUP BY GROUPING SETS ((k.channel_id, k.lead_score), (k.lead_score))";

const TOKENS: &str = "
SELECT bucket, channel_id, GROUPING(channel_id) = 1, model,
       COALESCE(sum(prompt_tokens), 0)::bigint,
       COALESCE(sum(completion_tokens), 0)::bigint
  FROM (SELECT date_bin($4::bigint * interval '1 microsecond', u.created_at, $1) AS bucket,
               c.channel_id, u.model, u.prompt_tokens, u.completion_tokens
          FROM llm_usage u
          LEFT JOIN conversations c ON c.id = u.conversation_id
         WHERE u.created_at >= $1 AND u.created_at < $2
           AND ($3::uuid IS NULL OR c.channel_id = $3)) u
 GROUP BY GROUPING SETS ((bucket, channel_id, model), (bucket, model))";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges_default_to_the_last_thirty_days() {
        let now = at("2026-12-07T10:30:00Z");
        let r = Range::resolve(None, None, now).unwrap();
        assert_eq!(r.to, now);
        assert_eq!(r.from, at("2026-11-07T10:30:00Z"));
        // Only `to`: thirty days before it.
        let r = Range::resolve(None, Some("2026-12-01"), now).unwrap();
        assert_eq!(
            (r.from, r.to),
            (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        // Only `from`: until now.
        let r = Range::resolve(Some("2026-12-01"), None, now).unwrap();
        assert_eq!((r.from, r.to), (at("2026-12-01T00:00:00Z"), now));
    }

    #[test]
    fn dates_are_midnight_utc_and_times_keep_their_offset() {
        assert_eq!(
            parse_instant("2026-12-06"),
            Some(at("2026-12-06T00:00:00Z"))
        );
        assert_eq!(
            parse_instant(" 2026-12-06T09:00:00+04:00 "),
            Some(at("2026-12-06T05:00:00Z"))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-1-5",
            "2026-12-06T25:00:00Z",
            "2026-12-06 junk",
            "1733500000",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn empty_reversed_and_overlong_ranges_are_refused() {
        let now = at("2026-12-07T00:00:00Z");
        assert_eq!(
            Range::resolve(Some("2026-12-01"), Some("2026-12-01"), now),
            Err(RangeError::Empty)
        );
        assert_eq!(
            Range::resolve(Some("2026-12-02"), Some("2026-12-01"), now),
            Err(RangeError::Empty)
        );
        assert_eq!(
            Range::resolve(Some("bad"), None, now),
            Err(RangeError::InvalidTime { param: "from" })
        );
        assert_eq!(
            Range::resolve(None, Some("bad"), now),
            Err(RangeError::InvalidTime { param: "to" })
        );
        // Exactly 400 days is accepted, one second more is not.
        let from = at("2025-11-02T00:00:00Z");
        assert_eq!(now - from, Duration::days(400));
        assert!(Range::resolve(Some("2025-11-02"), Some("2026-12-07"), now).is_ok());
        assert_eq!(
            Range::resolve(Some("2025-11-01T23:59:59Z"), Some("2026-12-07"), now),
            Err(RangeError::TooLong)
        );
    }

    #[test]
    fn lead_bands_split_at_forty_and_seventy() {
        let cases = [
            (0, LeadBand::Cold),
            (39, LeadBand::Cold),
            (40, LeadBand::Warm),
            (69, LeadBand::Warm),
            (70, LeadBand::Hot),
            (100, LeadBand::Hot),
        ];
        for (score, band) in cases {
            assert_eq!(LeadBand::of(score), band, "{score}");
        }
        let mut b = LeadBands::default();
        b.add(10, 2);
        b.add(40, 1);
        b.add(55, 3);
        b.add(70, 4);
        assert_eq!(
            b,
            LeadBands {
                cold: 2,
                warm: 4,
                hot: 4
            }
        );
    }

    fn price(input: f64, output: f64) -> ModelPrice {
        ModelPrice {
            input_per_million: input,
            output_per_million: output,
        }
    }

    #[test]
    fn snapshots_are_priced_as_their_model_and_names_ignore_case() {
        let t = PriceTable::new([
            ("gpt-4o".to_owned(), price(2.5, 10.0)),
            ("GPT-4o-mini".to_owned(), price(0.15, 0.6)),
        ])
        .unwrap();
        assert_eq!(t.price_of("gpt-4o"), Some(price(2.5, 10.0)));
        assert_eq!(t.price_of("gpt-4o-2024-08-06"), Some(price(2.5, 10.0)));
        assert_eq!(t.price_of("gpt-4o-mini"), Some(price(0.15, 0.6)));
        assert_eq!(t.price_of("GPT-4O-MINI-2024-07-18"), Some(price(0.15, 0.6)));
        // A prefix is not a snapshot: an unknown variant has no price.
        assert_eq!(t.price_of("gpt-4o-audio-preview"), None);
        assert_eq!(t.price_of("gpt-4o-2024-8-06"), None);
        assert_eq!(t.price_of("llama3"), None);
        assert_eq!(t.price_of("-2024-08-06"), None);
        assert_eq!(t.price_of(""), None);
    }

    #[test]
    fn prices_must_be_finite_and_not_negative() {
        assert!(PriceTable::new([("a".to_owned(), price(-1.0, 0.0))]).is_err());
        assert!(PriceTable::new([("a".to_owned(), price(0.0, f64::NAN))]).is_err());
        assert!(PriceTable::new([("a".to_owned(), price(0.0, f64::INFINITY))]).is_err());
        assert!(PriceTable::new([("free".to_owned(), price(0.0, 0.0))]).is_ok());
    }

    #[test]
    fn costs_add_up_per_model_and_unpriced_tokens_are_counted_apart() {
        let t = PriceTable::new([
            ("gpt-4o".to_owned(), price(2.5, 10.0)),
            ("gpt-4o-mini".to_owned(), price(0.15, 0.6)),
        ])
        .unwrap();
        let tokens = t.tokens(vec![
            ("gpt-4o-mini".into(), 1_000_000, 500_000),
            ("local-llama".into(), 700, 300),
            ("gpt-4o-2024-08-06".into(), 2_000, 1_000),
        ]);
        // gpt-4o-mini: 1,000,000 × 0.15 / 1e6 + 500,000 × 0.60 / 1e6 = 0.15 + 0.30 = 0.45
        // gpt-4o:          2,000 × 2.50 / 1e6 +   1,000 × 10.0 / 1e6 = 0.005 + 0.01 = 0.015
        assert_eq!(tokens.input, 1_002_700);
        assert_eq!(tokens.output, 501_300);
        assert!(
            (tokens.cost_usd - 0.465).abs() < 1e-12,
            "{}",
            tokens.cost_usd
        );
        assert_eq!(tokens.cost_unknown_tokens, 1_000);
        assert_eq!(tokens.unpriced_models, vec!["local-llama".to_owned()]);
        let models: Vec<(&str, Option<f64>)> = tokens
            .by_model
            .iter()
            .map(|m| (m.model.as_str(), m.cost_usd))
            .collect();
        assert_eq!(
            models,
            vec![
                ("gpt-4o-2024-08-06", Some(0.015)),
                ("gpt-4o-mini", Some(0.45)),
                ("local-llama", None),
            ]
        );
        assert_eq!(PriceTable::default().tokens(vec![]), Tokens::default());
    }

    #[test]
    fn buckets_start_at_from_and_the_last_one_is_cut_at_to() {
        let range = |from: &str, to: &str| Range {
            from: at(from),
            to: at(to),
        };
        let days = bucket_starts(
            range("2026-11-01T00:00:00Z", "2026-11-04T00:00:00Z"),
            Bucket::Day,
        );
        assert_eq!(
            days.unwrap(),
            vec![
                at("2026-11-01T00:00:00Z"),
                at("2026-11-02T00:00:00Z"),
                at("2026-11-03T00:00:00Z")
            ]
        );
        // A partial last hour is a bucket of its own.
        let hours = bucket_starts(
            range("2026-11-01T10:30:00Z", "2026-11-01T12:31:00Z"),
            Bucket::Hour,
        )
        .unwrap();
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[2], at("2026-11-01T12:30:00Z"));
        // 400 buckets are answered, 401 are not.
        let ok = range("2026-11-01T00:00:00Z", "2026-11-17T16:00:00Z");
        assert_eq!(bucket_starts(ok, Bucket::Hour).unwrap().len(), 400);
        let over = range("2026-11-01T00:00:00Z", "2026-11-17T16:00:01Z");
        assert_eq!(bucket_starts(over, Bucket::Hour), Err(TooManyBuckets(401)));
        assert_eq!(Bucket::parse("week"), None);
    }

    #[test]
    fn rates_are_undefined_without_conversations() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(3, 3), Some(1.0));
    }
}
