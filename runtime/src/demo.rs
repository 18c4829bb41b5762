//! The demo tenant created on first run: a small bilingual (English/Arabic) business with a
//! web-chat channel and a knowledge base, so a newcomer can chat with an agent at once.

use serde::Deserialize;
use switchboard_core::availability::AvailabilitySettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{bookings, channels, platform};
use switchboard_core::{ChannelId, Db, DbError, TenantId};
use switchboard_knowledge::documents::{self, DocumentError, NewDocument};
use switchboard_prompts::Lang;
use tracing::info;

pub const DEMO_SLUG: &str = "demo";

#[derive(Debug, Deserialize)]
struct DemoTenant {
    slug: String,
    name: String,
    default_language: String,
    webchat_channel_name: String,
    documents: Vec<DemoDocument>,
}

#[derive(Debug, Deserialize)]
struct DemoDocument {
    title: String,
    lang: Lang,
    text: String,
}

/// Creates the demo tenant unless it exists. Returns true when it was created now.
pub async fn ensure(db: &Db) -> Result<bool, DbError> {
    if platform::find_tenant(db.pool(), DEMO_SLUG).await?.is_some() {
        return Ok(false);
    }
    let demo: DemoTenant = serde_json::from_str(include_str!("../demo/tenant.json"))
        .map_err(|e| DbError::Invalid(format!("embedded demo tenant is invalid: {e}")))?;
    let mut tx = db.tenant(TenantId::new()).await?;
    let created = crate::tenants::create_in(
        &mut tx,
        &demo.slug,
        &demo.name,
        &demo.default_language,
        &demo.webchat_channel_name,
    )
    .await;
    let (tenant, channel) = match created {
        Ok(c) => c,
        // Another process created it at the same moment: that is fine.
        Err(DbError::Conflict(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    for (i, doc) in demo.documents.iter().enumerate() {
        let new = NewDocument {
            title: Some(doc.title.clone()),
            source: format!("demo-{:02}-{}.txt", i + 1, doc.lang.code()),
            content_type: Some("text/plain".into()),
            content: doc.text.clone().into_bytes(),
            language: Some(doc.lang.code().into()),
            tags: vec!["demo".into()],
        };
        documents::create(&mut tx, &new)
            .await
            .map_err(|e| match e {
                DocumentError::Db(e) => e,
                other => DbError::Invalid(format!("demo document `{}`: {other}", doc.title)),
            })?;
    }
    bookings::put_availability(&mut tx, demo_availability()).await?;
    tx.commit().await?;
    info!(tenant = %tenant.slug, channel_id = %channel.id, documents = demo.documents.len(), "created the demo tenant");
    Ok(true)
}

/// Sahara Solar's showroom hours (Saturday to Thursday 08:30–18:30, closed Fridays, Dubai
/// time) with 30-minute consultations and 15 minutes between them, so `make run` books meetings
/// without any set-up. No salesperson email: the demo has no mail server to send invitations.
fn demo_availability() -> AvailabilitySettings {
    let hours = vec![["08:30".to_string(), "18:30".to_string()]];
    AvailabilitySettings {
        timezone: "Asia/Dubai".into(),
        weekly_hours: ["sat", "sun", "mon", "tue", "wed", "thu"]
            .into_iter()
            .map(|d| (d.to_string(), hours.clone()))
            .collect(),
        slot_minutes: 30,
        buffer_minutes: 15,
        min_notice_minutes: 60,
        horizon_days: 14,
        holidays: Vec::new(),
        salesperson_name: Some("Sahara Solar sales team".into()),
        salesperson_email: None,
        meeting_title: "Solar consultation".into(),
        location: Some("Sahara Solar showroom, Al Quoz, Dubai".into()),
    }
}

/// Disables the demo tenant's web-chat channels, if it exists; how many were enabled.
pub async fn switch_off(db: &Db) -> Result<usize, DbError> {
    let Some(tenant) = platform::find_tenant(db.pool(), DEMO_SLUG).await? else {
        return Ok(0);
    };
    let mut tx = db.tenant(tenant.id).await?;
    let mut closed = 0;
    for c in channels::list(&mut tx).await? {
        if c.kind == ChannelKind::Webchat && c.enabled {
            let change = channels::ChannelUpdate {
                enabled: Some(false),
                ..Default::default()
            };
            closed += usize::from(channels::update(&mut tx, c.id, change).await?);
        }
    }
    tx.commit().await?;
    Ok(closed)
}

/// The demo tenant's web-chat channel, if the demo tenant exists.
pub async fn chat_channel(db: &Db) -> Result<Option<ChannelId>, DbError> {
    let Some(tenant) = platform::find_tenant(db.pool(), DEMO_SLUG).await? else {
        return Ok(None);
    };
    let mut tx = db.tenant(tenant.id).await?;
    let channel = channels::list(&mut tx)
        .await?
        .into_iter()
        .find(|c| c.kind == ChannelKind::Webchat && c.enabled)
        .map(|c| c.id);
    tx.commit().await?;
    Ok(channel)
}
