//! The harness's own use of the database: whether the pipeline has drained, which reply
//! answered which message, the raw commit rate used as the yardstick, and the bulk creation of
//! the memory suite's conversations.
//!
//! These are measurements of what the store wrote, not product code (see the module doc of
//! [`super`]). Reads of tenant rows go through a tenant-scoped transaction like everything
//! else, so they work whichever role owns the schema.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use switchboard_core::{ChannelId, ContactId, ConversationId, Db, TenantId};

/// Waits until the pipeline has nothing left to do (see [`is_drained`]).
pub(super) async fn drained(db: &Db, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !is_drained(db).await? {
        if Instant::now() > deadline {
            bail!("the pipeline did not drain within {} s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether no conversation has pending events and no outbox row is waiting or being sent.
pub(super) async fn is_drained(db: &Db) -> anyhow::Result<bool> {
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM platform_pending_conversations()")
        .fetch_one(db.pool())
        .await?;
    if pending > 0 {
        return Ok(false);
    }
    let undelivered = sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
        "SELECT platform_next_outbox_due()",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(undelivered.is_none())
}

/// How a reply is recognised where the harness sees it.
#[derive(Clone, Copy, Debug)]
pub(super) enum ReplyKey {
    /// The agent message's id (what the web-chat event stream shows).
    MessageId,
    /// The provider's id for the delivered message (what the fake Graph API handed out).
    ProviderRef,
}

/// For every inbound message of `channels` whose provider id starts with `prefix`, the reply
/// that answered it: the agent message of the turn that took the message in (a turn answering a
/// burst answers each of its messages with the same reply). Messages not answered yet are
/// absent.
pub(super) async fn answers(
    db: &Db,
    tenant: TenantId,
    channels: &[ChannelId],
    prefix: &str,
    key: ReplyKey,
) -> anyhow::Result<HashMap<String, String>> {
    let ids: Vec<uuid::Uuid> = channels.iter().map(|c| c.0).collect();
    let mut tx = db.tenant(tenant).await?;
    let by_message: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "SELECT e.provider_message_id, m.id
           FROM inbound_events e
           JOIN messages m ON m.turn_id = e.turn_id AND m.role = 'agent'
          WHERE e.channel_id = ANY($1) AND left(e.provider_message_id, length($2)) = $2",
    )
    .bind(&ids)
    .bind(prefix)
    .fetch_all(tx.conn())
    .await?;
    let answers = match key {
        ReplyKey::MessageId => by_message
            .into_iter()
            .map(|(event, reply)| (event, reply.to_string()))
            .collect(),
        ReplyKey::ProviderRef => {
            // Read apart and joined here: nothing indexes the outbox by message, and a join
            // planned on a freshly filled table without statistics scans it once per message.
            let refs: HashMap<uuid::Uuid, String> = sqlx::query_as(
                "SELECT message_id, provider_ref FROM outbox
                  WHERE channel_id = ANY($1) AND message_id IS NOT NULL
                    AND provider_ref IS NOT NULL",
            )
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?
            .into_iter()
            .collect();
            by_message
                .into_iter()
                .filter_map(|(event, reply)| Some((event, refs.get(&reply)?.clone())))
                .collect()
        }
    };
    tx.commit().await?;
    Ok(answers)
}

/// Single-row INSERT commits per second with `concurrency` connections for about 3 s, on the
/// same server, into an ordinary (WAL-logged, fsynced) table created and dropped for the run.
pub(super) async fn raw_commits(owner_url: &str, concurrency: usize) -> anyhow::Result<Value> {
    let concurrency = concurrency.max(1);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .connect(owner_url)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_commits (id bigserial PRIMARY KEY, v text)")
        .execute(&pool)
        .await?;
    let duration = Duration::from_secs(3);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut n = 0u64;
            while started.elapsed() < duration {
                // Autocommit: one transaction, one WAL flush per insert.
                sqlx::query("INSERT INTO bench_raw_commits (v) VALUES ('x')")
                    .execute(&mut *conn)
                    .await?;
                n += 1;
            }
            Ok::<u64, sqlx::Error>(n)
        })
    });
    let mut total = 0u64;
    for w in futures::future::join_all(workers).await {
        total += w??;
    }
    let secs = started.elapsed().as_secs_f64();
    // The floor under one message's latency: a commit alone, waiting for its own flush (no
    // other commit to share it with). Every message waits for two in sequence: its own before
    // the 202, and its reply's before the reply is shown.
    let mut conn = pool.acquire().await?;
    let mut alone = Vec::with_capacity(SERIAL_COMMITS);
    for _ in 0..SERIAL_COMMITS {
        let t = Instant::now();
        sqlx::query("INSERT INTO bench_raw_commits (v) VALUES ('x')")
            .execute(&mut *conn)
            .await?;
        alone.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(conn);
    sqlx::query("DROP TABLE bench_raw_commits")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(json!({
        "connections": concurrency,
        "commits": total,
        "commits_per_sec": total as f64 / secs,
        "one_commit_alone_ms": super::accounting::percentiles(&mut alone),
    }))
}

/// How many commits one connection makes in sequence to measure a commit alone.
const SERIAL_COMMITS: usize = 200;

/// The web-chat session id of the `i`-th conversation made by [`seed_webchat_conversations`].
pub(super) fn seeded_session(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:08}")
}

/// Creates `count` web-chat conversations of `tenant` on `channel`, each with its own contact
/// whose session id is [`seeded_session`]`(prefix, i)`, in one transaction; returns their ids
/// in that order. They are what a first message would have made (a contact and an open
/// conversation), without the message: the memory suite wakes them, and a later post with the
/// same session id lands in the same conversation.
pub(super) async fn seed_webchat_conversations(
    db: &Db,
    tenant: TenantId,
    channel: ChannelId,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<ConversationId>> {
    /// Rows per statement: big enough to be quick, small enough to stay under sqlx's
    /// slow-statement warning.
    const BATCH: usize = 5_000;
    let conversations: Vec<ConversationId> = (0..count).map(|_| ConversationId::new()).collect();
    let mut tx = db.tenant(tenant).await?;
    for (b, batch) in conversations.chunks(BATCH).enumerate() {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|c| c.0).collect();
        let contacts: Vec<uuid::Uuid> = batch.iter().map(|_| ContactId::new().0).collect();
        sqlx::query(
            "INSERT INTO contacts (id, tenant_id, channel_id, external_id)
             SELECT contact, $1, $2, $3 || lpad(($5 + i - 1)::text, 8, '0')
               FROM unnest($4::uuid[]) WITH ORDINALITY AS c(contact, i)",
        )
        .bind(tenant.0)
        .bind(channel.0)
        .bind(prefix)
        .bind(&contacts)
        .bind((b * BATCH) as i64)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id)
             SELECT conversation, $1, $2, contact
               FROM unnest($3::uuid[], $4::uuid[]) AS c(conversation, contact)",
        )
        .bind(tenant.0)
        .bind(channel.0)
        .bind(&ids)
        .bind(&contacts)
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await?;
    Ok(conversations)
}
