//! The registry of channel kinds: each kind's settings (public fields and secrets), its
//! webhook handler and its webhook path. Adding a channel kind means one variant here, one
//! module, and one arm in [`Outbound::send`](crate::Outbound::send).
//!
//! Admins send one flat JSON object of settings. [`split_secrets`] takes the kind's secret
//! fields out of it (the runtime seals them with the tenant's key); [`ChannelSettings::parse`]
//! puts the two halves back together into the kind's typed settings, whose secrets are
//! [`SecretString`](secrecy::SecretString)s (`Debug` prints `[REDACTED]`).

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use switchboard_core::egress::{Egress, Refused};
use switchboard_core::model::ChannelKind;
use switchboard_core::{ChannelId, MasterKey, TenantId};

use crate::webhook::{WebhookError, WebhookOutput, WebhookRequest};
use crate::{email, telegram, twilio, whatsapp};

/// Settings that are wrong; the message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidSettings(pub String);

/// A channel's settings, typed by kind, secrets included (decrypted, in memory only).
#[derive(Clone, Debug)]
pub enum ChannelSettings {
    Webchat,
    Whatsapp(whatsapp::Settings),
    Sms(twilio::SmsSettings),
    Voice(twilio::VoiceSettings),
    Telegram(telegram::Settings),
    Email(email::Settings),
}

impl ChannelSettings {
    /// Checks the endpoints the tenant set (provider API bases, SMTP and IMAP hosts) against
    /// `egress`, as far as it can be done without DNS: literal addresses and local names. Names
    /// are checked again when they are resolved, on every connection.
    pub fn check_endpoints(&self, egress: Egress) -> Result<(), Refused> {
        match self {
            ChannelSettings::Webchat => Ok(()),
            ChannelSettings::Whatsapp(s) => egress.check_url(&s.api_base_url),
            ChannelSettings::Telegram(s) => egress.check_url(&s.api_url),
            ChannelSettings::Sms(s) => egress.check_url(&s.api_base_url),
            ChannelSettings::Voice(s) => egress.check_url(&s.api_base_url),
            ChannelSettings::Email(s) => {
                egress.check_name(&s.smtp_host)?;
                match &s.imap_host {
                    Some(h) => egress.check_name(h),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The names of the fields of `kind` that are secrets (sealed at rest, never returned).
pub fn secret_fields(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::Whatsapp => whatsapp::SECRET_FIELDS,
        ChannelKind::Sms => twilio::SECRET_FIELDS,
        ChannelKind::Voice => twilio::VOICE_SECRET_FIELDS,
        ChannelKind::Telegram => telegram::SECRET_FIELDS,
        ChannelKind::Email => email::SECRET_FIELDS,
        _ => &[],
    }
}

/// Takes the secret fields of `kind` out of `config`; returns them as their own object.
pub fn split_secrets(kind: ChannelKind, config: &mut Map<String, Value>) -> Map<String, Value> {
    let mut secrets = Map::new();
    for name in secret_fields(kind) {
        if let Some(v) = config.remove(*name) {
            secrets.insert((*name).to_owned(), v);
        }
    }
    secrets
}

/// The path of a channel's webhook (to append to the public base URL), if it has one.
pub fn webhook_path(kind: ChannelKind, channel: ChannelId) -> Option<String> {
    match kind {
        ChannelKind::Webchat => None,
        ChannelKind::Whatsapp => Some(format!("/webhooks/whatsapp/{channel}")),
        ChannelKind::Telegram => Some(format!("/webhooks/telegram/{channel}")),
        ChannelKind::Sms => Some(format!("/webhooks/twilio/sms/{channel}")),
        ChannelKind::Voice => Some(format!("/webhooks/twilio/voice/{channel}")),
        // (and the generic transcript webhook at `/webhooks/voice/{channel}/transcript`)
        ChannelKind::Email => Some(format!("/webhooks/email/{channel}")),
    }
}

fn typed<T: DeserializeOwned>(
    kind: ChannelKind,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> Result<T, InvalidSettings> {
    let mut merged = config.clone();
    merged.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| InvalidSettings(format!("{kind} channel settings: {e}")))
}

impl ChannelSettings {
    /// Builds the typed settings of `kind` from its public half and its secrets, checking
    /// every field.
    pub fn parse(
        kind: ChannelKind,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<ChannelSettings, InvalidSettings> {
        let settings = match kind {
            ChannelKind::Webchat => ChannelSettings::Webchat,
            ChannelKind::Whatsapp => ChannelSettings::Whatsapp(typed(kind, config, secrets)?),
            ChannelKind::Sms => ChannelSettings::Sms(typed(kind, config, secrets)?),
            ChannelKind::Voice => ChannelSettings::Voice(typed(kind, config, secrets)?),
            ChannelKind::Telegram => ChannelSettings::Telegram(typed(kind, config, secrets)?),
            ChannelKind::Email => ChannelSettings::Email(typed(kind, config, secrets)?),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Opens a stored channel's settings: its public half and its credentials, sealed for
    /// `tenant` under `key`.
    pub fn open(
        kind: ChannelKind,
        tenant: TenantId,
        config: &Map<String, Value>,
        secrets_enc: Option<&[u8]>,
        key: &MasterKey,
    ) -> Result<ChannelSettings, InvalidSettings> {
        let secrets = match secrets_enc {
            None => Map::new(),
            Some(sealed) => {
                let plain = key
                    .open(tenant, sealed)
                    .map_err(|e| InvalidSettings(e.to_string()))?;
                serde_json::from_str(plain.expose_secret()).map_err(|_| {
                    InvalidSettings("stored credentials are not a JSON object".into())
                })?
            }
        };
        ChannelSettings::parse(kind, config, &secrets)
    }

    fn validate(&self) -> Result<(), InvalidSettings> {
        match self {
            ChannelSettings::Webchat => Ok(()),
            ChannelSettings::Whatsapp(s) => s.validate(),
            ChannelSettings::Sms(s) => s.validate(),
            ChannelSettings::Voice(s) => s.validate(),
            ChannelSettings::Telegram(s) => s.validate(),
            ChannelSettings::Email(s) => s.validate(),
        }
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::Webchat => ChannelKind::Webchat,
            ChannelSettings::Whatsapp(_) => ChannelKind::Whatsapp,
            ChannelSettings::Sms(_) => ChannelKind::Sms,
            ChannelSettings::Voice(_) => ChannelKind::Voice,
            ChannelSettings::Telegram(_) => ChannelKind::Telegram,
            ChannelSettings::Email(_) => ChannelKind::Email,
        }
    }

    /// Verifies and parses one provider request for channel `channel`. The items are
    /// [storable](crate::InboundItem::storable) whatever the request carried.
    pub fn handle_webhook(
        &self,
        channel: ChannelId,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookOutput, WebhookError> {
        self.adapter_webhook(channel, req)
            .map(WebhookOutput::storable)
    }

    fn adapter_webhook(
        &self,
        channel: ChannelId,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookOutput, WebhookError> {
        match self {
            ChannelSettings::Webchat => Err(WebhookError::Malformed(
                "web chat has no webhook; use the web-chat API".into(),
            )),
            ChannelSettings::Whatsapp(s) => whatsapp::handle_webhook(s, channel, req),
            ChannelSettings::Sms(s) => twilio::handle_sms(s, channel, req),
            ChannelSettings::Voice(s) if crate::transcript::is_transcript_request(req) => {
                crate::transcript::handle(s, channel, req)
            }
            ChannelSettings::Voice(s) => twilio::handle_voice(s, channel, req),
            ChannelSettings::Telegram(s) => telegram::handle_webhook(s, channel, req),
            ChannelSettings::Email(s) => email::handle_webhook(s, channel, req),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{hex, hmac_sha256, Headers, InboundItem};
    use serde_json::json;

    fn settings(kind: ChannelKind, flat: Value) -> ChannelSettings {
        let mut config = flat.as_object().cloned().unwrap();
        let secrets = split_secrets(kind, &mut config);
        ChannelSettings::parse(kind, &config, &secrets).unwrap()
    }

    fn post(
        settings: &ChannelSettings,
        url: &str,
        headers: Vec<(&str, String)>,
        body: &[u8],
    ) -> Vec<InboundItem> {
        let headers = Headers::new(headers);
        let req = WebhookRequest {
            method: "POST",
            public_url: url,
            query: "",
            headers: &headers,
            body,
        };
        settings
            .handle_webhook(ChannelId::new(), &req)
            .unwrap()
            .items
    }

    /// Found by the fuzz targets `twilio`, `email_webhook` and `email_mime` (and
    /// `whatsapp` with a dictionary): U+0000 arrives as `\u0000` in JSON and `%00` in forms,
    /// and PostgreSQL refuses it in `text` and `jsonb`, so such a delivery could never be
    /// stored and the provider retried it for days. It is stored as U+FFFD.
    #[test]
    fn a_nul_in_any_provider_request_becomes_a_replacement_character() {
        let no_nul = |items: &[InboundItem]| {
            let debug = format!("{items:?}");
            assert!(!items.is_empty());
            assert!(
                !debug.contains("\\0") && !debug.contains("\\u{0}"),
                "{debug}"
            );
            assert!(debug.contains('\u{FFFD}'), "{debug}");
        };
        let whatsapp = settings(
            ChannelKind::Whatsapp,
            json!({"phone_number_id": "1", "app_secret": "s", "access_token": "t",
                   "verify_token": "v"}),
        );
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{
            "contacts":[{"wa_id":"9715\u0000","profile":{"name":"La\u0000yla"}}],
            "messages":[{"from":"9715\u0000","id":"wamid.\u0000","type":"text",
                         "text":{"body":"Hi\u0000"},"\u0000key":"\u0000"}]}}]}]}"#;
        let sig = format!("sha256={}", hex(&hmac_sha256(b"s", body)));
        no_nul(&post(
            &whatsapp,
            "https://x/w",
            vec![("X-Hub-Signature-256", sig)],
            body,
        ));

        let sms = settings(
            ChannelKind::Sms,
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef",
                   "from_number": "+15550001111", "auth_token": "12345"}),
        );
        let url = "https://sb.example:443/webhooks/twilio/sms/c";
        let body = b"MessageSid=MM3&From=%2B9715&Body=&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi\x00";
        let params = crate::webhook::form_params(body);
        let sig = crate::twilio::compute_signature("12345", url, &params);
        no_nul(&post(&sms, url, vec![("X-Twilio-Signature", sig)], body));

        let email = settings(
            ChannelKind::Email,
            json!({"from_address": "inbox@sahara.example", "smtp_host": "smtp.example",
                   "webhook_basic_auth": "u:p"}),
        );
        let body = b"sender=omar%40customer.example&subject=Re&body-plain=Tuesday%00works";
        let auth = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p")
        );
        no_nul(&post(
            &email,
            "https://x/e",
            vec![("Authorization", auth)],
            body,
        ));
    }

    #[test]
    fn secrets_are_split_out_and_parse_back_into_typed_settings_without_leaking() {
        let mut config = json!({
            "phone_number_id": "1234",
            "app_secret": "app-secret-xyz",
            "access_token": "token-xyz",
            "verify_token": "verify-xyz",
        })
        .as_object()
        .cloned()
        .unwrap();
        let secrets = split_secrets(ChannelKind::Whatsapp, &mut config);
        assert_eq!(config.len(), 1);
        assert_eq!(secrets.len(), 3);
        let settings = ChannelSettings::parse(ChannelKind::Whatsapp, &config, &secrets).unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("xyz"), "{debug}");
        // A missing secret is an error that names the field.
        let err = ChannelSettings::parse(ChannelKind::Whatsapp, &config, &Map::new()).unwrap_err();
        assert!(err.0.contains("app_secret"), "{err}");
        // Unknown fields are refused.
        config.insert("colour".into(), json!("blue"));
        assert!(ChannelSettings::parse(ChannelKind::Whatsapp, &config, &secrets).is_err());
    }
}
