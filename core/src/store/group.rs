//! The pipeline's group commits: inbound messages and ordinary bot replies of many
//! conversations (and tenants) share statements and WAL flushes (see [`crate::batch`]).
//!
//! Durability is unchanged: every caller's answer comes after the commit that carries its
//! item, and fsync stays on. What changes is how many flushes the server makes: under load one
//! carries dozens of messages, where each used to need its own round trips and flush.

use crate::batch::Batcher;
use crate::db::{Db, DbError};
use crate::ids::TenantId;
use crate::model::{InboundMessage, Recorded};
use crate::store::turns::{BotReply, BotReplyRow};
use crate::store::usage::UsageRecord;
use crate::store::{ingest, turns};

/// Items per statement. Each bot reply is a subtransaction, and PostgreSQL keeps up to 64 of
/// them per transaction in shared memory before other sessions' snapshots get slower.
const MAX_BATCH: usize = 32;
/// Batches of each kind running at once: enough to keep the disk busy, few enough to leave
/// the pool's connections to the rest of the pipeline.
const IN_FLIGHT: usize = 3;

/// Handles on the group-commit loops; cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommits {
    ingest: Batcher<(TenantId, InboundMessage), Recorded>,
    replies: Batcher<BotReplyRow, BotReply>,
    db: Db,
}

impl GroupCommits {
    /// Starts the loops on the current Tokio runtime.
    pub fn start(db: &Db) -> Self {
        let ingest = {
            let db = db.clone();
            Batcher::spawn(MAX_BATCH, IN_FLIGHT, move |items| {
                let db = db.clone();
                async move { ingest::record_batch(&db, &items).await }
            })
        };
        let replies = {
            let db = db.clone();
            Batcher::spawn(MAX_BATCH, IN_FLIGHT, move |rows| {
                let db = db.clone();
                async move { turns::commit_bot_replies(&db, &rows).await }
            })
        };
        Self {
            ingest,
            replies,
            db: db.clone(),
        }
    }

    /// [`ingest::record`] for `tenant` in a committed transaction, shared with other callers'
    /// messages when they arrive together.
    pub async fn ingest(&self, tenant: TenantId, msg: InboundMessage) -> Result<Recorded, DbError> {
        self.ingest.call((tenant, msg)).await
    }

    /// [`turns::commit_bot_reply`], shared with other conversations' replies when they arrive
    /// together. A reply with token usage to record commits on its own (the usage rows join its
    /// transaction).
    pub async fn bot_reply(
        &self,
        row: BotReplyRow,
        usage: &[UsageRecord],
    ) -> Result<BotReply, DbError> {
        if usage.is_empty() {
            self.replies.call(row).await
        } else {
            turns::commit_bot_reply(&self.db, &row, usage).await
        }
    }
}
