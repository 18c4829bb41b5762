//! Creating tenants: the tenant, its first web-chat channel and (for the demo) its knowledge, in
//! one transaction, so a crash never leaves a half-created tenant behind.

use switchboard_core::model::{Channel, ChannelKind, Tenant};
use switchboard_core::store::{channels, platform};
use switchboard_core::{Db, DbError, TenantId, TenantTx};

/// Creates a tenant with a web-chat channel.
pub async fn create_with_webchat(
    db: &Db,
    slug: &str,
    name: &str,
    language: &str,
) -> Result<(Tenant, Channel), DbError> {
    let mut tx = db.tenant(TenantId::new()).await?;
    let created = create_in(&mut tx, slug, name, language, "Website chat").await?;
    tx.commit().await?;
    Ok(created)
}

/// The same, inside a transaction the caller commits (it may add more first).
pub async fn create_in(
    tx: &mut TenantTx,
    slug: &str,
    name: &str,
    language: &str,
    channel_name: &str,
) -> Result<(Tenant, Channel), DbError> {
    if switchboard_prompts::Lang::from_code(language).is_none() {
        return Err(DbError::Invalid(format!(
            "unsupported default_language `{language}`; use `en` or `ar`"
        )));
    }
    let tenant = platform::create_tenant(tx, slug, name, language).await?;
    let channel = channels::create(tx, ChannelKind::Webchat, channel_name).await?;
    Ok((tenant, channel))
}
