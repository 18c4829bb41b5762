//! Webhook tokens seen: replay protection for provider signatures that do not cover the body
//! (Mailgun signs its timestamp and token only).
//!
//! A verified token is remembered with a digest of what it came with, in the transaction that
//! stores the webhook's items, by an insert that recognises a known token through the primary
//! key (`ON CONFLICT DO NOTHING`), never by a lookup first: two concurrent posts with one token
//! cannot both be first, the second waits for the first's transaction and then compares
//! digests. Expired tokens of the channel are deleted on the way.

use chrono::{DateTime, Utc};

use crate::db::{DbError, TenantTx};
use crate::ids::ChannelId;

/// How long after its window closes a token is kept. The window is checked with the
/// application's clock and rows are pruned with the database's: the margin keeps a token
/// remembered for as long as its signature can still pass, whatever the two clocks disagree
/// by (up to this much).
const PRUNE_MARGIN_SECS: i64 = 600;

/// What a token's use is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// Never seen (within its window): remembered now.
    First,
    /// Seen with the same content: the provider delivering again.
    Retry,
    /// Seen with other content: a captured signature replayed. Nothing may be stored.
    Replay,
}

/// Remembers `token` on `channel` with the digest of its content, until `expires_at` (plus the
/// margin), and says whether it is new, a retry or a replay. The caller commits (or, for a
/// replay, rolls back).
pub async fn remember(
    tx: &mut TenantTx,
    channel: ChannelId,
    token: &str,
    body_sha256: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<TokenUse, DbError> {
    sqlx::query(
        "DELETE FROM webhook_tokens
          WHERE channel_id = $1 AND expires_at < now() - make_interval(secs => $2)",
    )
    .bind(channel.0)
    .bind(PRUNE_MARGIN_SECS as f64)
    .execute(tx.conn())
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO webhook_tokens (tenant_id, channel_id, token, body_sha256, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, channel_id, token) DO NOTHING",
    )
    .bind(tx.tenant_id().0)
    .bind(channel.0)
    .bind(token)
    .bind(&body_sha256[..])
    .bind(expires_at)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(TokenUse::First);
    }
    let seen: Vec<u8> = sqlx::query_scalar(
        "SELECT body_sha256 FROM webhook_tokens WHERE channel_id = $1 AND token = $2",
    )
    .bind(channel.0)
    .bind(token)
    .fetch_one(tx.conn())
    .await?;
    Ok(if seen == body_sha256[..] {
        TokenUse::Retry
    } else {
        TokenUse::Replay
    })
}
