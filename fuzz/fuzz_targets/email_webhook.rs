//! Inbound e-mail webhooks: Mailgun-style posts (form or `multipart/form-data`, signed over
//! timestamp and token) and Postmark-style JSON (HTTP basic auth).
//!
//! The input is a `Content-Type` line and the body. A form or multipart body gets a fresh
//! timestamp, a token and their signature prepended (as fields or parts), as Mailgun would
//! send them; the body may carry fields of the same names after them. Asserted for every input:
//! - the post is authentic exactly when the fields the adapter reads carry a signature that is
//!   HMAC-SHA256(signing key, timestamp + token) (computed independently) and a timestamp
//!   inside the window; an authentic post hands back its token as a nonce, with the digest of
//!   exactly the fields it carried, so the same signature cannot carry another body;
//! - that digest ignores the order of fields and sees any added field or any shift of text
//!   between a name and its value;
//! - a JSON post is authentic exactly with the configured basic credentials;
//! - every item parsed from an authentic post keeps the store's promises.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_channels::email::fields_sha256;
use switchboard_channels::webhook::{form_params, multipart_fields, param, Rejection};
use switchboard_channels::WebhookError;
use switchboard_core::model::ChannelKind;
use switchboard_fuzz::{check_items, first_line, handle, hex, hmac_sha256, rejected, settings};

const SIGNING_KEY: &str = "key-mailgun-signing-0123456789";
const BASIC_AUTH: &str = "postmark:p4ss:word";
const MAX_AGE: i64 = 300;
const URL: &str = "https://sb.example/webhooks/email/0190f0c4-7a4e-7b3c-9d2e-5f6a7b8c9d0e";

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = first_line(data);
    let settings = settings(
        ChannelKind::Email,
        json!({
            "from_address": "inbox@sahara.example",
            "smtp_host": "smtp.sahara.example",
            "webhook_signing_key": SIGNING_KEY,
            "webhook_basic_auth": BASIC_AUTH,
            "webhook_max_age_secs": MAX_AGE,
        }),
    );
    if content_type.trim_start().starts_with("application/json") {
        let basic = |credentials: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        };
        let post = |authorization: Option<String>| {
            let mut headers = vec![("Content-Type", content_type.to_owned())];
            headers.extend(authorization.map(|a| ("Authorization", a)));
            handle(&settings, "POST", URL, &headers, body)
        };
        let authentic = post(Some(basic(BASIC_AUTH)));
        assert!(!rejected(&authentic), "the right credentials were refused");
        if let Ok(output) = authentic {
            check_items(&output.items);
            assert!(output.nonce.is_none());
        }
        for wrong in ["postmark:p4ss:wordx", "postmark:p4ss", ""] {
            assert!(matches!(
                post(Some(basic(wrong))),
                Err(WebhookError::Rejected(Rejection::Invalid))
            ));
        }
        assert!(matches!(
            post(None),
            Err(WebhookError::Rejected(Rejection::Missing))
        ));
        return;
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let token = format!(
        "token-{}-{}",
        body.len(),
        hex(&hmac_sha256(b"t", body)[..6])
    );
    let signature = hex(&hmac_sha256(
        SIGNING_KEY.as_bytes(),
        format!("{now}{token}").as_bytes(),
    ));
    let signed = [
        ("timestamp", now.to_string()),
        ("token", token),
        ("signature", signature),
    ];
    let multipart = content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    let mut full = Vec::new();
    if multipart {
        let boundary = boundary(content_type).unwrap_or_default();
        for (name, value) in &signed {
            full.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
    } else {
        for (name, value) in &signed {
            full.extend_from_slice(format!("{name}={value}&").as_bytes());
        }
    }
    full.extend_from_slice(body);

    // What the adapter reads: the library's own reading of the body (the encodings are not
    // what is under test here; the signature and the nonce are).
    let fields = if multipart {
        multipart_fields(content_type, &full)
    } else {
        Some(form_params(&full))
    };
    let headers = vec![("Content-Type", content_type.to_owned())];
    let result = handle(&settings, "POST", URL, &headers, &full);
    let Some(fields) = fields else {
        assert!(
            matches!(result, Err(WebhookError::Malformed(_))),
            "a multipart body without a boundary was not refused as malformed"
        );
        return;
    };
    let (ts, token, sig) = (
        param(&fields, "timestamp"),
        param(&fields, "token"),
        param(&fields, "signature"),
    );
    let verdict = match (ts, token, sig) {
        (Some(ts), Some(token), Some(sig)) => {
            let expected = hex(&hmac_sha256(
                SIGNING_KEY.as_bytes(),
                format!("{ts}{token}").as_bytes(),
            ));
            if !sig.trim().eq_ignore_ascii_case(&expected) {
                Some(false)
            } else {
                match ts.trim().parse::<i64>() {
                    Ok(t) => {
                        let age = (i128::from(now) - i128::from(t)).unsigned_abs();
                        // Too close to the edge of the window to tell which second the
                        // adapter saw.
                        (age.abs_diff(MAX_AGE as u128) > 2).then_some(age <= MAX_AGE as u128)
                    }
                    Err(_) => Some(false),
                }
            }
        }
        _ => Some(false),
    };
    match verdict {
        Some(true) => {
            assert!(
                !rejected(&result),
                "an authentic post was refused: {result:?}"
            );
            if let Ok(output) = &result {
                check_items(&output.items);
                let nonce = output.nonce.as_ref().expect("a signed post has a nonce");
                assert_eq!(Some(nonce.value.as_str()), token);
                assert_eq!(nonce.body_sha256, fields_sha256(&fields));
            }
        }
        Some(false) => assert!(rejected(&result), "a forged post was accepted: {fields:?}"),
        None => {}
    }

    // The digest of the fields: order does not matter, content does.
    let digest = fields_sha256(&fields);
    let mut reversed = fields.clone();
    reversed.reverse();
    assert_eq!(fields_sha256(&reversed), digest);
    let mut added = fields.clone();
    added.push(("body-plain".into(), String::new()));
    assert_ne!(fields_sha256(&added), digest);
    if let Some((name, value)) = fields.first() {
        if let Some(c) = value.chars().next() {
            let mut shifted = fields.clone();
            shifted[0] = (format!("{name}{c}"), value[c.len_utf8()..].to_owned());
            assert_ne!(
                fields_sha256(&shifted),
                digest,
                "a shift between name and value"
            );
        }
    }
});

/// The boundary parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}
